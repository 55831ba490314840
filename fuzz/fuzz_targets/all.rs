//! Every input goes through the JSON parser, the template engine and a
//! full load: none may panic, hang or exhaust memory.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    support::json(&text);
    support::engine(&text);
    support::load(&text);
});

mod support;
