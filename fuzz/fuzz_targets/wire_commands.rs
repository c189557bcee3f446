//! libFuzzer entry point for [`clarion_fuzz::wire_commands`]; see `fuzz/README.md`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| clarion_fuzz::wire_commands(data));
