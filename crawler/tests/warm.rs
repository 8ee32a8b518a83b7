//! Cache-warming behaviour of the `cache-preload` binary against an in-process server that
//! imitates nginx's FastCGI cache: cache-status counts, the Vary warning, `--verify` reasons,
//! `--variants`, the cache index and `--replay-keys`, adaptive back-off on 429 (asserted by
//! request counts, never by time) and `--connect-to`.

mod warm_support;

use std::collections::BTreeSet;
use std::process::Command;
use std::sync::atomic::Ordering;
use std::time::Duration;

use warm_support::{run, tempdir, text, Server, SiteOptions};

fn site(pages: usize, specials: bool) -> Server {
    Server::start(
        "127.0.0.1",
        0,
        SiteOptions {
            pages,
            specials,
            ..SiteOptions::default()
        },
    )
}

fn summary_json(stdout: &[u8]) -> serde_json::Value {
    let out = String::from_utf8_lossy(stdout);
    let last = out
        .lines()
        .rev()
        .find(|l| l.contains("\"event\":\"summary\""))
        .expect("a summary line");
    serde_json::from_str(last).expect("summary is JSON")
}

#[test]
fn counts_statuses_warns_once_about_vary_and_verify_lists_reasons() {
    let s = site(5, true);
    let o = run(&["--no-progress", "--verify", &s.url()]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(0), "{t}");
    // /, five pages, cookie, private, vary: MISS; bypass: BYPASS; /redirect/ points at a page
    // this run already fetched, so it is not requested again (no second count, no HIT).
    assert!(
        t.contains("cache: 9 MISS, 1 BYPASS (header X-FastCGI-Cache)"),
        "{t}"
    );
    assert_eq!(
        t.matches("warning: responses carry \"Vary: accept-encoding\"")
            .count(),
        1,
        "{t}"
    );
    assert!(t.contains("fastcgi_ignore_headers Vary;"), "{t}");
    let base = s.url();
    assert!(
        t.contains("verify: 7 of 10 pages HIT for a visitor, 3 still missing"),
        "{t}"
    );
    for (path, want) in [
        ("bypass/", "(BYPASS): BYPASS (nginx skip-cache rule)"),
        (
            "cookie/",
            "(MISS): Set-Cookie (nginx does not store responses that set cookies)",
        ),
        (
            "private/",
            "(MISS): Cache-Control: private; Cache-Control: max-age=0",
        ),
    ] {
        let line = format!("  still missing: {base}{path} {want}");
        assert!(
            t.lines().any(|l| l == line),
            "missing line {line:?} in\n{t}"
        );
    }
    // The verify pass sent a visitor's request for every page once more, redirects not followed.
    assert_eq!(s.hits_on("/p/3/"), 2);
    assert_eq!(s.hits_on("/cookie/"), 2);
}

#[test]
fn vary_warning_only_when_another_browser_really_misses() {
    for (ignored, warns) in [(true, false), (false, true)] {
        let s = Server::start(
            "127.0.0.1",
            0,
            SiteOptions {
                pages: 2,
                specials: true,
                vary_ignored: ignored,
                ..SiteOptions::default()
            },
        );
        let o = run(&["--no-progress", &s.url()]);
        let t = text(&o);
        assert_eq!(o.status.code(), Some(0), "{t}");
        assert_eq!(
            t.matches("warning: responses carry \"Vary: accept-encoding\"")
                .count(),
            usize::from(warns),
            "vary ignored by the cache: {ignored}\n{t}"
        );
        // The Vary header is still reported as a fact in the summary.
        assert!(t.contains("vary: responses vary on accept-encoding"), "{t}");
        // The check costs two requests: the crawl's headers (HIT), then Safari's.
        let aes: Vec<String> = s
            .log()
            .iter()
            .filter(|r| r.target == "/vary/")
            .map(|r| r.headers["accept-encoding"].clone())
            .collect();
        assert_eq!(
            aes,
            [
                "gzip, deflate, br, zstd",
                "gzip, deflate, br, zstd",
                "gzip, deflate, br"
            ]
        );
    }
}

