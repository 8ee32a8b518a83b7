//! Fuzz the stub resolver's answer parser: a nameserver's datagram is untrusted input, and no
//! byte sequence may panic it or make it loop (name pointers, counts, lengths).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    cache_preload::dns::fuzz_parse_answer(data);
});
