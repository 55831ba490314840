#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    support::engine(&String::from_utf8_lossy(data));
});

mod support;
