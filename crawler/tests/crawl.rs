//! End-to-end tests of the `cache-preload` binary against an in-process
//! HTTP server on 127.0.0.1.

mod common;

use std::io::Write;
use std::time::{Duration, Instant};

use common::{npp_command_b, run, run_env, stderr, stdout, Req, Resp, Server};
use regex::Regex;
use serde_json::Value;

fn json_lines(s: &str) -> Vec<Value> {
    s.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON line {l:?}: {e}")))
        .collect()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(data).unwrap();
    gz.finish().unwrap()
}

#[test]
fn request_line_bytes_for_non_ascii_and_mixed_case_links() {
    let server = Server::start(|r: &Req| match r.path().as_str() {
        "/" => Resp::html(
            "<html><head><base href=\"/base/\"></head><body>\
             <a href=\"/p/水/\">raw</a>\
             <a href=\"/p/%e6%B0%b4/\">mixed</a>\
             <a href=\"/CamelCase/Path/\">case</a>\
             <a href=\"rel?q=a b&amp;r=%2f\">relative, base applies</a>\
             <a href=\"/a^b\">caret</a>\
             <a href=\"/p?\">empty query</a>\
             <a href=\"/frag/#x\">fragment</a>\
             </body></html>",
        ),
        _ => Resp::html("leaf"),
    });
    let out = run(&["--no-progress", &server.url("/")]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let mut targets = server.targets();
    targets.sort();
    let mut want = vec![
        "/",
        "/p/%E6%B0%B4/",
        "/p/%e6%B0%b4/",
        "/CamelCase/Path/",
        "/base/rel?q=a%20b&r=%2f",
        "/a%5Eb",
        "/p?",
        "/frag/",
    ];
    want.sort();
    assert_eq!(targets, want);
    // The exact request line bytes, HTTP/1.1, GET only.
    for r in server.requests() {
        let line = String::from_utf8(r.line.clone()).unwrap();
        assert_eq!(line, format!("GET {} HTTP/1.1", r.target_str()));
        assert_eq!(r.header("accept-encoding"), Some("gzip, deflate, br, zstd"));
        assert!(r.header("user-agent").unwrap().contains("Chrome/"));
        assert!(r.header("accept").unwrap().starts_with("text/html"));
        assert_eq!(r.header("host"), Some(server.addr.to_string().as_str()));
    }
}

#[test]
fn pct_modes_from_flag_and_environment() {
    let page = "<a href=\"/p/%e6%B0%b4/\">x</a>";
    let s1 = Server::start(move |r: &Req| match r.path().as_str() {
        "/" => Resp::html(page),
        _ => Resp::html(""),
    });
    let out = run(&["--no-progress", "--pct-mode", "upper", &s1.url("/")]);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        s1.targets().contains(&"/p/%E6%B0%B4/".to_string()),
        "{:?}",
        s1.targets()
    );
    let s2 = Server::start(move |r: &Req| match r.path().as_str() {
        "/" => Resp::html(page),
        _ => Resp::html(""),
    });
    let url = s2.url("/");
    let args = npp_command_b(&[], &url);
    let out = run_env(&args, &[("PCTNORM_CASE", "lower")]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        s2.targets().contains(&"/p/%e6%b0%b4/".to_string()),
        "{:?}",
        s2.targets()
    );
}

#[test]
fn redirects_are_followed_and_final_url_reported() {
    let server = Server::start(|r: &Req| match r.path().as_str() {
        "/" => Resp::html("<a href=\"/old\">o</a><a href=\"/loop\">l</a><a href=\"/away\">a</a>"),
        "/old" => Resp::redirect(301, "/mid"),
        "/mid" => Resp::redirect(302, "/new/"),
        "/new/" => Resp::html("new"),
        "/loop" => Resp::redirect(302, "/loop"),
        "/away" => Resp::redirect(302, "http://elsewhere.invalid/"),
        _ => Resp::new(404, ""),
    });
    let url = server.url("/");
    let out = run(&npp_command_b(&[], &url));
    let log = stderr(&out);
    assert!(
        log.contains(&format!("URL:{} [", server.url("/new/"))),
        "{log}"
    );
    assert!(
        !log.contains(&format!("URL:{} [", server.url("/old"))),
        "{log}"
    );
    assert!(log.contains("redirections exceeded"), "{log}");
    assert!(log.contains("leaves the allowed hosts"), "{log}");
    // 20 redirects followed, then give up: 1 + 21 requests for /loop.
    let loops = server.targets().iter().filter(|t| *t == "/loop").count();
    assert_eq!(loops, 21);
    assert_eq!(out.status.code(), Some(8));
}

