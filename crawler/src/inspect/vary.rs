//! The `Vary` trap: one plain warning with the nginx fix, and the header variants of `--variants`.
//!
//! When the upstream response carries `Vary`, nginx stores the page under a variant hash of the
//! key plus the named request headers (norm-spec.md §4.3). A warm-up request whose
//! `Accept-Encoding` or `User-Agent` differs from a visitor's then fills an entry nobody reads.
//! The real fix is on the server; `--variants` is the workaround when the server cannot change.

use std::collections::BTreeSet;

use super::miss_reason::vary_names;
use crate::config::VariantSet;

/// `Accept-Encoding` values real clients send, most common first: Chrome, Edge and Firefox
/// (zstd since 2024), Safari, older clients and libraries, and `identity` (wget, NPP today).
pub const ACCEPT_ENCODINGS: [&str; 4] = [
    "gzip, deflate, br, zstd",
    "gzip, deflate, br",
    "gzip, deflate",
    "identity",
];

/// Remembers which `Vary` headers were seen; the warning is given once per run, and only after
/// a browser-like request with other header values really missed (see [`VaryWatch::confirmed`]).
///
/// nginx's own `gzip_vary on` adds `Vary: Accept-Encoding` to responses that nginx stores under
/// one key when `fastcgi_ignore_headers Vary` is set, so the header alone proves nothing.
#[derive(Clone, Debug, Default)]
pub struct VaryWatch {
    seen: BTreeSet<String>,
    warned: bool,
}

impl VaryWatch {
    /// Feeds one response's headers; returns the request headers it varies on (lower case).
    pub fn observe<'a, I>(&mut self, headers: I) -> Vec<String>
    where
        I: IntoIterator<Item = (&'a str, &'a str)>,
        I::IntoIter: 'a,
    {
        let names = vary_names(headers);
        self.seen.extend(names.iter().cloned());
        names
    }

    /// A request with other browser header values missed a page that varies on `names` while
    /// the crawler's own request hit it: the warning text, the first time only.
    pub fn confirmed(&mut self, names: &[String]) -> Option<String> {
        if self.warned || names.is_empty() {
            return None;
        }
        self.warned = true;
        Some(warning_text(names))
    }

    /// Every request header named by a `Vary` so far, lower case and sorted.
    pub fn seen(&self) -> impl Iterator<Item = &str> {
        self.seen.iter().map(String::as_str)
    }
}

/// The warning for responses that vary on `names` (lower case): what goes wrong and the nginx fix.
pub fn warning_text(names: &[String]) -> String {
    let list = names.join(", ");
    let mut text = format!(
        "warning: responses carry \"Vary: {list}\", so nginx stores one cache entry per distinct value of \
         those request headers and a page warmed with one value still misses for visitors who send another. "
    );
    if names.iter().any(|n| n == "*") {
        text.push_str("\"Vary: *\" is never cached at all. ");
    }
    text.push_str(
        "Fix it in nginx: turn compression off in PHP (zlib.output_compression = Off, no gzip in plugins), \
         let nginx compress (gzip on;), and add \"fastcgi_ignore_headers Vary;\" and \
         \"fastcgi_param HTTP_ACCEPT_ENCODING \\\"\\\";\" where the cache is used",
    );
    if names.iter().any(|n| n == "user-agent") {
        text.push_str(
            "; for mobile pages put an explicit flag in the key instead (map $http_user_agent $mobile {...} \
             and $mobile in fastcgi_cache_key)",
        );
    }
    if names.iter().any(|n| n == "cookie") {
        text.push_str("; bypass the cache for logged-in cookies instead of varying on Cookie");
    }
    text.push_str(
        ". Until then, --variants warms the common Accept-Encoding values and a mobile User-Agent.",
    );
    text
}

/// One header variant to request each page with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Variant {
    /// Short label for reports, e.g. `mobile/gzip, deflate, br`.
    pub label: String,
    /// The `User-Agent` value.
    pub user_agent: String,
    /// The `Accept-Encoding` value.
    pub accept_encoding: String,
}

