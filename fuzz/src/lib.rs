//! Fuzz target bodies, shared by the libFuzzer binaries and the corpus replay tests.
