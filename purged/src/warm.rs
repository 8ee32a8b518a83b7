//! Re-requesting a page so the next visitor gets a HIT: one GET per configured variant (desktop
//! and mobile browsers, the browsers' `Accept-Encoding`), the body read and dropped.
//!
//! Refresh-in-place sends the same requests with a header that nginx turns into
//! `fastcgi_cache_bypass` for loopback clients (packaging/nginx/cache-purged-refresh.conf): nginx
//! then asks PHP and replaces the stored entry with an atomic rename, so the old page is served
//! until the new one is in place and the entry is never missing.
//!
//! The shape (`warm(url) -> Vec<VariantResult>`) is that of `cache_preload::rewarm`, which this
//! module defers to once the crawler publishes it.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde::Serialize;

/// Chrome's desktop User-Agent.
const DESKTOP_UA: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/142.0.0.0 Safari/537.36";
/// Chrome's mobile User-Agent.
const MOBILE_UA: &str = "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/142.0.0.0 Mobile Safari/537.36";
/// What browsers send for a navigation.
const ACCEPT: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7";
const ACCEPT_ENCODING: &str = "gzip, deflate, br, zstd";

/// Which browser variants to request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variants {
    /// Desktop only.
    Desktop,
    /// Mobile only.
    Mobile,
    /// Both.
    Both,
}

impl Variants {
    /// Parses `desktop`, `mobile` or `both`.
    pub fn parse(s: &str) -> Option<Variants> {
        match s {
            "desktop" => Some(Variants::Desktop),
            "mobile" => Some(Variants::Mobile),
            "both" => Some(Variants::Both),
            _ => None,
        }
    }

    fn list(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Variants::Desktop => &[("desktop", DESKTOP_UA)],
            Variants::Mobile => &[("mobile", MOBILE_UA)],
            Variants::Both => &[("desktop", DESKTOP_UA), ("mobile", MOBILE_UA)],
        }
    }
}

/// The outcome of one variant's request.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct VariantResult {
    /// `desktop` or `mobile`.
    pub variant: &'static str,
    /// HTTP status, when a response came.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// `X-FastCGI-Cache` / `X-Cache-Status` of the response.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache: Option<String>,
    /// Milliseconds until the body was read.
    pub ms: u64,
    /// Why no response came.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Options of a [`Warmer`].
#[derive(Debug, Clone)]
pub struct WarmOptions {
    /// Variants to request.
    pub variants: Variants,
    /// `host:port` → address overrides (a site behind a local nginx).
    pub connect_to: Vec<(String, SocketAddr)>,
    /// Per-request timeout.
    pub timeout: Duration,
    /// The header that asks nginx to bypass and replace an entry (refresh-in-place).
    pub refresh_header: String,
}

/// Requests pages the way a visitor's browser would.
#[derive(Debug, Clone)]
pub struct Warmer {
    client: reqwest::Client,
    opts: WarmOptions,
}

impl Warmer {
    /// A warmer; fails only when the HTTP client cannot be built.
    pub fn new(opts: WarmOptions) -> Result<Warmer, String> {
        let mut b = reqwest::Client::builder()
            .timeout(opts.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(8);
        for (host, addr) in &opts.connect_to {
            b = b.resolve(host, *addr);
        }
        let client = b.build().map_err(|e| format!("HTTP client: {e}"))?;
        Ok(Warmer { client, opts })
    }

    /// Requests `url` once per variant; `refresh` adds the bypass header.
    pub async fn warm(&self, url: &str, refresh: bool) -> Vec<VariantResult> {
        let mut out = Vec::new();
        for &(variant, ua) in self.opts.variants.list() {
            let t0 = Instant::now();
            let mut req = self
                .client
                .get(url)
                .header("User-Agent", ua)
                .header("Accept", ACCEPT)
                .header("Accept-Encoding", ACCEPT_ENCODING)
                .header("Accept-Language", "en-US,en;q=0.9");
            if refresh {
                req = req.header(self.opts.refresh_header.as_str(), "1");
            }
            let res = match req.send().await {
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let cache = ["x-fastcgi-cache", "x-cache-status"]
                        .iter()
                        .find_map(|h| resp.headers().get(*h))
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned);
                    // nginx stores the entry only once the whole body went through.
                    let error = resp.bytes().await.err().map(|e| e.to_string());
                    VariantResult {
                        variant,
                        status: Some(status),
                        cache,
                        ms: t0.elapsed().as_millis() as u64,
                        error,
                    }
                }
                Err(e) => VariantResult {
                    variant,
                    status: None,
                    cache: None,
                    ms: t0.elapsed().as_millis() as u64,
                    error: Some(e.to_string()),
                },
            };
            out.push(res);
        }
        out
    }
}