#[test]
fn http_errors_404_and_500_in_wget_log_and_json() {
    let server = Server::start(|r: &Req| match r.path().as_str() {
        "/" => Resp::html("<a href=\"/gone\">g</a><a href=\"/boom\">b</a>"),
        "/gone" => Resp::new(404, "nope"),
        _ => Resp::new(500, "err"),
    });
    let url = server.url("/");
    let out = run(&npp_command_b(&[], &url));
    let log = stderr(&out);
    assert_eq!(out.status.code(), Some(8));
    let lines: Vec<&str> = log.lines().collect();
    let i = lines
        .iter()
        .position(|l| *l == format!("{}:", server.url("/gone")))
        .expect(&log);
    assert!(
        Regex::new(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d ERROR 404: Not Found\.$")
            .unwrap()
            .is_match(lines[i + 1])
    );
    let j = lines
        .iter()
        .position(|l| *l == format!("{}:", server.url("/boom")))
        .expect(&log);
    assert!(
        lines[j + 1].ends_with("ERROR 500: Internal Server Error."),
        "{}",
        lines[j + 1]
    );
    let out = run(&["--json", &url]);
    let ev = json_lines(&stdout(&out));
    let statuses: Vec<i64> = ev
        .iter()
        .filter(|e| e["event"] == "page")
        .map(|e| e["status"].as_i64().unwrap())
        .collect();
    assert_eq!(statuses.len(), 3);
    assert!(statuses.contains(&404) && statuses.contains(&500));
    let summary = ev.last().unwrap();
    assert_eq!(summary["event"], "summary");
    assert_eq!(summary["ok"], 1);
    assert_eq!(summary["http_errors"], 2);
    assert_eq!(summary["exit_code"], 8);
}

#[test]
fn retry_on_429_honours_retry_after() {
    let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let h = hits.clone();
    let server = Server::start(move |r: &Req| {
        if r.path() == "/" && h.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
            Resp::new(429, "slow down").header("Retry-After", "1")
        } else {
            Resp::html("ok")
        }
    });
    let url = server.url("/");
    let t0 = Instant::now();
    let out = run(&npp_command_b(&[], &url));
    let took = t0.elapsed();
    let log = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{log}");
    assert_eq!(server.targets(), vec!["/", "/"]);
    // Second try reported as try 2, and the Retry-After pause was taken.
    assert!(
        log.contains(&format!("URL:{url} [2/2] -> \"-\" [2]")),
        "{log}"
    );
    assert!(took >= Duration::from_millis(900), "{took:?}");
    // Without retries left, the 429 is the final answer.
    let s2 = Server::start(|_r: &Req| Resp::new(429, "").header("Retry-After", "1"));
    let out = run(&["--json", "--tries", "1", &s2.url("/")]);
    assert_eq!(out.status.code(), Some(8));
    assert_eq!(s2.targets().len(), 1);
}

#[test]
fn retry_after_pauses_every_new_request() {
    // The first request for /p1 gets 429 with Retry-After: 1. Requests to the other pages must
    // not start during that second (before the fix, the other slots kept fetching).
    let t0 = Instant::now();
    let arrivals = std::sync::Arc::new(std::sync::Mutex::new(Vec::<(String, Duration)>::new()));
    let throttled = std::sync::Arc::new(std::sync::Mutex::new(None::<Duration>));
    let (a, th) = (arrivals.clone(), throttled.clone());
    let server = Server::start(move |r: &Req| {
        let now = t0.elapsed();
        if r.path() == "/robots.txt" {
            return Resp::new(404, "");
        }
        a.lock().unwrap().push((r.path(), now));
        match r.path().as_str() {
            "/" => Resp::html(
                (1..=8)
                    .map(|i| format!("<a href=\"/p{i}\">p{i}</a>"))
                    .collect::<String>(),
            ),
            "/p1" if th.lock().unwrap().is_none() => {
                *th.lock().unwrap() = Some(now);
                Resp::new(429, "slow down").header("Retry-After", "1")
            }
            _ => Resp::html("ok").delay(Duration::from_millis(100)),
        }
    });
    for args in [
        vec!["--json", "--concurrency", "3"],
        vec!["--json"], // adaptive
    ] {
        arrivals.lock().unwrap().clear();
        *throttled.lock().unwrap() = None;
        let url = server.url("/");
        let mut argv = args.clone();
        argv.push(&url);
        let out = run(&argv);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let at = throttled.lock().unwrap().expect("the 429 was sent");
        let seen = arrivals.lock().unwrap().clone();
        assert_eq!(seen.len(), 10, "{seen:?}"); // 9 pages + the retry of /p1
                                                // Requests sent before the 429 arrived may land a moment after it; nothing else may
                                                // start until the pause is over.
        let early: Vec<_> = seen
            .iter()
            .filter(|(_, t)| {
                *t > at + Duration::from_millis(100) && *t < at + Duration::from_millis(950)
            })
            .collect();
        assert!(
            early.is_empty(),
            "{args:?}: during the pause: {early:?} (429 at {at:?})"
        );
    }
}

