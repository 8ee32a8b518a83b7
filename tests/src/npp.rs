//! NPP's side of the contract: its command lines (npp-usage.md §1.5–§1.8) and its log parsers
//! (§3.1–§3.2 progress and completion, §3.2 Advanced tab, `includes/schedule.php` statistics),
//! reimplemented with the same regexes so a log that satisfies these satisfies the plugin.

use regex::Regex;
use std::sync::OnceLock;

/// NPP's `NPPP_USER_AGENT` (Chrome 120 on Windows 10).
pub const UA_DESKTOP: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36";
/// NPP's default mobile UA (Android 10, Chrome 120, "Mobile Safari").
pub const UA_MOBILE: &str = "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36";
/// NPP's `NPPP_HEADER_ACCEPT`.
pub const ACCEPT: &str = "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
/// An "Exclude Endpoints" value like NPP's default (wp-admin, wp-content, feeds, sitemaps, and
/// any URL with `?`, `=`, `&` or `#`).
pub const REJECT_REGEX: &str = r"/wp-admin/|/wp-content/|/wp-includes/|/wp-json/|xmlrpc|wp-.*\.php|/cart/|/checkout/|/my-account/|robots\.txt|sitemap(_index)?\.xml|[a-z0-9_-]+-sitemap([0-9]+)?\.xml|wp-sitemap|comment-page-|/feed/|/embed/|/login/|/register/|\.well-known|\?|=|&|#";
/// An "Exclude File Extensions" value like NPP's default.
pub const REJECT_EXT: &str = "*.css,*.js,*.png,*.jpg,*.jpeg,*.gif,*.svg,*.webp,*.ico,*.woff,*.woff2,*.ttf,*.pdf,*.zip,*.gz,*.mp4,*.mp3";

/// The arguments of NPP's Preload All command (command B, §1.7) after the program name, with
/// the plugin's defaults: `wait` is `--wait=<N>` (default 0), `pdir` the `-P` value (`/tmp`
/// with a usable safexec).
pub fn preload_all_args(
    site_url: &str,
    host: &str,
    ua: &str,
    pdir: &str,
    wait: &str,
) -> Vec<String> {
    let bare = host
        .strip_prefix("www.")
        .unwrap_or(host)
        .to_ascii_lowercase();
    let mut a: Vec<String> = include_str!("../fixtures/npp-preload-fixed.args")
        .lines()
        .chain([
            "-e",
            "use_proxy=no",
            "-e",
            "http_proxy=http://127.0.0.1:3434",
            "-e",
            "https_proxy=http://127.0.0.1:3434",
            "-P",
        ])
        .map(str::to_owned)
        .collect();
    a.push(pdir.to_owned());
    a.push("--limit-rate=5120k".into());
    a.push(format!("--wait={wait}"));
    a.push(format!("--reject-regex={REJECT_REGEX}"));
    a.push(format!("--reject={REJECT_EXT}"));
    a.push(format!("--domains={bare},www.{bare}"));
    a.push(format!("--header={ACCEPT}"));
    a.push(format!("--user-agent={ua}"));
    a.push("--".into());
    a.push(site_url.to_owned());
    a
}

/// The arguments of NPP's 300 ms start test (command A, §1.6): `--quiet`, `--no-cache`, the
/// fixed `--read-timeout=60`, and no `--no-verbose`.
pub fn start_test_args(site_url: &str, host: &str, reject_regex: &str) -> Vec<String> {
    let mut a = preload_all_args(site_url, host, UA_DESKTOP, "/tmp", "0");
    a[0] = "--quiet".into();
    a.insert(4, "--no-cache".into());
    for s in a.iter_mut() {
        if s.starts_with("--reject-regex=") {
            *s = format!("--reject-regex={reject_regex}");
        }
    }
    a
}

/// The arguments of NPP's single-URL preload (command C, §1.8).
pub fn preload_single_args(url: &str, host: &str, ua: &str, pdir: &str) -> Vec<String> {
    let mut a = preload_all_args(url, host, ua, pdir, "0");
    let drop_flag = |s: &String| {
        s == "--recursive"
            || s.starts_with("--wait=")
            || s.starts_with("--reject-regex=")
            || s.starts_with("--reject=")
            || s == "--ignore-case"
    };
    a.retain(|s| !drop_flag(s));
    // `-l inf` is a pair.
    if let Some(i) = a.iter().position(|s| s == "-l") {
        a.drain(i..i + 2);
    }
    for s in a.iter_mut() {
        if s == "--no-verbose" {
            *s = "--quiet".into();
        }
    }
    a
}

