//! Fuzz the nginx cache-key code of cache-preload: the `KEY:` line reader (cache files are
//! untrusted input for `--replay-keys`), template parsing, key splitting, and the round trip
//! render → split on the default template. No panics; the round trip gives back host and target.
#![no_main]

use cache_preload::fuzzing::{
    key_from_bytes, md5_hex, replay_target, KeyRequest, KeyTemplate, Levels, DEFAULT_KEY,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(k) = key_from_bytes(data) {
        assert!(!k.contains(&b'\n'));
    }
    let text = String::from_utf8_lossy(data);
    let (tpl, rest) = text.split_once('\n').unwrap_or((&text, ""));
    if let Ok(t) = KeyTemplate::parse(tpl) {
        let _ = t.split(rest);
        let _ = replay_target(rest, &t);
    }
    if let Ok(l) = Levels::parse(tpl) {
        let hex = md5_hex(rest.as_bytes());
        let p = l.file_path(std::path::Path::new("/c"), &hex);
        assert!(p.ends_with(&hex));
    }
    let t = KeyTemplate::parse(DEFAULT_KEY).expect("default template");
    if let Some((host, path)) = rest.split_once('/') {
        let plain_host = !host.is_empty()
            && host
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-');
        if plain_host {
            let target = format!("/{path}");
            let req = KeyRequest {
                scheme: "https",
                method: "GET",
                host,
                port: 443,
                target: &target,
                headers: &[],
            };
            let key = String::from_utf8(t.render(&req)).expect("UTF-8 in, UTF-8 out");
            let parts = t.split(&key).expect("a rendered key splits");
            assert_eq!(parts.host.as_deref(), Some(host));
            assert_eq!(parts.target().as_deref(), Some(target.as_str()));
        }
    }
});