#[test]
fn json_summary_carries_counts_and_verify() {
    let s = site(3, true);
    let o = run(&["--json", "--verify", &s.url()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let v = summary_json(&o.stdout);
    assert_eq!(v["cache"]["MISS"], 7, "{v}");
    assert_eq!(v["cache"]["BYPASS"], 1, "{v}");
    assert_eq!(v["cache_header"], "X-FastCGI-Cache");
    assert_eq!(v["vary"], serde_json::json!(["accept-encoding"]));
    assert_eq!(v["verify"]["checked"], 8, "{v}");
    let missing: Vec<&str> = v["verify"]["still_missing"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["url"].as_str().unwrap())
        .collect();
    assert_eq!(missing.len(), 3, "{v}");
    assert!(missing[0].ends_with("/bypass/"), "{missing:?}");
    assert!(v["concurrency_peak"].as_u64().unwrap() >= 1);
    // Every page event carries its own cache status.
    let out = String::from_utf8_lossy(&o.stdout);
    let pages: Vec<serde_json::Value> = out
        .lines()
        .filter(|l| l.contains("\"event\":\"page\""))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let bypass = pages
        .iter()
        .find(|p| p["url"].as_str().unwrap().ends_with("/bypass/"))
        .unwrap();
    assert_eq!(bypass["cache"], "BYPASS");
    assert_eq!(pages.iter().filter(|p| p["cache"] == "MISS").count(), 7);
}

#[test]
fn forced_cache_header_and_absent_header() {
    let s = site(2, false);
    let o = run(&["--no-progress", "--cache-header", "X-Not-There", &s.url()]);
    let t = text(&o);
    assert!(t.contains("cache: 3 NONE (header X-Not-There)"), "{t}");
}

#[test]
fn variants_warm_every_accept_encoding_and_the_mobile_agent() {
    let s = site(0, true);
    let vary = format!("{}vary/", s.url());
    // A bare --variants means all, and never swallows the URL after it.
    let o = run(&["--no-progress", "--no-recursive", "--variants", &vary]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let log = s.log();
    let seen: BTreeSet<(String, bool)> = log
        .iter()
        .filter(|r| r.target == "/vary/")
        .map(|r| {
            (
                r.headers["accept-encoding"].clone(),
                r.headers["user-agent"].contains("Mobile"),
            )
        })
        .collect();
    let mut want = BTreeSet::new();
    for ae in [
        "gzip, deflate, br, zstd",
        "gzip, deflate, br",
        "gzip, deflate",
        "identity",
    ] {
        want.insert((ae.to_owned(), false));
        want.insert((ae.to_owned(), true));
    }
    assert_eq!(seen, want);
    assert_eq!(s.hits_on("/vary/"), 8);
    assert!(
        text(&o).contains("variants: every page also requested as desktop/gzip, deflate, br; desktop/gzip, deflate; desktop/identity; mobile/gzip, deflate, br, zstd;"),
        "{}",
        text(&o)
    );
    // Each variant is its own stored entry, as nginx keeps one per Vary value.
    let stored = s
        .state
        .stored
        .lock()
        .unwrap()
        .iter()
        .filter(|k| k.starts_with("/vary/|"))
        .count();
    assert_eq!(stored, 4);
    let s2 = site(0, true);
    let url2 = format!("{}vary/", s2.url());
    let o = run(&[
        "--no-progress",
        "--no-recursive",
        "--variants=agents",
        &url2,
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let agents: Vec<bool> = s2
        .log()
        .iter()
        .map(|r| r.headers["user-agent"].contains("Mobile"))
        .collect();
    assert_eq!(agents, [false, true]);
}

fn md5sum(s: &str) -> String {
    let out = Command::new("python3")
        .args([
            "-c",
            "import hashlib,sys; print(hashlib.md5(sys.argv[1].encode()).hexdigest())",
            s,
        ])
        .output()
        .expect("python3 for an independent MD5");
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

#[test]
fn cache_index_names_nginx_files_and_checks_key_lines() {
    let s = site(2, false);
    let dir = tempdir("index");
    let cache = dir.join("cache");
    let index = dir.join("index.jsonl");
    // nginx already holds /p/1/ (correct key) and something else where /p/0/ belongs.
    let key1 = "httpGET127.0.0.1/p/1/";
    let md5 = md5sum(key1);
    let f1 = cache.join(&md5[31..]).join(&md5[29..31]).join(&md5);
    std::fs::create_dir_all(f1.parent().unwrap()).unwrap();
    std::fs::write(
        &f1,
        format!("\x05\0\0\0\0\0\0\0\nKEY: {key1}\nStatus: 200 OK\r\n\r\n"),
    )
    .unwrap();
    let md50 = md5sum("httpGET127.0.0.1/p/0/");
    let f0 = cache.join(&md50[31..]).join(&md50[29..31]).join(&md50);
    std::fs::create_dir_all(f0.parent().unwrap()).unwrap();
    std::fs::write(&f0, "\x05\nKEY: httpGET127.0.0.1/p/zero/\n").unwrap();
    let o = run(&[
        "--no-progress",
        "--cache-path",
        cache.to_str().unwrap(),
        "--levels",
        "1:2",
        "--index-out",
        index.to_str().unwrap(),
        &s.url(),
    ]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(0), "{t}");
    assert!(
        t.contains("index: 1 cache files match their key, 2 missing or different"),
        "{t}"
    );
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&index)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    let by_key = |k: &str| {
        lines
            .iter()
            .find(|l| l["key"] == k)
            .unwrap_or_else(|| panic!("{k} in {lines:?}"))
            .clone()
    };
    let e1 = by_key(key1);
    assert_eq!(e1["md5"], md5);
    assert_eq!(e1["file"], f1.to_str().unwrap());
    assert_eq!(e1["on_disk"], "match");
    assert_eq!(e1["url"], format!("{}p/1/", s.url()));
    let e0 = by_key("httpGET127.0.0.1/p/0/");
    assert_eq!(e0["on_disk"], "key-mismatch");
    assert_eq!(e0["found_key"], "httpGET127.0.0.1/p/zero/");
    assert_eq!(by_key("httpGET127.0.0.1/")["on_disk"], "missing");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn replay_keys_requests_exactly_the_stored_targets() {
    let s = site(0, false);
    let dir = tempdir("replay");
    let keys = [
        "httpGET127.0.0.1/k/%e6%b0%b4/",
        "httpGET127.0.0.1/k/a?x=1&y=%2F",
        "httpHEAD127.0.0.1/k/head/",
        "httpGETother.example/k/other/",
    ];
    for (i, k) in keys.iter().enumerate() {
        let name = format!("{i:0>32}");
        let sub = dir.join("0").join("00");
        std::fs::create_dir_all(&sub).unwrap();
        std::fs::write(sub.join(name), format!("\x05\nKEY: {k}\n")).unwrap();
    }
    let o = run(&[
        "--no-progress",
        "--no-recursive",
        "--replay-keys",
        dir.to_str().unwrap(),
        &s.url(),
    ]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(0), "{t}");
    let targets: BTreeSet<String> = s.log().into_iter().map(|r| r.target).collect();
    let want: BTreeSet<String> = ["/", "/k/%e6%b0%b4/", "/k/a?x=1&y=%2F"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(targets, want, "{t}");
    assert!(
        t.contains("HEAD entry (only GET entries are warmed)"),
        "{t}"
    );
    assert!(t.contains("host other.example is not 127.0.0.1"), "{t}");
    std::fs::remove_dir_all(&dir).unwrap();
}

fn throttled_run(args: &[&str]) -> (usize, usize, String) {
    let s = Server::start(
        "127.0.0.1",
        0,
        SiteOptions {
            pages: 40,
            max_in_flight: Some(2),
            delay: Duration::from_millis(20),
            ..SiteOptions::default()
        },
    );
    let mut all = vec!["--no-progress", "--tries", "30", "--max-retry-wait", "0"];
    all.extend_from_slice(args);
    let url = s.url();
    all.push(&url);
    let o = run(&all);
    let t = text(&o);
    assert_eq!(
        o.status.code(),
        Some(0),
        "every page must end up fetched: {t}"
    );
    let ok = s.log().iter().filter(|r| r.status == 200).count();
    (s.state.throttled.load(Ordering::SeqCst), ok, t)
}

#[test]
fn adaptive_concurrency_backs_off_on_429_by_request_counts() {
    // The server answers 429 (Retry-After: 0) whenever more than 2 requests are in flight.
    let (adaptive_429, adaptive_ok, t) = throttled_run(&["--max-concurrency", "8"]);
    let (fixed_429, fixed_ok, _) = throttled_run(&["--concurrency", "8"]);
    assert_eq!(adaptive_ok, 41, "{t}");
    assert_eq!(fixed_ok, 41);
    // Fixed at 8, six of every eight requests bounce; adaptive halves on each burst and only
    // probes past the limit now and then.
    assert!(
        adaptive_429 * 3 <= fixed_429,
        "adaptive got {adaptive_429} 429s, fixed concurrency {fixed_429}"
    );
    assert!(
        adaptive_429 <= 25,
        "adaptive got {adaptive_429} 429s for 41 pages\n{t}"
    );
    eprintln!("429s: adaptive {adaptive_429}, fixed concurrency {fixed_429}");
}

#[test]
fn adaptive_never_exceeds_its_cap() {
    let s = Server::start(
        "127.0.0.1",
        0,
        SiteOptions {
            pages: 60,
            delay: Duration::from_millis(5),
            ..SiteOptions::default()
        },
    );
    // The CPU check is off: on a busy test machine it would rightly hold the limit lower.
    let o = run(&[
        "--no-progress",
        "--max-concurrency",
        "3",
        "--cpu-reserve",
        "0",
        &s.url(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(s.state.max_seen_in_flight.load(Ordering::SeqCst) <= 3);
    assert!(
        text(&o).contains("concurrency: adaptive, peak 3 in flight (cap 3)"),
        "{}",
        text(&o)
    );
}

#[test]
fn connect_to_warms_every_node_with_the_public_host() {
    let a = site(3, false);
    let port = a.addr.port();
    let b = Server::start(
        "127.0.0.2",
        0,
        SiteOptions {
            pages: 3,
            ..SiteOptions::default()
        },
    );
    let public = format!("http://127.0.0.1:{port}/");
    let rule_a = format!("127.0.0.1:{port}:127.0.0.1:{port}");
    let rule_b = format!("127.0.0.1:{port}:{}", b.addr);
    let o = run(&[
        "--no-progress",
        "--connect-to",
        &rule_a,
        "--connect-to",
        &rule_b,
        &public,
    ]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(0), "{t}");
    let b_log = b.log();
    let b_targets: BTreeSet<&str> = b_log.iter().map(|r| r.target.as_str()).collect();
    assert_eq!(
        b_targets,
        ["/", "/p/0/", "/p/1/", "/p/2/"].into_iter().collect()
    );
    let host = format!("127.0.0.1:{port}");
    assert!(b_log.iter().all(|r| r.headers["host"] == host), "{b_log:?}");
    // Node A is also the public address: crawl request plus node request per page.
    assert_eq!(a.hits_on("/p/1/"), 2);
    assert!(
        t.contains(&format!(
            "node 127.0.0.1:{port}: 4 responses, 0 errors, cache: 4 HIT"
        )),
        "{t}"
    );
    assert!(
        t.contains(&format!(
            "node {}: 4 responses, 0 errors, cache: 4 MISS",
            b.addr
        )),
        "{t}"
    );
}

#[test]
fn bad_warm_options_fail_at_once_with_one_line() {
    let cases: [(&[&str], &str); 6] = [
        (&["--connect-to", "a:80:node1:80"], "is not an IP address"),
        (
            &["--cache-path", "/tmp/x", "--cache-key", "$scheme$nope"],
            "unsupported variable $nope",
        ),
        (&["--levels", "1:2"], "need --cache-path"),
        (&["-j", "4", "--max-concurrency", "4"], "give one"),
        (&["--max-rps", "0"], "--max-rps must be a positive number"),
        (&["--variants=some"], "--variants: unknown set"),
    ];
    for (args, want) in cases {
        let mut all = args.to_vec();
        all.push("http://127.0.0.1:9/");
        let o = run(&all);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
    }
}
