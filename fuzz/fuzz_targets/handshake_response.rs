//! libFuzzer entry point for [`clarion_fuzz::handshake_response`]; see `fuzz/README.md`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| clarion_fuzz::handshake_response(data));
