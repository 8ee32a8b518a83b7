//! The HTTP client every request of a run shares, and what the fetch loop needs to read its
//! answers: the `Retry-After` pause of the whole run, `Retry-After` parsing, and one-line error
//! descriptions.
//!
//! The client is `reqwest` (hyper 1 + rustls with the `ring` provider): it gives connection
//! pooling, HTTP proxies with CONNECT, and connect and read timeouts, and it puts `url::Url`'s
//! path and query on the request line verbatim, so the bytes chosen by
//! [`crate::discover::norm`] are the bytes sent.

use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::header::{HeaderMap, RETRY_AFTER};

use crate::config::HttpConfig;
use crate::Error;

/// A site-wide pause: after a 429 or 503 with `Retry-After`, no request of the run (first try or
/// retry) is sent before the pause ends. Requests already on the wire are not cut.
#[derive(Clone, Debug, Default)]
pub struct PauseGate(Arc<std::sync::Mutex<Option<Instant>>>);

impl PauseGate {
    /// Extends the pause to at least `until`.
    pub fn pause_until(&self, until: Instant) {
        let mut g = self.0.lock().unwrap_or_else(|p| p.into_inner());
        *g = Some(g.map_or(until, |p| p.max(until)));
    }

    /// When the current pause ends, if one is in force.
    pub fn until(&self) -> Option<Instant> {
        let g = self.0.lock().unwrap_or_else(|p| p.into_inner());
        g.filter(|u| *u > Instant::now())
    }

    /// Waits out the pause (re-checking, since it may be extended meanwhile).
    pub async fn wait(&self) {
        while let Some(u) = self.until() {
            tokio::time::sleep_until(u.into()).await;
        }
    }
}

/// The client settings every request of a run shares: manual redirects (each hop is normalized by
/// the crawler), the run's timeouts and TLS choice, no proxy from the environment, and host names
/// resolved by [`super::dns`] rather than NSS.
pub(crate) fn client_builder(cfg: &HttpConfig) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .dns_resolver(Arc::new(crate::http::dns::ReqwestResolver {
            resolver: crate::http::dns::Resolver::default(),
            timeout: cfg.dns_timeout,
            prefer_ipv4: cfg.prefer_ipv4,
        }))
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(cfg.connect_timeout)
        .read_timeout(cfg.read_timeout)
        .pool_idle_timeout(Duration::from_secs(30))
        .tcp_nodelay(true)
        .http1_title_case_headers()
        .danger_accept_invalid_certs(!cfg.check_certificate)
        // Proxies only when asked for: safexec clears the environment
        // anyway, and a stray http_proxy must not redirect a warm-up.
        .no_proxy()
}

/// Adds the run's explicit HTTP and HTTPS proxies to `b`.
pub(crate) fn with_proxies(
    mut b: reqwest::ClientBuilder,
    cfg: &HttpConfig,
) -> Result<reqwest::ClientBuilder, Error> {
    if let Some(p) = &cfg.proxies.http {
        b = b.proxy(
            reqwest::Proxy::http(p.as_str())
                .map_err(|e| Error::usage(format!("invalid proxy '{p}': {e}")))?,
        );
    }
    if let Some(p) = &cfg.proxies.https {
        b = b.proxy(
            reqwest::Proxy::https(p.as_str())
                .map_err(|e| Error::usage(format!("invalid proxy '{p}': {e}")))?,
        );
    }
    Ok(b)
}

/// Parse `Retry-After` (delta-seconds or an HTTP date).
pub fn retry_after(h: &HeaderMap) -> Option<Duration> {
    let v = h.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    let delta = when.with_timezone(&chrono::Utc) - chrono::Utc::now();
    Some(delta.to_std().unwrap_or(Duration::ZERO))
}

pub(super) fn is_refused(e: &reqwest::Error) -> bool {
    let mut src: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = src {
        if let Some(io) = s.downcast_ref::<io::Error>() {
            if io.kind() == io::ErrorKind::ConnectionRefused {
                return true;
            }
        }
        src = s.source();
    }
    false
}

/// A one-line English description of a client error, innermost cause last.
pub(super) fn describe(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_body() || e.is_decode() {
        "error reading body"
    } else {
        "request failed"
    };
    let mut root: &dyn std::error::Error = e;
    while let Some(s) = root.source() {
        root = s;
    }
    let detail = root.to_string();
    let detail = detail.lines().next().unwrap_or("").trim();
    if detail.is_empty() || detail == kind {
        kind.to_string()
    } else {
        format!("{kind}: {detail}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn retry_after_forms() {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_static("3"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(3)));
        h.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after(&h), Some(Duration::ZERO));
        h.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&h), None);
    }
}
