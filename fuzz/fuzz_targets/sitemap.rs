//! Fuzz the sitemap parser (XML, gzip, text) and the robots.txt scanner:
//! no panics, limits respected.
#![no_main]

use cache_preload::fuzzing::{parse_bytes, robots_sitemaps, SitemapLimits};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = SitemapLimits {
        max_bytes: 1 << 20,
        max_entries: 100,
        max_loc_len: 512,
    };
    if let Ok(s) = parse_bytes(data, limits) {
        assert!(s.locs.len() <= limits.max_entries);
        assert!(s.locs.iter().all(|l| l.len() <= limits.max_loc_len));
    }
    let text = String::from_utf8_lossy(data);
    assert!(robots_sitemaps(&text, 10).len() <= 10);
});
