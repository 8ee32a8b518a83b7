//! Why a page still misses: the visible reason in a visitor's re-request (`--verify`).
//!
//! A MISS while warming does not prove nginx stored the page (peers.md §7.5). `--verify` asks
//! again with a visitor's headers; whatever is not a HIT is explained from what the response
//! shows. nginx does not store a FastCGI/proxy response that sets a cookie, says
//! `Cache-Control: private`, `no-store`, `no-cache` or `max-age=0`, or `Vary: *`; a `Vary` on
//! other headers stores one variant per header value, so a visitor whose headers differ misses.

use std::fmt;

use super::cache_status::CacheStatus;
use super::header_values;

/// One visible reason a page is not served from the cache.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MissReason {
    /// The response sets a cookie; nginx does not cache it (unless `*_ignore_headers Set-Cookie`).
    SetCookie,
    /// A `Cache-Control` directive that stops nginx from storing the response.
    CacheControl(String),
    /// The response varies on these request headers (lower case); `*` is never cached.
    Vary(Vec<String>),
    /// nginx bypassed the cache (`*_cache_bypass` or a skip-cache rule).
    Bypass,
    /// A redirect, with its target when given: the page itself is cached under the target.
    Redirect {
        /// The status code (301, 302, 303, 307 or 308).
        status: u16,
        /// The `Location` header, if any.
        location: Option<String>,
    },
    /// A status nginx does not cache by default (only 200, 301 and 302 are).
    Status(u16),
    /// The response carries no cache-status header at all.
    NoHeader,
    /// Still not a HIT although nothing visible explains it.
    Unexplained(CacheStatus),
    /// The visitor's request failed in transport.
    Failed(String),
}

impl serde::Serialize for MissReason {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl fmt::Display for MissReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MissReason::SetCookie => f.write_str("Set-Cookie (nginx does not store responses that set cookies)"),
            MissReason::CacheControl(d) => write!(f, "Cache-Control: {d}"),
            MissReason::Vary(names) if names.iter().any(|n| n == "*") => {
                f.write_str("Vary: * (never cached)")
            }
            MissReason::Vary(names) => write!(f, "Vary: {} (one cache entry per value)", names.join(", ")),
            MissReason::Bypass => f.write_str("BYPASS (nginx skip-cache rule)"),
            MissReason::Redirect { status, location: Some(l) } => write!(f, "redirect {status} to {l}"),
            MissReason::Redirect { status, location: None } => write!(f, "redirect {status}"),
            MissReason::Status(s) => write!(f, "status {s} (not cached by default)"),
            MissReason::NoHeader => f.write_str("no cache-status header on the response"),
            MissReason::Failed(e) => write!(f, "request failed: {e}"),
            MissReason::Unexplained(s) => write!(
                f,
                "{s} with no visible reason (check fastcgi_cache_min_uses, skip-cache rules, cache size)"
            ),
        }
    }
}

/// `Cache-Control` directives (lower case) that stop nginx storing a response.
fn uncacheable_directives(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(|d| d.trim().to_ascii_lowercase())
        .filter(|d| {
            let (name, arg) = match d.split_once('=') {
                Some((n, a)) => (n.trim(), Some(a.trim().trim_matches('"'))),
                None => (d.as_str(), None),
            };
            match name {
                "private" | "no-store" => true,
                // `no-cache="Set-Cookie"` only restricts a field; the bare form forbids reuse.
                "no-cache" => arg.is_none(),
                "max-age" | "s-maxage" => arg == Some("0"),
                _ => false,
            }
        })
        .collect()
}

/// The request headers named by `Vary`, lower case, deduplicated, in order of appearance.
pub fn vary_names<'a, I>(headers: I) -> Vec<String>
where
    I: IntoIterator<Item = (&'a str, &'a str)>,
    I::IntoIter: 'a,
{
    let mut names: Vec<String> = Vec::new();
    for value in header_values(headers, "vary") {
        for name in value.split(',').map(|n| n.trim().to_ascii_lowercase()) {
            if !name.is_empty() && !names.contains(&name) {
                names.push(name);
            }
        }
    }
    names
}

