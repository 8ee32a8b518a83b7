//! HTTP fetching: one GET per URL with manual redirects (each hop's target goes through the
//! normalizer), retries on selected statuses honouring `Retry-After`, and the body handed to
//! [`super::body`] (discarded, scanned for links, or collected for a sitemap).
//!
//! Redirects and decompression are done here, not by reqwest ([`super::client`]), so every hop
//! is normalized and host-checked and `Accept-Encoding` is never rewritten. What leaves this
//! module is plain data ([`Response`], [`Failure`]): the layers above never see a `reqwest` or
//! `http` type.

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::header::{
    HeaderMap, HeaderName, HeaderValue, CONTENT_ENCODING, CONTENT_TYPE, LOCATION,
};
use url::Url;

use crate::config::Config;
use crate::discover::links::{LinkLimits, LinkScanner, PageLinks};
use crate::discover::norm::{self, NormOptions, Target};
use crate::Error;

use super::body::{self, Sink};
use super::client::{self, PauseGate};

/// What to do with a response body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyUse {
    /// Count and discard.
    Discard,
    /// Decode and scan for links if the final response is 2xx HTML.
    ScanLinks,
    /// Decode and keep up to this many bytes (sitemaps, robots.txt).
    Collect(u64),
}

/// A completed fetch (any final status).
#[derive(Debug)]
pub struct Response {
    /// The URL of the final response, after redirects.
    pub final_target: Target,
    /// Final status code.
    pub status: u16,
    /// Its reason phrase ("Unknown" for a code without one).
    pub reason: &'static str,
    /// Final response headers (read through [`Response::header_pairs`]).
    headers: HeaderMap,
    /// Bytes received on the wire for the final body (before decoding).
    pub bytes: u64,
    /// The Content-Length the server announced, if any.
    pub content_length: Option<u64>,
    /// Time from sending the final request to its response headers.
    pub ttfb: Duration,
    /// Total time including redirects, retries and the body.
    pub elapsed: Duration,
    /// Attempts used for the final hop (1 = no retry).
    pub tries: u32,
    /// Redirects followed.
    pub redirects: u32,
    /// Links found (only with [`BodyUse::ScanLinks`] on a 2xx HTML page).
    pub links: Option<PageLinks>,
    /// Decoded body (only with [`BodyUse::Collect`]).
    pub body: Option<Vec<u8>>,
}

impl Response {
    /// Whether the final status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The final response's headers as `(name, value)` pairs (values that are not visible
    /// ASCII are left out), the form the `inspect` layer reads.
    pub fn header_pairs(&self) -> Vec<(&str, &str)> {
        self.headers
            .iter()
            .filter_map(|(k, v)| Some((k.as_str(), v.to_str().ok()?)))
            .collect()
    }
}

/// Why a fetch produced no final response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FailKind {
    /// DNS, connect, TLS, timeout or connection reset, after all tries.
    Network,
    /// More redirects than allowed.
    TooManyRedirects,
    /// A redirect pointed off the allowed hosts or to a non-HTTP URL.
    BadRedirect,
    /// A redirect pointed to a page this run has already fetched: not requested again.
    AlreadyFetched,
}

/// A failed fetch.
#[derive(Debug, Clone)]
pub struct Failure {
    /// The URL being fetched when it failed.
    pub at: Url,
    /// Classification.
    pub kind: FailKind,
    /// One-line English message.
    pub message: String,
    /// Attempts used.
    pub tries: u32,
    /// Time spent.
    pub elapsed: Duration,
}

impl Failure {
    /// A failure of a fetch that began at `started`, while fetching `at`.
    fn new(at: &Target, kind: FailKind, message: String, tries: u32, started: Instant) -> Self {
        Failure {
            at: at.url.clone(),
            kind,
            message,
            tries,
            elapsed: started.elapsed(),
        }
    }
}

