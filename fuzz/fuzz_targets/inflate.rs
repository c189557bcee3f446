//! libFuzzer entry point for [`clarion_fuzz::inflate`]; see `fuzz/README.md`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| clarion_fuzz::inflate(data));
