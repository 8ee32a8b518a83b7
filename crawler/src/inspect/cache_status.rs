//! nginx's cache-status header: which one the site uses, what it says, and per-run counts.
//!
//! nginx exposes `$upstream_cache_status` only if the site adds it to responses, under a name of
//! the admin's choosing. The usual names are tried in order; `--cache-header NAME` overrides them.
//! The first known header seen is then kept for the whole run, so a site that sends two of them
//! (nginx plus a CDN) is not counted twice or inconsistently.

use std::fmt;

/// Header names tried, in this order, when `--cache-header` is not given.
pub const KNOWN_HEADERS: [&str; 4] = [
    "X-FastCGI-Cache",
    "X-Cache-Status",
    "X-Proxy-Cache",
    "X-Cache",
];

/// One response's cache status, the values of nginx's `$upstream_cache_status`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CacheStatus {
    /// Served from the cache.
    Hit,
    /// Not in the cache; fetched from upstream (and maybe stored).
    Miss,
    /// In the cache but expired; fetched from upstream again.
    Expired,
    /// Expired entry served because of `*_cache_use_stale`.
    Stale,
    /// Expired entry served while another request refreshes it.
    Updating,
    /// The cache was bypassed (`*_cache_bypass`); the response is not stored.
    Bypass,
    /// Expired entry revalidated with the upstream (`*_cache_revalidate`).
    Revalidated,
    /// The header is present with a value this table does not know.
    Other,
    /// No cache-status header on the response.
    Absent,
}

impl CacheStatus {
    /// Every status, in the order summaries print them.
    pub const ALL: [CacheStatus; 9] = [
        CacheStatus::Hit,
        CacheStatus::Miss,
        CacheStatus::Expired,
        CacheStatus::Stale,
        CacheStatus::Updating,
        CacheStatus::Bypass,
        CacheStatus::Revalidated,
        CacheStatus::Other,
        CacheStatus::Absent,
    ];

    /// Classifies a header value. Accepts nginx's bare words and the common CDN spellings
    /// (`HIT from edge`, `TCP_HIT`, `Hit from cloudfront`); for a comma-separated chain
    /// (`MISS, HIT`, one entry per cache layer) the last entry, nearest to the client, counts.
    pub fn parse(value: &str) -> CacheStatus {
        let last = value.rsplit(',').next().unwrap_or("").trim();
        let upper = last.to_ascii_uppercase();
        let words = upper
            .split(|c: char| !c.is_ascii_alphanumeric())
            .filter(|w| !w.is_empty());
        for word in words {
            let status = match word {
                "HIT" | "TCPHIT" => CacheStatus::Hit,
                "MISS" => CacheStatus::Miss,
                "EXPIRED" => CacheStatus::Expired,
                "STALE" => CacheStatus::Stale,
                "UPDATING" => CacheStatus::Updating,
                "BYPASS" | "PASS" => CacheStatus::Bypass,
                "REVALIDATED" => CacheStatus::Revalidated,
                _ => continue,
            };
            return status;
        }
        // `TCP_HIT`, `TCP_MISS`: the underscore split leaves `TCP` then the word, handled above.
        CacheStatus::Other
    }

    /// The upper-case word used in summaries and JSON (`HIT`, `MISS`, …, `OTHER`, `NONE`).
    pub fn as_str(self) -> &'static str {
        match self {
            CacheStatus::Hit => "HIT",
            CacheStatus::Miss => "MISS",
            CacheStatus::Expired => "EXPIRED",
            CacheStatus::Stale => "STALE",
            CacheStatus::Updating => "UPDATING",
            CacheStatus::Bypass => "BYPASS",
            CacheStatus::Revalidated => "REVALIDATED",
            CacheStatus::Other => "OTHER",
            CacheStatus::Absent => "NONE",
        }
    }

    /// Whether a visitor making this request was served without running PHP.
    pub fn is_served_from_cache(self) -> bool {
        matches!(
            self,
            CacheStatus::Hit
                | CacheStatus::Stale
                | CacheStatus::Updating
                | CacheStatus::Revalidated
        )
    }
}

impl serde::Serialize for CacheStatus {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl fmt::Display for CacheStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The counts as a JSON object, every status present in [`CacheStatus::ALL`] order:
/// `{"HIT":2,"MISS":998,…}`.
impl serde::Serialize for Counts {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(CacheStatus::ALL.len()))?;
        for (w, n) in self.pairs() {
            m.serialize_entry(w, &n)?;
        }
        m.end()
    }
}

/// Finds and remembers the site's cache-status header.
#[derive(Clone, Debug, Default)]
pub struct Detector {
    /// `--cache-header NAME`: only this header is read.
    forced: Option<String>,
    /// The known header first seen in this run, kept from then on.
    detected: Option<&'static str>,
}

impl Detector {
    /// A detector that tries [`KNOWN_HEADERS`], or only `forced` when given (`--cache-header`).
    pub fn new(forced: Option<&str>) -> Self {
        Detector {
            forced: forced.map(str::to_owned),
            detected: None,
        }
    }

    /// The header name in use: the forced one, or the one detected so far.
    pub fn header_name(&self) -> Option<&str> {
        self.forced.as_deref().or(self.detected)
    }

    /// The cache status of one response, locking in the header name on first sight.
    pub fn classify<'a, I>(&mut self, headers: I) -> CacheStatus
    where
        I: IntoIterator<Item = (&'a str, &'a str)>,
        I::IntoIter: Clone,
    {
        let headers = headers.into_iter();
        let find = |name: &str| {
            headers
                .clone()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v)
        };
        if let Some(name) = self.header_name() {
            return find(name).map_or(CacheStatus::Absent, CacheStatus::parse);
        }
        for name in KNOWN_HEADERS {
            if let Some(v) = find(name) {
                self.detected = Some(name);
                return CacheStatus::parse(v);
            }
        }
        CacheStatus::Absent
    }
}