/// Settings for the fetcher, taken from [`Config`].
#[derive(Debug, Clone)]
pub struct FetchSettings {
    /// Attempts per hop.
    pub tries: u32,
    /// Statuses that are retried.
    pub retry_on: Vec<u16>,
    /// Cap on retry pauses and on Retry-After.
    pub max_retry_wait: Duration,
    /// Bytes per second per request.
    pub limit_rate: Option<u64>,
    /// Redirects per URL.
    pub max_redirect: u32,
    /// Normalizer options, also applied to redirect targets.
    pub norm: NormOptions,
    /// Link scanner bounds.
    pub link_limits: LinkLimits,
    /// Most decoded HTML bytes scanned per page (the rest is only counted).
    pub max_scan_bytes: u64,
}

/// The HTTP client shared by the whole crawl.
#[derive(Clone)]
pub struct Fetcher {
    client: reqwest::Client,
    headers: HeaderMap,
    settings: Arc<FetchSettings>,
    pause: PauseGate,
}

impl Fetcher {
    /// Build the client from the run configuration.
    pub fn new(cfg: &Config) -> Result<Self, Error> {
        let b = client::client_builder(&cfg.http)
            // Adaptive concurrency may run up to its cap: keep that many connections alive.
            .pool_max_idle_per_host(
                cfg.pacing.concurrency.max(
                    cfg.pacing
                        .adaptive
                        .as_ref()
                        .map_or(1, |a| a.max_concurrency.max(a.max_concurrency_cached)),
                ),
            );
        let client = client::with_proxies(b, &cfg.http)?
            .build()
            .map_err(Error::client)?;
        let mut headers = HeaderMap::new();
        for (n, v) in &cfg.http.headers {
            let name = HeaderName::from_bytes(n.as_bytes())
                .map_err(|_| Error::usage(format!("invalid header name '{n}'")))?;
            let value = HeaderValue::from_str(v)
                .map_err(|_| Error::usage(format!("invalid value for header '{n}'")))?;
            headers.insert(name, value);
        }
        Ok(Fetcher {
            client,
            headers,
            settings: Arc::new(FetchSettings {
                tries: cfg.http.tries.max(1),
                retry_on: cfg.http.retry_on.clone(),
                max_retry_wait: cfg.http.max_retry_wait,
                limit_rate: cfg.http.limit_rate,
                max_redirect: cfg.http.max_redirect,
                norm: cfg.discovery.norm,
                link_limits: LinkLimits::default(),
                max_scan_bytes: 32 << 20,
            }),
            pause: PauseGate::default(),
        })
    }

    /// The run's `Retry-After` pause, shared by every clone of this fetcher.
    pub fn pause_gate(&self) -> &PauseGate {
        &self.pause
    }