/// The visible reasons a visitor's request was not served from the cache; empty when it was.
///
/// `status` is the HTTP status of the re-request (redirects not followed), `cache` its
/// classified cache-status header.
pub fn diagnose<'a, I>(status: u16, headers: I, cache: CacheStatus) -> Vec<MissReason>
where
    I: IntoIterator<Item = (&'a str, &'a str)>,
    I::IntoIter: Clone + 'a,
{
    if cache.is_served_from_cache() {
        return Vec::new();
    }
    let headers = headers.into_iter();
    let mut reasons = Vec::new();
    if matches!(status, 301 | 302 | 303 | 307 | 308) {
        let location = header_values(headers.clone(), "location")
            .next()
            .map(str::to_owned);
        reasons.push(MissReason::Redirect { status, location });
    } else if status != 200 {
        reasons.push(MissReason::Status(status));
    }
    if cache == CacheStatus::Bypass {
        reasons.push(MissReason::Bypass);
    }
    if header_values(headers.clone(), "set-cookie")
        .next()
        .is_some()
    {
        reasons.push(MissReason::SetCookie);
    }
    for value in header_values(headers.clone(), "cache-control") {
        for d in uncacheable_directives(value) {
            reasons.push(MissReason::CacheControl(d));
        }
    }
    let vary = vary_names(headers);
    if !vary.is_empty() {
        reasons.push(MissReason::Vary(vary));
    }
    if reasons.is_empty() {
        reasons.push(if cache == CacheStatus::Absent {
            MissReason::NoHeader
        } else {
            MissReason::Unexplained(cache)
        });
    }
    reasons
}

/// All reasons on one line, `; `-separated, for `--verify` listings.
pub fn reasons_line(reasons: &[MissReason]) -> String {
    reasons
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(status: u16, h: &[(&str, &str)], c: CacheStatus) -> String {
        reasons_line(&diagnose(status, h.iter().copied(), c))
    }

    #[test]
    fn table() {
        type Case<'a> = (u16, Vec<(&'a str, &'a str)>, CacheStatus, &'a str);
        let cases: Vec<Case> = vec![
            (200, vec![], CacheStatus::Hit, ""),
            (200, vec![("Set-Cookie", "a=b")], CacheStatus::Stale, ""),
            (
                200,
                vec![("Set-Cookie", "wordpress_test_cookie=1")],
                CacheStatus::Miss,
                "Set-Cookie (nginx does not store responses that set cookies)",
            ),
            (
                200,
                vec![("Cache-Control", "no-store, no-cache, must-revalidate, max-age=0")],
                CacheStatus::Miss,
                "Cache-Control: no-store; Cache-Control: no-cache; Cache-Control: max-age=0",
            ),
            (200, vec![("cache-control", "Private")], CacheStatus::Miss, "Cache-Control: private"),
            (200, vec![("Cache-Control", "no-cache=\"Set-Cookie\", max-age=600")], CacheStatus::Miss, "MISS with no visible reason (check fastcgi_cache_min_uses, skip-cache rules, cache size)"),
            (200, vec![("Cache-Control", "public, s-maxage=0")], CacheStatus::Miss, "Cache-Control: s-maxage=0"),
            (
                200,
                vec![("Vary", "Accept-Encoding"), ("vary", "User-Agent, accept-encoding")],
                CacheStatus::Miss,
                "Vary: accept-encoding, user-agent (one cache entry per value)",
            ),
            (200, vec![("Vary", "*")], CacheStatus::Miss, "Vary: * (never cached)"),
            (200, vec![], CacheStatus::Bypass, "BYPASS (nginx skip-cache rule)"),
            (
                301,
                vec![("Location", "https://example.com/a/")],
                CacheStatus::Miss,
                "redirect 301 to https://example.com/a/",
            ),
            (302, vec![], CacheStatus::Absent, "redirect 302"),
            (404, vec![], CacheStatus::Miss, "status 404 (not cached by default)"),
            (200, vec![], CacheStatus::Absent, "no cache-status header on the response"),
            (200, vec![], CacheStatus::Expired, "EXPIRED with no visible reason (check fastcgi_cache_min_uses, skip-cache rules, cache size)"),
        ];
        for (status, headers, cache, want) in cases {
            assert_eq!(
                d(status, &headers, cache),
                want,
                "{status} {headers:?} {cache}"
            );
        }
    }

    #[test]
    fn several_reasons_at_once() {
        let h = [
            ("Set-Cookie", "x=1"),
            ("Cache-Control", "private"),
            ("Vary", "Cookie"),
        ];
        let r = diagnose(200, h.iter().copied(), CacheStatus::Bypass);
        assert_eq!(
            r,
            vec![
                MissReason::Bypass,
                MissReason::SetCookie,
                MissReason::CacheControl("private".into()),
                MissReason::Vary(vec!["cookie".into()]),
            ]
        );
    }
}
