//! safexec's tenancy inputs (issue 15 classes 1 and 8, issue 13): the `/etc/group` reader,
//! the URL host/port reader and the choice of a caller's cache root never panic; a chosen root
//! is always one of the caller's allowed roots, and it is the one `--cache-path` names when
//! given; cache-purge arguments never keep a caller's `--cache-path`; every file slot of an
//! accepted argv points inside it.
#![no_main]

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;

use libfuzzer_sys::fuzz_target;
use safexec::config::{parse, CacheRoot};
use safexec::hardened::{choose_root, url_authority};
use safexec::policy::{self, PurgeRequest, Tool};
use safexec::users::{groups_in, Account};

fuzz_target!(|data: &[u8]| {
    // Part 1: a group file for an account.
    let text = String::from_utf8_lossy(data);
    let account = Account {
        name: "site1".into(),
        uid: 1001,
        gid: 1001,
    };
    for g in groups_in(&text, &account) {
        assert!(!g.is_empty() && !g.contains(':') && !g.contains('\n'));
    }
    // Part 2: URLs.
    if let Some((host, _port)) = url_authority(data) {
        assert!(!host.is_empty());
        assert!(!host.bytes().any(|c| c.is_ascii_uppercase() || c == b'/'));
    }
    // Part 3: argv for cache-purge and cache-preload (NUL-separated).
    let args: Vec<OsString> = data
        .split(|&b| b == 0)
        .map(|a| OsString::from_vec(a.to_vec()))
        .collect();
    for tool in [Tool::CachePurge, Tool::CachePreload] {
        if let Ok(c) = policy::check(tool, &args) {
            assert!(c.file_slots.iter().all(|s| s.index < c.args.len()));
            if let Some(p) = &c.purge {
                assert!(p.args.len() <= args.len());
                let kept_path = p.args.iter().any(|a| {
                    let b = a.as_encoded_bytes();
                    b == b"--cache-path" || b.starts_with(b"--cache-path=")
                });
                assert!(!kept_path, "--cache-path kept: {args:?}");
            }
        }
    }
    // Part 4: root choice against a fixed set of roots (the config parser builds them).
    let cfg = parse(
        b"cache_root = /c/a www-data allow=site1 url=https://a.example,http://a.example:8080\n\
          cache_root = /c/b www-data allow=site1 url=https://b.example\n\
          cache_root = /c/c www-data allow=site1\n",
    )
    .expect("fixed config");
    let roots: Vec<&CacheRoot> = cfg.cache_roots.iter().collect();
    let mut req = PurgeRequest {
        urls: args.clone(),
        ..PurgeRequest::default()
    };
    for cache_path in [None, args.first().cloned()] {
        req.cache_path = cache_path.clone();
        if let Ok(r) = choose_root(&roots, &req) {
            assert!(roots.iter().any(|x| x.path == r.path));
            if cache_path.is_some() {
                assert!(r.path.as_os_str().len() <= cache_path.as_ref().unwrap().len());
            }
        }
    }
});
