//! Re-requesting a page so the next visitor gets a HIT, with the crawler's
//! `cache_preload::rewarm` (one request per configured variant: desktop and mobile browsers,
//! the browsers' `Accept-Encoding`; bodies read to the end and dropped, since nginx stores a
//! response only once all of it went through).
//!
//! Refresh-in-place sends the same requests with a header that nginx turns into
//! `fastcgi_cache_bypass` for loopback clients (packaging/nginx/cache-purged-http.conf and
//! cache-purged-refresh.conf): nginx asks PHP again and replaces the stored entry with an
//! atomic rename, so the old page is served until the new one is in place and the entry is
//! never missing.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use cache_preload::rewarm::{RewarmOptions, Rewarmer};

pub use cache_preload::rewarm::{VariantResult, Variants};

/// Parses `desktop`, `mobile` or `both`.
pub fn parse_variants(s: &str) -> Option<Variants> {
    match s {
        "desktop" => Some(Variants::Desktop),
        "mobile" => Some(Variants::Mobile),
        "both" => Some(Variants::Both),
        _ => None,
    }
}

/// Options of a [`Warmer`].
#[derive(Debug, Clone)]
pub struct WarmOptions {
    /// Variants to request.
    pub variants: Variants,
    /// Host name → address overrides.
    pub connect_to: Vec<(String, SocketAddr)>,
    /// Send every other re-warm to 127.0.0.1 at the URL's port (the local nginx), keeping the
    /// URL's Host and TLS name, so the public cache key is stored.
    pub loopback: bool,
    /// Per-request timeout.
    pub timeout: Duration,
    /// The header that asks nginx to bypass and replace an entry (refresh-in-place).
    pub refresh_header: String,
}

/// Plain and refreshing re-warmers.
#[derive(Clone)]
pub struct Warmer {
    plain: Arc<Rewarmer>,
    refresh: Arc<Rewarmer>,
}

impl Warmer {
    /// Builds both re-warmers; fails on an invalid header name.
    pub fn new(o: WarmOptions) -> Result<Warmer, String> {
        let map = o.connect_to.clone();
        let loopback = o.loopback;
        let connect_to: cache_preload::rewarm::ConnectTo = Arc::new(move |host: &str, port| {
            map.iter()
                .find(|(h, _)| h.eq_ignore_ascii_case(host))
                .map(|(_, a)| *a)
                .or_else(|| loopback.then(|| SocketAddr::from(([127, 0, 0, 1], port))))
        });
        let base = RewarmOptions {
            variants: o.variants,
            connect_to: (loopback || !o.connect_to.is_empty()).then_some(connect_to),
            timeout: o.timeout,
            ..RewarmOptions::default()
        };
        let mut with_header = base.clone();
        with_header.extra_headers = vec![(o.refresh_header.clone(), "1".into())];
        Ok(Warmer {
            plain: Arc::new(Rewarmer::new(base).map_err(|e| e.to_string())?),
            refresh: Arc::new(Rewarmer::new(with_header).map_err(|e| e.to_string())?),
        })
    }

    /// Requests `url` once per variant; `refresh` adds the bypass header.
    pub async fn warm(&self, url: &str, refresh: bool) -> Vec<VariantResult> {
        if refresh {
            self.refresh.warm(url).await
        } else {
            self.plain.warm(url).await
        }
    }
}