/// What NPP reads out of a preload log.
#[derive(Debug, Default, Clone)]
pub struct LogReport {
    /// REST `checked`: lines matching `URL:(https?://[^\s]+).*?->`.
    pub checked: usize,
    /// REST `last_url`.
    pub last_url: Option<String>,
    /// REST `errors`: lines containing `ERROR 404` (case-insensitive).
    pub errors: usize,
    /// REST `broken_urls` (all of them, in order; the plugin shows the last 20 unique).
    pub broken_urls: Vec<String>,
    /// REST `time`, from `Total wall clock time:`.
    pub wall_clock: Option<String>,
    /// REST `last_preload_time`, from the trimmed `FINISHED --…--` line.
    pub finished: Option<String>,
    /// REST `log_complete` (multiline `^FINISHED\s+--\d{4}-…--`).
    pub complete: bool,
    /// Advanced tab: URLs of `^<ts>\s+URL:(\S+)` lines whose host is the site's host.
    pub advanced_urls: Vec<String>,
    /// Advanced tab lines whose URL a PHP `FILTER_VALIDATE_URL` would refuse (non-ASCII etc.).
    pub advanced_invalid: Vec<String>,
    /// schedule.php: `^Downloaded:\s+(\d+)\s+files`.
    pub downloaded_files: Option<u64>,
    /// schedule.php: the transfer size (`<num>` and `K|M|G`).
    pub downloaded_size: Option<String>,
    /// schedule.php: the average speed (`<num> <unit>/s`).
    pub downloaded_speed: Option<String>,
    /// schedule.php: `ERROR\s+404` count.
    pub errors_404_stats: usize,
}

