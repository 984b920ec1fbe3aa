#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| cloudauth::fuzzing::redis_reply(data));