/// The variants of `set`, desktop first, using the crawler's configured User-Agents.
pub fn variants(set: VariantSet, desktop_ua: &str, mobile_ua: &str) -> Vec<Variant> {
    let agents: &[(&str, &str)] = match set {
        VariantSet::Encodings => &[("desktop", desktop_ua)],
        VariantSet::Agents | VariantSet::All => &[("desktop", desktop_ua), ("mobile", mobile_ua)],
    };
    let encodings: &[&str] = match set {
        VariantSet::Agents => &ACCEPT_ENCODINGS[..1],
        VariantSet::Encodings | VariantSet::All => &ACCEPT_ENCODINGS,
    };
    let mut out = Vec::with_capacity(agents.len() * encodings.len());
    for (kind, ua) in agents {
        for ae in encodings {
            out.push(Variant {
                label: format!("{kind}/{ae}"),
                user_agent: (*ua).to_owned(),
                accept_encoding: (*ae).to_owned(),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warns_once_and_keeps_collecting() {
        let mut w = VaryWatch::default();
        assert!(w.observe([("Content-Type", "text/html")]).is_empty());
        let names = w.observe([("Vary", "Accept-Encoding")]);
        assert_eq!(names, ["accept-encoding"]);
        let first = w.confirmed(&names).expect("a confirmed miss warns");
        assert!(
            first.starts_with("warning: responses carry \"Vary: accept-encoding\""),
            "{first}"
        );
        assert!(first.contains("fastcgi_ignore_headers Vary;"), "{first}");
        assert!(
            first.contains("fastcgi_param HTTP_ACCEPT_ENCODING \\\"\\\";"),
            "{first}"
        );
        assert!(first.contains("zlib.output_compression = Off"), "{first}");
        assert!(!first.contains('\n'), "one line");
        assert_eq!(w.observe([("Vary", "User-Agent")]), ["user-agent"]);
        assert_eq!(w.confirmed(&names), None);
        assert_eq!(
            w.seen().collect::<Vec<_>>(),
            ["accept-encoding", "user-agent"]
        );
    }

    #[test]
    fn user_agent_cookie_and_star_advice() {
        let t = warning_text(&["user-agent".into(), "cookie".into(), "*".into()]);
        assert!(t.contains("$mobile in fastcgi_cache_key"), "{t}");
        assert!(t.contains("logged-in cookies"), "{t}");
        assert!(t.contains("never cached"), "{t}");
    }

    #[test]
    fn variant_sets() {
        let all = variants(VariantSet::All, "D", "M");
        assert_eq!(all.len(), 8);
        assert_eq!(all[0].label, "desktop/gzip, deflate, br, zstd");
        assert_eq!(all[3].accept_encoding, "identity");
        assert_eq!(all[4].user_agent, "M");
        assert_eq!(all[7].label, "mobile/identity");
        let enc = variants(VariantSet::Encodings, "D", "M");
        assert_eq!(
            enc.iter()
                .map(|v| v.accept_encoding.as_str())
                .collect::<Vec<_>>(),
            ACCEPT_ENCODINGS
        );
        assert!(enc.iter().all(|v| v.user_agent == "D"));
        let ag = variants(VariantSet::Agents, "D", "M");
        assert_eq!(
            ag.iter().map(|v| v.label.as_str()).collect::<Vec<_>>(),
            [
                "desktop/gzip, deflate, br, zstd",
                "mobile/gzip, deflate, br, zstd"
            ]
        );
        assert_eq!(VariantSet::parse("all"), Ok(VariantSet::All));
        assert_eq!(VariantSet::parse("encodings"), Ok(VariantSet::Encodings));
        assert!(VariantSet::parse("bogus").is_err());
    }

    #[test]
    fn mobile_ua_matches_wp_is_mobile() {
        // wp_is_mobile(): "Mobile" anywhere, or Android, Silk/, Kindle, BlackBerry, Opera Mini/Mobi.
        assert!(
            crate::config::UA_MOBILE.contains("Mobile")
                && crate::config::UA_MOBILE.contains("Android")
        );
    }
}