    /// GET `target`, following redirects whose targets satisfy `allow`; a hop to a URL for
    /// which `known` is true stops with [`FailKind::AlreadyFetched`].
    pub async fn fetch(
        &self,
        target: &Target,
        body_use: BodyUse,
        allow: &dyn Fn(&Url) -> bool,
        known: &dyn Fn(&Url) -> bool,
    ) -> Result<Response, Failure> {
        let start = Instant::now();
        let mut cur = target.clone();
        let mut redirects = 0u32;
        loop {
            let (resp, ttfb, tries) = match self.send_with_retries(&cur).await {
                Ok(r) => r,
                Err((message, tries)) => {
                    return Err(Failure::new(&cur, FailKind::Network, message, tries, start))
                }
            };
            let status = resp.status();
            if status.is_redirection() {
                if let Some(loc) = resp.headers().get(LOCATION) {
                    let loc = String::from_utf8_lossy(loc.as_bytes()).into_owned();
                    body::drain(resp).await;
                    redirects += 1;
                    let fail = |kind, message| Failure::new(&cur, kind, message, tries, start);
                    if redirects > self.settings.max_redirect {
                        return Err(fail(
                            FailKind::TooManyRedirects,
                            format!("{} redirections exceeded", self.settings.max_redirect),
                        ));
                    }
                    let next =
                        norm::resolve(Some(&cur.url), &loc, &self.settings.norm).map_err(|e| {
                            fail(
                                FailKind::BadRedirect,
                                format!("bad redirect to '{loc}': {e}"),
                            )
                        })?;
                    if !allow(&next.url) {
                        return Err(fail(
                            FailKind::BadRedirect,
                            format!("redirect to {} leaves the allowed hosts", next.url),
                        ));
                    }
                    if known(&next.url) {
                        return Err(fail(
                            FailKind::AlreadyFetched,
                            format!("redirect to {}, already fetched", next.url),
                        ));
                    }
                    cur = next;
                    continue;
                }
            }
            let headers = resp.headers().clone();
            let content_length = resp.content_length();
            let is_html = headers
                .get(CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|ct| {
                    let ct = ct.to_ascii_lowercase();
                    ct.starts_with("text/html") || ct.starts_with("application/xhtml+xml")
                });
            let encoding = headers
                .get(CONTENT_ENCODING)
                .and_then(|v| v.to_str().ok())
                .map(|s| s.trim().to_ascii_lowercase())
                .unwrap_or_default();
            let sink = match body_use {
                BodyUse::ScanLinks if status.is_success() && is_html => {
                    let declared = headers
                        .get(CONTENT_TYPE)
                        .and_then(|v| v.to_str().ok())
                        .and_then(crate::discover::links::charset_param)
                        .and_then(|l| encoding_rs::Encoding::for_label(l.as_bytes()));
                    let scanner = LinkScanner::with_encoding(self.settings.link_limits, declared);
                    Sink::links(&encoding, scanner, self.settings.max_scan_bytes)
                }
                BodyUse::Collect(max) if status.is_success() => Sink::collect(&encoding, max),
                _ => Sink::Discard,
            };
            let (bytes, sink, err) = body::read(resp, sink, self.settings.limit_rate).await;
            if let Some(message) = err {
                return Err(Failure::new(&cur, FailKind::Network, message, tries, start));
            }
            let (links, body) = sink.finish();
            return Ok(Response {
                final_target: cur,
                status: status.as_u16(),
                reason: status.canonical_reason().unwrap_or("Unknown"),
                headers,
                bytes,
                content_length,
                ttfb,
                elapsed: start.elapsed(),
                tries,
                redirects,
                links,
                body,
            });
        }
    }

    async fn send_with_retries(
        &self,
        target: &Target,
    ) -> Result<(reqwest::Response, Duration, u32), (String, u32)> {
        let s = &self.settings;
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            self.pause.wait().await;
            let sent = Instant::now();
            let result = self
                .client
                .get(target.url.clone())
                .headers(self.headers.clone())
                .send()
                .await;
            match result {
                Ok(resp) => {
                    let ttfb = sent.elapsed();
                    let code = resp.status().as_u16();
                    let asked = matches!(code, 429 | 503)
                        .then(|| client::retry_after(resp.headers()))
                        .flatten()
                        .map(|d| d.min(s.max_retry_wait));
                    if let Some(d) = asked {
                        // The server asked every client to hold off, not just this request.
                        self.pause.pause_until(Instant::now() + d);
                    }
                    if attempt < s.tries && s.retry_on.contains(&code) {
                        let pause = Duration::from_secs(u64::from(attempt)).min(s.max_retry_wait);
                        body::drain(resp).await;
                        if asked.is_some() {
                            self.pause.wait().await;
                        } else {
                            tokio::time::sleep(pause).await;
                        }
                        continue;
                    }
                    return Ok((resp, ttfb, attempt));
                }
                Err(e) => {
                    let message = client::describe(&e);
                    // Like wget, a refused connection is final: nothing listens.
                    if attempt >= s.tries || client::is_refused(&e) {
                        return Err((message, attempt));
                    }
                    let pause = Duration::from_secs(u64::from(attempt)).min(s.max_retry_wait);
                    tokio::time::sleep(pause).await;
                }
            }
        }
    }
}