/// Per-run counts of every [`CacheStatus`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts([u64; 9]);

impl Counts {
    fn index(status: CacheStatus) -> usize {
        CacheStatus::ALL
            .iter()
            .position(|s| *s == status)
            .unwrap_or(8)
    }

    /// Counts one response.
    pub fn record(&mut self, status: CacheStatus) {
        self.0[Self::index(status)] += 1;
    }

    /// How many responses had `status`.
    pub fn get(&self, status: CacheStatus) -> u64 {
        self.0[Self::index(status)]
    }

    #[cfg(test)]
    /// Responses counted.
    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }

    /// `(word, count)` for every status, zero counts included, in [`CacheStatus::ALL`] order.
    pub fn pairs(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        CacheStatus::ALL.iter().map(|s| (s.as_str(), self.get(*s)))
    }

    /// One summary line: the non-zero counts, e.g. `cache: 998 MISS, 2 HIT (header X-FastCGI-Cache)`.
    pub fn summary_line(&self, header: Option<&str>) -> String {
        let parts: Vec<String> = self
            .pairs()
            .filter(|(_, n)| *n > 0)
            .map(|(w, n)| format!("{n} {w}"))
            .collect();
        let counts = if parts.is_empty() {
            "no responses".to_owned()
        } else {
            parts.join(", ")
        };
        match header {
            Some(h) => format!("cache: {counts} (header {h})"),
            None => {
                format!("cache: {counts} (no cache-status header seen; use --cache-header NAME)")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_nginx_and_cdn_values() {
        let table: [(&str, CacheStatus); 16] = [
            ("HIT", CacheStatus::Hit),
            ("hit", CacheStatus::Hit),
            (" MISS ", CacheStatus::Miss),
            ("EXPIRED", CacheStatus::Expired),
            ("STALE", CacheStatus::Stale),
            ("UPDATING", CacheStatus::Updating),
            ("BYPASS", CacheStatus::Bypass),
            ("REVALIDATED", CacheStatus::Revalidated),
            ("HIT from squid.example", CacheStatus::Hit),
            ("TCP_MISS", CacheStatus::Miss),
            ("Hit from cloudfront", CacheStatus::Hit),
            ("MISS, HIT", CacheStatus::Hit),
            ("HIT, MISS", CacheStatus::Miss),
            ("", CacheStatus::Other),
            ("-", CacheStatus::Other),
            ("cached", CacheStatus::Other),
        ];
        for (value, want) in table {
            assert_eq!(CacheStatus::parse(value), want, "{value:?}");
        }
    }

    #[test]
    fn detects_first_known_header_and_keeps_it() {
        let mut d = Detector::new(None);
        let first = [
            ("Content-Type", "text/html"),
            ("x-fastcgi-cache", "MISS"),
            ("X-Cache", "HIT"),
        ];
        assert_eq!(d.classify(first.iter().copied()), CacheStatus::Miss);
        assert_eq!(d.header_name(), Some("X-FastCGI-Cache"));
        // X-Cache alone no longer counts: the run sticks to the detected header.
        let later = [("X-Cache", "HIT")];
        assert_eq!(d.classify(later.iter().copied()), CacheStatus::Absent);
    }

    #[test]
    fn priority_order_when_several_appear_at_once() {
        let mut d = Detector::new(None);
        let h = [("X-Cache", "MISS"), ("X-Proxy-Cache", "HIT")];
        assert_eq!(d.classify(h.iter().copied()), CacheStatus::Hit);
        assert_eq!(d.header_name(), Some("X-Proxy-Cache"));
    }

    #[test]
    fn forced_header_only() {
        let mut d = Detector::new(Some("X-My-Cache"));
        let h = [("X-FastCGI-Cache", "HIT"), ("x-my-cache", "BYPASS")];
        assert_eq!(d.classify(h.iter().copied()), CacheStatus::Bypass);
        assert_eq!(
            d.classify([("X-FastCGI-Cache", "HIT")]),
            CacheStatus::Absent
        );
        assert_eq!(d.header_name(), Some("X-My-Cache"));
    }

    #[test]
    fn no_header_means_absent_and_nothing_detected() {
        let mut d = Detector::new(None);
        assert_eq!(d.classify([("Server", "nginx")]), CacheStatus::Absent);
        assert_eq!(d.header_name(), None);
    }

    #[test]
    fn counts_summary_and_json() {
        let mut c = Counts::default();
        for s in [
            CacheStatus::Miss,
            CacheStatus::Miss,
            CacheStatus::Hit,
            CacheStatus::Absent,
        ] {
            c.record(s);
        }
        assert_eq!(c.total(), 4);
        assert_eq!(c.get(CacheStatus::Miss), 2);
        assert_eq!(
            c.summary_line(Some("X-FastCGI-Cache")),
            "cache: 1 HIT, 2 MISS, 1 NONE (header X-FastCGI-Cache)"
        );
        assert_eq!(
            serde_json::to_string(&c).unwrap(),
            "{\"HIT\":1,\"MISS\":2,\"EXPIRED\":0,\"STALE\":0,\"UPDATING\":0,\"BYPASS\":0,\"REVALIDATED\":0,\"OTHER\":0,\"NONE\":1}"
        );
        assert_eq!(
            Counts::default().summary_line(None),
            "cache: no responses (no cache-status header seen; use --cache-header NAME)"
        );
    }
}
