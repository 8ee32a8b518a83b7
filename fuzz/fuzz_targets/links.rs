//! Fuzz the streaming HTML link scanner: arbitrary bytes, fed in arbitrary
//! chunk sizes, must never panic, must respect the limits, and chunking must
//! not change the result.
#![no_main]

use cache_preload::fuzzing::{extract, LinkLimits, LinkScanner};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = LinkLimits {
        max_links: 64,
        max_href_len: 256,
        max_parser_memory: 64 * 1024,
    };
    let whole = extract(data, limits);
    assert!(whole.hrefs.len() <= limits.max_links);
    let step = 1 + usize::from(data.first().copied().unwrap_or(0) % 17);
    let mut scanner = LinkScanner::new(limits);
    for chunk in data.chunks(step) {
        scanner.feed(chunk);
    }
    let chunked = scanner.finish();
    if !whole.truncated && !chunked.truncated {
        assert_eq!(whole, chunked);
    }
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = cache_preload::fuzzing::decode_entities(s);
    }
});
