#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| cloudauth::fuzzing::www_authenticate(data));
