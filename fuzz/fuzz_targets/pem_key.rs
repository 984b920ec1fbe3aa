#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| cloudauth::fuzzing::pem_key(data));