fn re(cell: &'static OnceLock<Regex>, pat: &str) -> &'static Regex {
    cell.get_or_init(|| Regex::new(pat).expect("valid NPP regex"))
}

/// Whether PHP's `FILTER_VALIDATE_URL` would plausibly accept `url`: ASCII, no whitespace or
/// control characters, `scheme://host…`, every `%` followed by two hex digits.
pub fn php_valid_url(url: &str) -> bool {
    let b = url.as_bytes();
    if !url.is_ascii() || b.iter().any(|c| c.is_ascii_control() || *c == b' ') {
        return false;
    }
    let Some(rest) = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
    else {
        return false;
    };
    if rest.is_empty() || rest.starts_with('/') {
        return false;
    }
    let bad_triplet = b.iter().enumerate().any(|(i, &c)| {
        c == b'%'
            && !(b.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && b.get(i + 2).is_some_and(u8::is_ascii_hexdigit))
    });
    if bad_triplet {
        return false;
    }
    true
}

/// The host of an absolute URL, lower-cased, without port.
pub fn url_host(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = match host.rsplit_once(':') {
        Some((h, p)) if p.bytes().all(|c| c.is_ascii_digit()) => h,
        _ => host,
    };
    Some(host.to_ascii_lowercase())
}

/// Parses a log the way NPP does: lines split on `\n` and trimmed.
pub fn parse_log(log: &str, site_host: &str) -> LogReport {
    static SUCCESS: OnceLock<Regex> = OnceLock::new();
    static FAILED_URL: OnceLock<Regex> = OnceLock::new();
    static E404: OnceLock<Regex> = OnceLock::new();
    static WALL: OnceLock<Regex> = OnceLock::new();
    static FINISHED: OnceLock<Regex> = OnceLock::new();
    static COMPLETE: OnceLock<Regex> = OnceLock::new();
    static ADVANCED: OnceLock<Regex> = OnceLock::new();
    static DL_FILES: OnceLock<Regex> = OnceLock::new();
    static DL_SIZE: OnceLock<Regex> = OnceLock::new();
    static DL_SPEED: OnceLock<Regex> = OnceLock::new();
    static STATS_404: OnceLock<Regex> = OnceLock::new();
    let success = re(&SUCCESS, r"URL:(https?://[^\s]+).*?->");
    let failed_url = re(&FAILED_URL, r"^(https?://\S+):$");
    let e404 = re(&E404, r"(?i)ERROR 404");
    let wall = re(
        &WALL,
        r"Total wall clock time:\s*((\d+h\s)?(\d+m\s)?\d+(\.\d+)?s)",
    );
    let finished = re(&FINISHED, r"^FINISHED\s+--([\d\-]+\s+[\d:]+)--$");
    let complete = re(
        &COMPLETE,
        r"(?m)^FINISHED\s+--\d{4}-\d{2}-\d{2}\s+\d{2}:\d{2}:\d{2}--",
    );
    let advanced = re(
        &ADVANCED,
        r"^(\d{4}-\d{2}-\d{2}\s+\d{2}:\d{2}:\d{2})\s+URL:(\S+)",
    );
    let dl_files = re(&DL_FILES, r"(?m)^Downloaded:\s+(\d+)\s+files");
    let dl_size = re(
        &DL_SIZE,
        r"Downloaded:.*?,\s+([\d.]+\s*)([KMG])\s+in\s+[\d.]+s",
    );
    let dl_speed = re(&DL_SPEED, r"Downloaded:.*?\(([\d.]+\s+\w+/s)\)");
    let stats_404 = re(&STATS_404, r"ERROR\s+404");

    let mut r = LogReport {
        complete: complete.is_match(log),
        ..LogReport::default()
    };
    let mut pending: Option<String> = None;
    let mut prev_failed: Option<String> = None;
    for raw in log.split('\n') {
        let line = raw.trim();
        if let Some(c) = success.captures(line) {
            r.checked += 1;
            r.last_url = Some(c[1].to_owned());
        }
        let this_failed = failed_url.captures(line).map(|c| c[1].to_owned());
        if let Some(u) = &this_failed {
            pending = Some(u.clone());
        }
        if e404.is_match(line) {
            r.errors += 1;
            let url = pending
                .take()
                .or_else(|| prev_failed.clone())
                .or_else(|| success.captures(line).map(|c| c[1].to_owned()));
            if let Some(u) = url {
                r.broken_urls.push(u);
            }
        }
        prev_failed = this_failed;
        if let Some(c) = wall.captures(line) {
            r.wall_clock = Some(c[1].to_owned());
        }
        if let Some(c) = finished.captures(line) {
            r.finished = Some(c[1].to_owned());
        }
        if let Some(c) = advanced.captures(line) {
            let url = c[2].to_owned();
            if url_host(&url).as_deref() == Some(&site_host.to_ascii_lowercase()) {
                if php_valid_url(&url) {
                    r.advanced_urls.push(url);
                } else {
                    r.advanced_invalid.push(url);
                }
            }
        }
        r.errors_404_stats += stats_404.find_iter(line).count();
    }
    r.downloaded_files = dl_files.captures(log).and_then(|c| c[1].parse().ok());
    r.downloaded_size = dl_size
        .captures(log)
        .map(|c| format!("{}{}", c[1].trim(), &c[2]));
    r.downloaded_speed = dl_speed.captures(log).map(|c| c[1].to_owned());
    r
}

/// Raw-format checks of §7.2: every line ends with `\n`, no `\r`, no trailing spaces; returns
/// the offending lines.
pub fn format_violations(log: &str) -> Vec<String> {
    let mut bad = Vec::new();
    if !log.is_empty() && !log.ends_with('\n') {
        bad.push("log does not end with a newline".to_owned());
    }
    for l in log.lines() {
        if l.contains('\r') || l.ends_with(' ') || l.ends_with('\t') {
            bad.push(format!("{l:?}"));
        }
    }
    bad
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_spec_example() {
        let log = "2026-04-28 10:00:01 URL:https://example.com/ [48211/48211] -> \"/tmp/example.com/index.html\" [1]\n\
2026-04-28 10:00:02 URL:https://example.com/about/ [30522] -> \"/tmp/example.com/about/index.html\" [1]\n\
https://example.com/old-page/:\n\
2026-04-28 10:00:03 ERROR 404: Not Found.\n\
FINISHED --2026-04-28 10:00:04--\n\
Total wall clock time: 3.1s\n\
Downloaded: 2 files, 77K in 0.4s (190 KB/s)\n";
        let r = parse_log(log, "example.com");
        assert_eq!(r.checked, 2);
        assert_eq!(r.last_url.as_deref(), Some("https://example.com/about/"));
        assert_eq!(r.errors, 1);
        assert_eq!(r.broken_urls, ["https://example.com/old-page/"]);
        assert_eq!(r.wall_clock.as_deref(), Some("3.1s"));
        assert_eq!(r.finished.as_deref(), Some("2026-04-28 10:00:04"));
        assert!(r.complete);
        assert_eq!(r.advanced_urls.len(), 2);
        assert_eq!(r.downloaded_files, Some(2));
        assert_eq!(r.downloaded_size.as_deref(), Some("77K"));
        assert_eq!(r.downloaded_speed.as_deref(), Some("190 KB/s"));
        assert_eq!(r.errors_404_stats, 1);
        assert!(format_violations(log).is_empty());
    }

    #[test]
    fn interrupted_log_is_not_complete_and_hosts_filter() {
        let log = "2026-04-28 10:00:01 URL:https://www.example.com/ [1] -> \"-\" [1]\n";
        let r = parse_log(log, "example.com");
        assert_eq!(r.checked, 1);
        assert!(!r.complete);
        assert!(r.advanced_urls.is_empty(), "www. variants are dropped");
    }

    #[test]
    fn php_url_validation() {
        assert!(php_valid_url("http://127.0.0.1:80/product/%e6%b0%b4/"));
        assert!(!php_valid_url("http://127.0.0.1/水/"));
        assert!(!php_valid_url("http://127.0.0.1/%zz/"));
        assert!(!php_valid_url("http:///x"));
        assert_eq!(
            url_host("http://127.0.0.1:8080/x").as_deref(),
            Some("127.0.0.1")
        );
    }

    #[test]
    fn single_url_args_drop_recursion() {
        let a = preload_single_args("http://h/x/", "h", UA_DESKTOP, "/tmp");
        assert!(a.contains(&"--quiet".to_owned()));
        assert!(!a
            .iter()
            .any(|s| s == "-l" || s == "--recursive" || s.starts_with("--wait=")));
        assert_eq!(a.last().map(String::as_str), Some("http://h/x/"));
    }
}
