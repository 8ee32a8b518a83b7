//! nginx-cache's key-template parser and evaluator on arbitrary templates and requests: parse,
//! render and split never panic; a rendered default-template key splits back into its parts;
//! the file path of any key is `[0-9a-f]{1,2}(/[0-9a-f]{1,2}){0,2}/[0-9a-f]{32}`, never `..`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nginx_cache::{md5_hex, KeyRequest, KeyTemplate, Levels, DEFAULT_KEY};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut fields = text.splitn(5, '\u{1}');
    let tpl = fields.next().unwrap_or("");
    let host = fields.next().unwrap_or("example.com");
    let target = fields.next().unwrap_or("/");
    let levels = fields.next().unwrap_or("1:2");
    let cookie = fields.next().unwrap_or("");
    let headers = [("Cookie", cookie), ("User-Agent", host)];
    let req = KeyRequest {
        scheme: if data.first().is_some_and(|b| b & 1 == 1) {
            "https"
        } else {
            "http"
        },
        method: "GET",
        host,
        port: 8080,
        target,
        headers: &headers,
    };
    if let Ok(t) = KeyTemplate::parse(tpl) {
        let key = t.render(&req);
        if let Ok(k) = std::str::from_utf8(&key) {
            let _ = t.split(k);
        }
    }
    let def = KeyTemplate::parse(DEFAULT_KEY).unwrap();
    let key = def.render(&req);
    if let Ok(k) = std::str::from_utf8(&key) {
        if !host.is_empty()
            && !host.contains('/')
            && target.starts_with('/')
            && !host.starts_with("http")
        {
            let p = def.split(k).expect("a rendered key splits");
            assert_eq!(p.target().as_deref(), Some(target));
        }
    }
    if let Ok(l) = Levels::parse(levels) {
        let rel = l.rel_path(&md5_hex(&key));
        let parts: Vec<&str> = rel.split('/').collect();
        assert_eq!(parts.len(), l.depth() + 1);
        for p in &parts {
            assert!(
                !p.is_empty() && p.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')),
                "{rel}"
            );
        }
    }
});