#[test]
fn gzip_sitemaps_and_indexes() {
    let server = Server::start(|r: &Req| {
        let base = format!("http://{}", r.header("host").unwrap());
        match r.path().as_str() {
            "/sitemap_index.xml" => Resp::new(
                200,
                format!(
                    "<?xml version=\"1.0\"?><sitemapindex xmlns=\"http://www.sitemaps.org/schemas/sitemap/0.9\">\
                     <sitemap><loc>{base}/s1.xml.gz</loc></sitemap>\
                     <sitemap><loc>{base}/s2.xml</loc></sitemap>\
                     <sitemap><loc>http://other.invalid/s3.xml</loc></sitemap></sitemapindex>"
                ),
            )
            .header("Content-Type", "application/xml"),
            "/s1.xml.gz" => Resp::new(
                200,
                gzip(format!("<urlset><url><loc>{base}/from-s1/</loc></url><url><loc>{base}/wp-admin/x</loc></url></urlset>").as_bytes()),
            )
            .header("Content-Type", "application/x-gzip"),
            "/s2.xml" => Resp::new(
                200,
                gzip(format!("<urlset><url><loc>{base}/from-s2/%e6%B0/</loc></url><url><loc>http://other.invalid/x</loc></url></urlset>").as_bytes()),
            )
            .header("Content-Type", "application/xml")
            .header("Content-Encoding", "gzip"),
            _ => Resp::html("<a href=\"/linked/\">l</a>"),
        }
    });
    let out = run(&[
        "--json",
        "--no-recursive",
        "--reject-regex",
        "/wp-admin/",
        "--sitemap",
        &server.url("/sitemap_index.xml"),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let mut t = server.targets();
    // The index's sitemaps are fetched at once (either may arrive first); their pages are
    // queued in the index's order.
    t[1..3].sort();
    assert_eq!(
        t,
        vec![
            "/sitemap_index.xml",
            "/s1.xml.gz",
            "/s2.xml",
            "/from-s1/",
            "/from-s2/%e6%B0/"
        ]
    );
    let ev = json_lines(&stdout(&out));
    assert_eq!(ev.last().unwrap()["ok"], 2);
}

#[test]
fn robots_sitemaps_seed_and_recursion_continues() {
    let server = Server::start(|r: &Req| {
        let base = format!("http://{}", r.header("host").unwrap());
        match r.path().as_str() {
            "/robots.txt" => Resp::new(200, format!("User-agent: *\nSitemap: {base}/sm.xml\n")),
            "/sm.xml" => Resp::new(
                200,
                format!("<urlset><url><loc>{base}/deep/</loc></url></urlset>"),
            ),
            "/deep/" => Resp::html("<a href=\"/deeper/\">d</a>"),
            _ => Resp::html(""),
        }
    });
    let out = run(&["--no-progress", "--robots-sitemaps", &server.url("/")]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let t = server.all_targets();
    for want in ["/robots.txt", "/sm.xml", "/deep/", "/deeper/", "/"] {
        assert!(t.contains(&want.to_string()), "{want} in {t:?}");
    }
}

/// With sitemaps seeded, a link that redirects to a page the sitemap already warmed
/// (`/contact` → `/contact/`) is not followed to it again, whichever comes first; each page is
/// requested once and counted once.
#[test]
fn redirect_to_a_page_already_fetched_is_not_requested_again() {
    let server = Server::start(|r: &Req| {
        let base = format!("http://{}", r.header("host").unwrap());
        match r.path().as_str() {
            "/robots.txt" => Resp::new(200, format!("User-agent: *\nSitemap: {base}/sm.xml\n")),
            "/sm.xml" => Resp::new(
                200,
                format!("<urlset><url><loc>{base}/contact/</loc></url></urlset>"),
            ),
            "/contact" => Resp::redirect(301, &format!("{base}/contact/")),
            "/" => Resp::html("<a href=\"/contact\">c</a> <a href=\"/about\">a</a>"),
            "/about" => Resp::redirect(301, &format!("{base}/about/")),
            _ => Resp::html("<a href=\"/contact\">c</a>"),
        }
    });
    let out = run(&["--no-progress", "--json", &server.url("/")]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let t = server.targets();
    let count = |p: &str| t.iter().filter(|x| *x == p).count();
    assert_eq!(count("/contact/"), 1, "{t:?}");
    assert_eq!(count("/about/"), 1, "{t:?}");
    let summary: serde_json::Value = stdout(&out)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|e| e["event"] == "summary")
        .expect("summary");
    // `/`, `/contact/` and `/about/`; the `/contact` hop to the warmed page is skipped.
    assert_eq!(summary["ok"], 3, "{summary}");
    assert_eq!(summary["failed"], 0, "{summary}");
}

/// NPP's default "Exclude Endpoints" regex (npp-usage.md §8): it rejects robots.txt and every
/// sitemap URL, which must not stop the seeding (only the pages found are filtered).
const NPP_REJECT: &str = r"--reject-regex=/wp-admin/|/wp-content/|/wp-includes/|/wp-json/|xmlrpc|wp-.*\.php|/cart/|/checkout/|/my-account/|robots\.txt|sitemap(_index)?\.xml|[a-z0-9_-]+-sitemap([0-9]+)?\.xml|wp-sitemap|comment-page-|/feed/|/embed/|/login/|/register/|\.well-known|\?|=|&|#";

#[test]
fn wordpress_sitemaps_seed_both_dialects_by_default() {
    // WordPress: robots.txt advertises wp-sitemap.xml, an index whose users sitemap names the
    // author page, which no page links to.
    let server = Server::start(|r: &Req| {
        let base = format!("http://{}", r.header("host").unwrap());
        match r.path().as_str() {
            "/robots.txt" => Resp::new(
                200,
                format!("User-agent: *\nDisallow: /wp-admin/\n\nSitemap: {base}/wp-sitemap.xml\n"),
            ),
            "/wp-sitemap.xml" => Resp::new(
                200,
                format!(
                    "<?xml version=\"1.0\"?><sitemapindex xmlns=\"http://www.sitemaps.org/schemas/sitemap/0.9\">\
                     <sitemap><loc>{base}/wp-sitemap-posts-post-1.xml</loc></sitemap>\
                     <sitemap><loc>{base}/wp-sitemap-users-1.xml</loc></sitemap></sitemapindex>"
                ),
            )
            .header("Content-Type", "application/xml"),
            "/wp-sitemap-posts-post-1.xml" => Resp::new(
                200,
                format!("<urlset><url><loc>{base}/hello-world/</loc></url></urlset>"),
            ),
            "/wp-sitemap-users-1.xml" => Resp::new(
                200,
                format!("<urlset><url><loc>{base}/author/admin/</loc></url></urlset>"),
            ),
            "/" => Resp::html("<a href=\"/hello-world/\">post</a>"),
            "/hello-world/" | "/author/admin/" => Resp::html("<a href=\"/\">home</a>"),
            _ => Resp::new(404, "no"),
        }
    });
    let url = server.url("/");
    // The wget dialect, as NPP's "Preload All" runs it, with NPP's default reject regex.
    let out = run(&npp_command_b(&[NPP_REJECT], &url));
    let log = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{log}");
    let p = npp_parse(&log);
    assert_eq!(p.checked, 3, "{log}");
    let mut urls = p.line_start_urls.clone();
    urls.sort();
    assert_eq!(
        urls,
        [
            server.url("/"),
            server.url("/author/admin/"),
            server.url("/hello-world/")
        ]
    );
    assert_eq!(p.downloaded, Some(3));
    assert!(p.finished.is_some() && p.wall.is_some() && p.size.is_some());
    // Seeding is silent in the log: no notices, no URL lines for robots.txt or the sitemaps.
    assert!(!log.contains("sitemap") && !log.contains("robots"), "{log}");
    let all = server.all_targets();
    assert_eq!(all[0], "/robots.txt", "{all:?}");
    // The switch turns it off: the author page is then out of reach, as with wget.
    let out = run(&npp_command_b(&[NPP_REJECT, "--no-robots-sitemaps"], &url));
    let p = npp_parse(&stderr(&out));
    assert_eq!(p.checked, 2, "{}", stderr(&out));
    // The native dialect seeds the same way, and --no-robots-sitemaps turns it off there too.
    let out = run(&["--json", &url]);
    let ev = json_lines(&stdout(&out));
    assert_eq!(ev.last().unwrap()["ok"], 3, "{ev:?}");
    let out = run(&["--json", "--no-robots-sitemaps", &url]);
    let ev = json_lines(&stdout(&out));
    assert_eq!(ev.last().unwrap()["ok"], 2, "{ev:?}");
    // Without recursion nothing is seeded: one URL asked, one URL fetched.
    let before = server.all_targets().len();
    let out = run(&["--json", "--no-recursive", &url]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(server.all_targets().len(), before + 1);
}

/// Runs a non-recursive crawl of the URL list `list`, given on stdin.
fn run_url_list_from_stdin(list: &str) -> std::process::Output {
    let mut child = std::process::Command::new(common::bin())
        .args(["--no-progress", "--no-recursive", "--url-list", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(list.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn url_list_from_stdin_and_file() {
    let server = Server::start(|_r: &Req| Resp::html("<a href=\"/not-followed/\">x</a>"));
    let list = format!(
        "# comment\n{}\n\n{}\n",
        server.url("/one"),
        server.url("/two")
    );
    let out = run_url_list_from_stdin(&list);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(server.targets(), vec!["/one", "/two"]);
    // A list that cannot be read is an I/O failure (exit 1), not a usage error.
    let out = run(&["--url-list", "/nonexistent/list.txt"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(
        stderr(&out),
        "cache-preload: cannot read --url-list '/nonexistent/list.txt': No such file or directory (os error 2)\n"
    );
}

/// Issue 15 class 1: a rejected line of a URL list is reported by its number and a reason, never
/// echoed (through safexec the list may hold what only the job user could read).
#[test]
fn rejected_url_list_lines_are_not_echoed() {
    let server = Server::start(|_r: &Req| Resp::html("ok"));
    let list = format!(
        "secret-token:hunter2\n/relative/hunter3\n{}\n",
        server.url("/one")
    );
    let out = run_url_list_from_stdin(&list);
    let all = format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
    assert_eq!(server.targets(), vec!["/one"], "{all}");
    assert!(
        all.contains("skipping line 1 of the URL list: not a valid http or https URL"),
        "{all}"
    );
    assert!(all.contains("skipping line 2 of the URL list"), "{all}");
    assert!(
        !all.contains("hunter") && !all.contains("secret-token"),
        "{all}"
    );
}

#[test]
fn endless_calendar_is_bounded_by_limits() {
    let cal = |r: &Req| {
        let t = r.target_str();
        let n: u64 = t
            .rsplit('=')
            .next()
            .and_then(|x| x.parse().ok())
            .unwrap_or(0);
        Resp::html(format!(
            "<a href=\"/calendar/?month={}\">next</a><a href=\"/calendar/?month={}\">prev</a>",
            n + 1,
            n.saturating_sub(1) + 1000
        ))
    };
    let s = Server::start(cal);
    let out = run(&["--json", "--max-pages", "40", &s.url("/calendar/?month=1")]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(s.targets().len(), 40);
    let ev = json_lines(&stdout(&out));
    assert_eq!(ev.last().unwrap()["limit_reached"], true);

    let s = Server::start(cal);
    let out = run(&["--json", "--max-depth", "3", &s.url("/calendar/?month=1")]);
    assert_eq!(out.status.code(), Some(0));
    // depth 0: 1 page, 1: 2, 2: 4, 3: 8 at most.
    assert!(s.targets().len() <= 15, "{}", s.targets().len());

    let s = Server::start(cal);
    let out = run(&[
        "--json",
        "--max-per-pattern",
        "25",
        &s.url("/calendar/?month=1"),
    ]);
    assert_eq!(out.status.code(), Some(0));
    assert!(s.targets().len() <= 26, "{}", s.targets().len());
    let ev = json_lines(&stdout(&out));
    assert!(ev.last().unwrap()["dropped_pattern_cap"].as_u64().unwrap() > 0);
}

#[test]
fn five_megabyte_page_streams_through_the_scanner() {
    let mut big = String::from("<html><body><a href=\"/first/\">f</a>");
    let filler = "<p>lorem ipsum dolor sit amet, consectetur adipiscing elit</p>\n";
    while big.len() < 5 * 1024 * 1024 {
        big.push_str(filler);
    }
    big.push_str("<a href=\"/last/\">l</a></body></html>");
    let size = big.len();
    let gz = gzip(big.as_bytes());
    let (plain, packed) = (big.into_bytes(), gz);
    let server = Server::start(move |r: &Req| match r.path().as_str() {
        "/" => Resp::html(plain.clone()),
        "/gz" => Resp::html(packed.clone()).header("Content-Encoding", "gzip"),
        _ => Resp::html("x"),
    });
    let out = run(&["--json", &server.url("/"), &server.url("/gz")]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let ev = json_lines(&stdout(&out));
    let root = ev.iter().find(|e| e["url"] == server.url("/")).unwrap();
    assert_eq!(root["bytes"].as_u64().unwrap() as usize, size);
    let t = server.targets();
    assert!(
        t.contains(&"/first/".to_string()) && t.contains(&"/last/".to_string()),
        "{t:?}"
    );
    let gz = ev.iter().find(|e| e["url"] == server.url("/gz")).unwrap();
    assert!(gz["bytes"].as_u64().unwrap() < size as u64 / 10);
    assert_eq!(gz["links"], 2);
}

/// NPP's parsers (npp-usage.md §3.2, §7.2) reimplemented.
struct NppParse {
    checked: usize,
    errors_404: usize,
    broken: Vec<String>,
    last_url: Option<String>,
    finished: Option<String>,
    wall: Option<String>,
    downloaded: Option<u64>,
    size: Option<(String, String)>,
    speed: Option<String>,
    line_start_urls: Vec<String>,
}

fn npp_parse(log: &str) -> NppParse {
    let success = Regex::new(r"URL:(https?://[^\s]+).*?->").unwrap();
    let failed_url = Regex::new(r"^(https?://\S+):$").unwrap();
    let finished = Regex::new(r"^FINISHED\s+--([\d\-]+\s+[\d:]+)--$").unwrap();
    let complete =
        Regex::new(r"(?m)^FINISHED\s+--\d{4}-\d{2}-\d{2}\s+\d{2}:\d{2}:\d{2}--").unwrap();
    let wall =
        Regex::new(r"Total wall clock time:\s*((?:\d+h )?(?:\d+m )?\d+(?:\.\d+)?s)").unwrap();
    let dl = Regex::new(r"^Downloaded:\s+(\d+)\s+files").unwrap();
    let size = Regex::new(r"Downloaded:.*?,\s+([\d.]+\s*)([KMG])\s+in\s+[\d.]+s").unwrap();
    let speed = Regex::new(r"Downloaded:.*?\(([\d.]+\s+\w+/s)\)").unwrap();
    let advanced = Regex::new(r"^(\d{4}-\d{2}-\d{2}\s+\d{2}:\d{2}:\d{2})\s+URL:(\S+)").unwrap();
    let mut p = NppParse {
        checked: 0,
        errors_404: 0,
        broken: vec![],
        last_url: None,
        finished: None,
        wall: None,
        downloaded: None,
        size: None,
        speed: None,
        line_start_urls: vec![],
    };
    let mut pending: Option<String> = None;
    for raw in log.split('\n') {
        let line = raw.trim();
        if let Some(c) = success.captures(line) {
            p.checked += 1;
            p.last_url = Some(c[1].to_string());
        }
        if let Some(c) = failed_url.captures(line) {
            pending = Some(c[1].to_string());
        }
        if line.to_ascii_uppercase().contains("ERROR 404") {
            p.errors_404 += 1;
            if let Some(u) = pending.take() {
                p.broken.push(u);
            }
        }
        if let Some(c) = finished.captures(line) {
            p.finished = Some(c[1].to_string());
        }
        if let Some(c) = wall.captures(line) {
            p.wall = Some(c[1].to_string());
        }
        if let Some(c) = dl.captures(line) {
            p.downloaded = Some(c[1].parse().unwrap());
        }
        if let Some(c) = size.captures(line) {
            p.size = Some((c[1].to_string(), c[2].to_string()));
        }
        if let Some(c) = speed.captures(line) {
            p.speed = Some(c[1].to_string());
        }
        if let Some(c) = advanced.captures(line) {
            p.line_start_urls.push(c[2].to_string());
        }
    }
    assert_eq!(p.finished.is_some(), complete.is_match(log));
    p
}

#[test]
fn wget_log_parses_with_npp_regexes() {
    let server = Server::start(|r: &Req| {
        match r.path().as_str() {
        "/" => Resp::html(
            "<a href=\"/a/\">a</a><a href=\"/b/%e6%b0%b4/\">b</a><a href=\"/missing/\">m</a>\
             <a href=\"/style.CSS\">css</a><a href=\"/wp-admin/\">admin</a><a href=\"/feed/\">f</a>",
        ),
        "/missing/" => Resp::new(404, "no"),
        "/wp-admin/" | "/feed/" | "/style.CSS" => panic!("rejected URL fetched"),
        _ => Resp::html("<a href=\"/\">home</a>"),
    }
    });
    let url = server.url("/");
    let out = run_env(
        &npp_command_b(&[], &url),
        &[("LANG", "de_DE.UTF-8"), ("LC_ALL", "de_DE.UTF-8")],
    );
    assert_eq!(out.status.code(), Some(8));
    assert!(out.stdout.is_empty());
    let log = stderr(&out);
    for line in log.split_inclusive('\n') {
        assert!(
            line.ends_with('\n') && !line.ends_with(" \n") && !line.contains('\r'),
            "{line:?}"
        );
        assert!(line.is_ascii());
    }
    let p = npp_parse(&log);
    assert_eq!(p.checked, 3, "{log}");
    assert_eq!(p.errors_404, 1);
    assert_eq!(p.broken, vec![server.url("/missing/")]);
    assert_eq!(p.line_start_urls.len(), 3);
    assert!(p.line_start_urls.contains(&server.url("/b/%e6%b0%b4/")));
    assert!(p.last_url.is_some());
    assert!(p.finished.is_some());
    assert!(p.wall.is_some(), "{log}");
    assert_eq!(p.downloaded, Some(3));
    assert!(p.size.is_some(), "{log}");
    assert!(p.speed.is_some(), "{log}");
    let tail: Vec<&str> = log.lines().rev().take(3).collect();
    assert!(tail[2].starts_with("FINISHED --"));
    assert!(tail[1].starts_with("Total wall clock time: "));
    assert!(tail[0].starts_with("Downloaded: 3 files, "));
    // --quiet prints nothing at all.
    let out = run(&[
        "--quiet",
        "--no-config",
        "--delete-after",
        "--",
        &server.url("/a/"),
    ]);
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stdout.is_empty() && out.stderr.is_empty());
}

#[test]
fn wget_timestamps_are_local_time_honouring_tz() {
    let server = Server::start(|_r: &Req| Resp::html("x"));
    let url = server.url("/");
    let ts = Regex::new(r"(?m)^FINISHED --\d{4}-\d\d-\d\d (\d\d):(\d\d):\d\d--$").unwrap();
    let hour = |tz: &str| -> i64 {
        let out = run_env(&["--no-verbose", "--no-config", "--", &url], &[("TZ", tz)]);
        let log = stderr(&out);
        let c = ts.captures(&log).unwrap_or_else(|| panic!("{log}"));
        c[1].parse::<i64>().unwrap() * 60 + c[2].parse::<i64>().unwrap()
    };
    // POSIX TZ strings need no tz database: UTC-5 is five hours east.
    for _ in 0..3 {
        let (a, b) = (hour("UTC0"), hour("XYZ-5"));
        let diff = (b - a).rem_euclid(24 * 60);
        if diff == 300 {
            return;
        }
        // A minute boundary between the two runs: try again.
    }
    panic!("TZ not honoured");
}

#[test]
fn sigterm_ends_run_promptly_without_summary() {
    let server = Server::start(|r: &Req| match r.path().as_str() {
        "/" => Resp::html("<a href=\"/slow\">s</a>"),
        "/robots.txt" => Resp::new(404, ""),
        _ => Resp::html("late").delay(Duration::from_secs(20)),
    });
    let url = server.url("/");
    let args = npp_command_b(&[], &url);
    let child = std::process::Command::new(common::bin())
        .args(&args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while !server.targets().contains(&"/slow".to_string()) {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "crawler never reached /slow"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let sent = Instant::now();
    let st = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let out = child.wait_with_output().unwrap();
    let took = sent.elapsed();
    let log = stderr(&out);
    assert_eq!(out.status.code(), Some(143), "{log}");
    assert!(!log.contains("FINISHED"), "{log}");
    assert!(log.contains(&format!("URL:{url} ")), "{log}");
    eprintln!("SIGTERM to exit: {took:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");
}

/// Page lines are gathered per burst but written before the crawl waits: a reader (the PHP
/// client's progress) sees a page as soon as nothing else is ready, not at the end of the run.
#[test]
fn json_page_lines_are_written_while_the_run_waits() {
    use std::io::BufRead;
    let server = Server::start(|r: &Req| match r.path().as_str() {
        "/" => Resp::html("<a href=\"/slow\">s</a>"),
        "/robots.txt" => Resp::new(404, ""),
        _ => Resp::html("late").delay(Duration::from_secs(3)),
    });
    let url = server.url("/");
    let mut child = std::process::Command::new(common::bin())
        .args(["--json", "--no-progress", &url])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let took = t0.elapsed();
    let v: Value = serde_json::from_str(&first).unwrap();
    assert_eq!(v["event"], "page", "{first}");
    assert_eq!(v["url"], url.as_str(), "{first}");
    // /slow answers after 3 s; the line for / must not wait for it.
    assert!(took < Duration::from_secs(2), "first line after {took:?}");
    assert!(child.wait().unwrap().code().is_some());
}

#[test]
fn bad_options_exit_2_with_one_line() {
    for args in [
        &["--no-verbose", "--bogus-flag", "--", "http://127.0.0.1:9/"][..],
        &[
            "--no-config",
            "--reject-regex=([",
            "--",
            "http://127.0.0.1:9/",
        ],
        &["--quiet", "-e", "cookies=off", "http://127.0.0.1:9/"],
        &["--frobnicate", "http://127.0.0.1:9/"],
        &["--reject-regex", "(", "http://127.0.0.1:9/"],
        &["not a url at all"],
    ] {
        let t0 = Instant::now();
        let out = run(args);
        let took = t0.elapsed();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        let err = stderr(&out);
        assert_eq!(err.lines().count(), 1, "{err:?}");
        assert!(err.starts_with("cache-preload: "), "{err}");
        assert!(out.stdout.is_empty());
        eprintln!("{args:?}: exit 2 after {took:?}");
    }
}

#[test]
fn nothing_reachable_is_exit_4() {
    // Port 9 (discard) on loopback: nothing listens in the test machine.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    let url = format!("http://127.0.0.1:{port}/");
    let out = run(&npp_command_b(&[], &url));
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    let log = stderr(&out);
    assert!(log.contains(&format!("{url}:\n")), "{log}");
    assert!(log.contains("ERROR: connection failed"), "{log}");
    assert!(!log.contains("ERROR 404"));
    assert!(log.contains("FINISHED --"));
    assert!(log.contains("Downloaded: 0 files, 0.0K in "));
}

#[test]
fn http_proxy_receives_absolute_form() {
    // The "proxy" is our test server; the target host is never resolved.
    let proxy = Server::start(|_r: &Req| Resp::html("<a href=\"/next/\">n</a>"));
    let px = proxy.url("");
    let out = run(&[
        "--no-verbose",
        "--recursive",
        "--no-config",
        "-e",
        "use_proxy=yes",
        "-e",
        &format!("http_proxy={}", px.trim_start_matches("http://")),
        "--",
        "http://site.invalid/start/%e6%B0/",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let reqs = proxy.requests();
    let lines: Vec<String> = reqs
        .iter()
        .map(|r| String::from_utf8_lossy(&r.line).into_owned())
        .filter(|l| !l.contains("/robots.txt"))
        .collect();
    assert_eq!(
        lines,
        vec![
            "GET http://site.invalid/start/%e6%B0/ HTTP/1.1",
            "GET http://site.invalid/next/ HTTP/1.1"
        ]
    );
    assert_eq!(reqs[0].header("host"), Some("site.invalid"));
}

#[test]
fn wait_means_one_at_a_time_in_wget_dialect() {
    let inflight = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let peak = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (i2, p2) = (inflight.clone(), peak.clone());
    let server = Server::start(move |r: &Req| {
        use std::sync::atomic::Ordering::SeqCst;
        let now = i2.fetch_add(1, SeqCst) + 1;
        p2.fetch_max(now, SeqCst);
        std::thread::sleep(Duration::from_millis(30));
        i2.fetch_sub(1, SeqCst);
        if r.path() == "/" {
            Resp::html("<a href=\"/1\">1</a><a href=\"/2\">2</a><a href=\"/3\">3</a>")
        } else {
            Resp::html("x")
        }
    });
    let url = server.url("/");
    let t0 = Instant::now();
    let out = run(&[
        "--no-verbose",
        "-r",
        "--no-config",
        "--wait=0.2",
        "--",
        &url,
    ]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(peak.load(std::sync::atomic::Ordering::SeqCst), 1);
    assert!(t0.elapsed() >= Duration::from_millis(600));
}

#[test]
fn man_page_and_completions() {
    let out = run(&["--generate-man"]);
    assert_eq!(out.status.code(), Some(0));
    let man = stdout(&out);
    assert!(man.contains(".TH cache-preload 1"));
    assert!(man.contains("reject\\-regex") || man.contains("reject-regex"));
    for shell in ["bash", "zsh", "fish"] {
        let out = run(&["--generate-completions", shell]);
        assert_eq!(out.status.code(), Some(0));
        assert!(stdout(&out).contains("sitemap"), "{shell}");
    }
    let out = run(&["--help"]);
    assert!(stdout(&out).contains("EXIT STATUS"));
    let out = run(&["--generate-completions", "tcsh"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn read_timeout_is_a_network_failure() {
    let server = Server::start(|_r: &Req| Resp::html("late").delay(Duration::from_secs(3)));
    let t0 = Instant::now();
    let out = run(&[
        "--json",
        "--read-timeout",
        "0.3",
        "--tries",
        "1",
        &server.url("/"),
    ]);
    assert_eq!(out.status.code(), Some(4), "{}", stdout(&out));
    let ev = json_lines(&stdout(&out));
    assert_eq!(ev[0]["event"], "error");
    assert!(
        ev[0]["message"].as_str().unwrap().contains("timed out"),
        "{}",
        ev[0]
    );
    assert!(t0.elapsed() < Duration::from_secs(3));
}

#[test]
fn limit_rate_slows_the_body() {
    let body = vec![b'x'; 150 * 1024];
    let server = Server::start(move |_r: &Req| Resp::new(200, body.clone()));
    let t0 = Instant::now();
    let out = run(&["--json", "--limit-rate", "100k", &server.url("/blob")]);
    assert_eq!(out.status.code(), Some(0));
    // 150 KiB at 100 KiB/s cannot finish in under ~1.5 s.
    assert!(
        t0.elapsed() >= Duration::from_millis(1300),
        "{:?}",
        t0.elapsed()
    );
}

#[test]
fn mobile_user_agent_and_header_overrides() {
    let server = Server::start(|_r: &Req| Resp::html("x"));
    let out = run(&[
        "--no-progress",
        "--mobile",
        "-H",
        "Accept-Encoding: identity",
        "-H",
        "X-Warm: 1",
        &server.url("/"),
    ]);
    assert_eq!(out.status.code(), Some(0));
    let r = &server.requests()[0];
    assert!(r.header("user-agent").unwrap().contains("Mobile Safari"));
    assert_eq!(r.header("accept-encoding"), Some("identity"));
    assert_eq!(r.header("x-warm"), Some("1"));
    // wget dialect: NPP's own Accept and UA, browser Accept-Encoding kept.
    let s2 = Server::start(|_r: &Req| Resp::html("x"));
    let url = s2.url("/");
    let out = run(&npp_command_b(&[], &url));
    assert_eq!(out.status.code(), Some(0));
    let r = &s2.requests()[0];
    assert_eq!(
        r.header("accept"),
        Some("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8")
    );
    assert_eq!(
        r.header("user-agent"),
        Some("Mozilla/5.0 (Windows NT 10.0; Win64; x64) NPP-test")
    );
    assert_eq!(r.header("accept-encoding"), Some("gzip, deflate, br, zstd"));
}

#[test]
fn many_pages_crawl_rate() {
    const N: u64 = 2000;
    let server = Server::start(|r: &Req| {
        let t = r.target_str();
        let n: u64 = t
            .trim_start_matches("/p/")
            .trim_end_matches('/')
            .parse()
            .unwrap_or(0);
        let mut html = String::from("<html><body>");
        for k in 1..=5 {
            let m = n * 5 + k;
            if m < N {
                html.push_str(&format!("<a href=\"/p/{m}/\">{m}</a>"));
            }
        }
        html.push_str("<a href=\"/p/0/\">home</a></body></html>");
        Resp::html(html)
    });
    let t0 = Instant::now();
    let out = run(&["--json", "-j", "8", &server.url("/p/0/")]);
    let took = t0.elapsed();
    assert_eq!(out.status.code(), Some(0));
    let mut t = server.targets();
    assert_eq!(t.len() as u64, N, "every page exactly once");
    t.sort();
    t.dedup();
    assert_eq!(t.len() as u64, N);
    eprintln!(
        "crawl rate (debug build, test server): {N} pages in {took:?} = {:.0} pages/s",
        N as f64 / took.as_secs_f64()
    );
}

#[test]
fn https_through_connect_proxy_and_certificate_checks() {
    let tls = Server::start_tls(|r: &Req| match r.path().as_str() {
        "/x/%e6%B0/" => Resp::html("<a href=\"/y/\">y</a>"),
        _ => Resp::html("y"),
    });
    let proxy = Server::start_connect_proxy(tls.addr);
    let px = proxy.url("");
    let out = run(&[
        "--json",
        "--no-check-certificate",
        "--proxy",
        &px,
        "https://site.invalid/x/%e6%B0/",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let plines: Vec<String> = proxy
        .requests()
        .iter()
        .map(|r| String::from_utf8_lossy(&r.line).into_owned())
        .collect();
    assert!(
        plines
            .iter()
            .all(|l| l == "CONNECT site.invalid:443 HTTP/1.1"),
        "{plines:?}"
    );
    let tlines: Vec<String> = tls
        .requests()
        .iter()
        .map(|r| String::from_utf8_lossy(&r.line).into_owned())
        .filter(|l| !l.contains("/robots.txt"))
        .collect();
    assert_eq!(tlines, vec!["GET /x/%e6%B0/ HTTP/1.1", "GET /y/ HTTP/1.1"]);
    assert_eq!(tls.requests()[0].header("host"), Some("site.invalid"));

    // Certificates are verified by default: the self-signed one is refused.
    let out = run(&["--json", "--proxy", &px, "https://site.invalid/x/%e6%B0/"]);
    assert_eq!(out.status.code(), Some(4), "{}", stdout(&out));
    let ev = json_lines(&stdout(&out));
    assert!(
        ev[0]["message"]
            .as_str()
            .unwrap()
            .to_ascii_lowercase()
            .contains("certificate"),
        "{}",
        ev[0]
    );

    // Direct https, wget dialect with --no-check-certificate.
    let url = format!("https://127.0.0.1:{}/x/%e6%B0/", tls.addr.port());
    let out = run(&[
        "--no-verbose",
        "--no-config",
        "--no-check-certificate",
        "--",
        &url,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains(&format!("URL:{url} [")));
}

#[test]
fn progress_bar_only_on_a_terminal() {
    let server = Server::start(|r: &Req| match r.path().as_str() {
        "/" => Resp::html("<a href=\"/a\">a</a><a href=\"/b\">b</a>"),
        _ => Resp::html("x").delay(Duration::from_millis(300)),
    });
    // Not a terminal: one plain line per page, no escape sequences.
    let out = run(&[&server.url("/")]);
    let text = stdout(&out);
    assert_eq!(
        text.lines().filter(|l| l.starts_with("200 ")).count(),
        3,
        "{text}"
    );
    assert!(!text.contains('\u{1b}') && !stderr(&out).contains('\u{1b}'));
    // A terminal (util-linux `script` provides a pty): the bar replaces the lines.
    let cmd = format!("{} {}", common::bin(), server.url("/"));
    let out = std::process::Command::new("script")
        .args(["-qfec", &cmd, "/dev/null"])
        .env("TERM", "xterm")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("util-linux script");
    let tty = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(0), "{tty}");
    assert!(tty.contains("pages ("), "{tty:?}");
    assert!(!tty.lines().any(|l| l.starts_with("200 ")), "{tty:?}");
    assert!(tty.contains("done: 3 ok"), "{tty:?}");
}

#[test]
fn link_queries_use_the_document_encoding() {
    let (sjis, _, _) = encoding_rs::SHIFT_JIS.encode("<a href=\"/水?q=水\">x</a>");
    let page = sjis.into_owned();
    let mut meta = b"<meta charset=\"gbk\">".to_vec();
    meta.extend_from_slice(&encoding_rs::GBK.encode("<a href=\"/g?q=水\">x</a>").0);
    let server = Server::start(move |r: &Req| match r.path().as_str() {
        "/" => Resp::new(200, page.clone()).header("Content-Type", "text/html; charset=Shift_JIS"),
        "/meta" => Resp::new(200, meta.clone()).header("Content-Type", "text/html"),
        _ => Resp::html("x"),
    });
    let out = run(&["--no-progress", &server.url("/"), &server.url("/meta")]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let t = server.targets();
    assert!(t.contains(&"/%E6%B0%B4?q=%90%85".to_string()), "{t:?}");
    assert!(t.contains(&"/g?q=%CB%AE".to_string()), "{t:?}");
}

#[test]
fn nothing_is_written_to_disk() {
    let server = Server::start(|r: &Req| match r.path().as_str() {
        "/" => Resp::html("<a href=\"/a/\">a</a>"),
        _ => Resp::html("a"),
    });
    let base = std::env::temp_dir().join(format!("cp-nowrite-{}", std::process::id()));
    let (pdir, cwd) = (base.join("prefix"), base.join("cwd"));
    std::fs::create_dir_all(&pdir).unwrap();
    std::fs::create_dir_all(&cwd).unwrap();
    let url = server.url("/");
    let p = pdir.to_string_lossy().into_owned();
    let out = std::process::Command::new(common::bin())
        .args(["--no-verbose", "-r", "--delete-after", "-P", &p, "--", &url])
        .current_dir(&cwd)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(server.targets(), vec!["/", "/a/"]);
    assert_eq!(std::fs::read_dir(&pdir).unwrap().count(), 0);
    assert_eq!(std::fs::read_dir(&cwd).unwrap().count(), 0);
    std::fs::remove_dir_all(&base).unwrap();
}
