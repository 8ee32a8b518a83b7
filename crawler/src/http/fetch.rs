//! HTTP fetching: one GET per URL with manual redirects (each hop's target
//! goes through the normalizer), retries on selected statuses honouring
//! `Retry-After`, a per-request bandwidth cap, and bounded, streaming
//! handling of the body (discarded, scanned for links, or collected for a
//! sitemap). Content-Encoding is decoded only when the body is read for
//! links or sitemaps; otherwise the compressed bytes are just counted.
//!
//! The client is `reqwest` (hyper 1 + rustls with the `ring` provider):
//! it gives connection pooling, HTTP proxies with CONNECT, and connect and
//! read timeouts, and it puts `url::Url`'s path and query on the request
//! line verbatim, so the bytes chosen by [`crate::discover::norm`] are the bytes sent.
//! Redirects and decompression are done here, not by reqwest, so every hop
//! is normalized and host-checked and `Accept-Encoding` is never rewritten.

use std::io::{self, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::header::{
    HeaderMap, HeaderName, HeaderValue, CONTENT_ENCODING, CONTENT_TYPE, LOCATION, RETRY_AFTER,
};
use reqwest::StatusCode;
use url::Url;

use crate::config::{Config, HttpConfig};
use crate::discover::links::{LinkLimits, LinkScanner, PageLinks};
use crate::discover::norm::{self, NormOptions, Target};
use crate::Error;

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
    /// Final status.
    pub status: StatusCode,
    /// Final response headers.
    pub headers: HeaderMap,
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

impl Fetcher {
    /// Build the client from the run configuration.
    pub fn new(cfg: &Config) -> Result<Self, Error> {
        let b = client_builder(&cfg.http)
            // Adaptive concurrency may run up to its cap: keep that many connections alive.
            .pool_max_idle_per_host(
                cfg.pacing.concurrency.max(
                    cfg.pacing
                        .adaptive
                        .as_ref()
                        .map_or(1, |a| a.max_concurrency.max(a.max_concurrency_cached)),
                ),
            );
        let client = with_proxies(b, &cfg.http)?.build().map_err(Error::client)?;
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
                    drain(resp).await;
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
                    let results = scanner.results();
                    Sink::Links(
                        Box::new(Decoder::new(
                            &encoding,
                            Capped::new(scanner, self.settings.max_scan_bytes),
                        )),
                        results,
                    )
                }
                BodyUse::Collect(max) if status.is_success() => {
                    let buf = SharedBuf::default();
                    Sink::Collect(
                        Box::new(Decoder::new(&encoding, Capped::new(buf.clone(), max))),
                        buf,
                    )
                }
                _ => Sink::Discard,
            };
            let (bytes, sink, err) = self.read_body(resp, sink).await;
            if let Some(message) = err {
                return Err(Failure::new(&cur, FailKind::Network, message, tries, start));
            }
            let (links, body) = match sink {
                Sink::Discard => (None, None),
                Sink::Links(d, results) => (
                    Some(match (*d).finish() {
                        Some(c) => c.inner.finish(),
                        None => results.take_truncated(),
                    }),
                    None,
                ),
                Sink::Collect(d, buf) => {
                    drop((*d).finish());
                    (None, Some(buf.0.take()))
                }
            };
            return Ok(Response {
                final_target: cur,
                status,
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
                        .then(|| retry_after(resp.headers()))
                        .flatten()
                        .map(|d| d.min(s.max_retry_wait));
                    if let Some(d) = asked {
                        // The server asked every client to hold off, not just this request.
                        self.pause.pause_until(Instant::now() + d);
                    }
                    if attempt < s.tries && s.retry_on.contains(&code) {
                        let pause = Duration::from_secs(u64::from(attempt)).min(s.max_retry_wait);
                        drain(resp).await;
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
                    let message = describe(&e);
                    // Like wget, a refused connection is final: nothing listens.
                    if attempt >= s.tries || is_refused(&e) {
                        return Err((message, attempt));
                    }
                    let pause = Duration::from_secs(u64::from(attempt)).min(s.max_retry_wait);
                    tokio::time::sleep(pause).await;
                }
            }
        }
    }

    async fn read_body(
        &self,
        mut resp: reqwest::Response,
        mut sink: Sink,
    ) -> (u64, Sink, Option<String>) {
        let started = Instant::now();
        let mut bytes = 0u64;
        loop {
            match resp.chunk().await {
                Ok(Some(chunk)) => {
                    bytes += chunk.len() as u64;
                    sink.write(&chunk);
                    if let Some(rate) = self.settings.limit_rate.filter(|r| *r > 0) {
                        let due = Duration::from_secs_f64(bytes as f64 / rate as f64);
                        let spent = started.elapsed();
                        if due > spent {
                            tokio::time::sleep(due - spent).await;
                        }
                    }
                }
                Ok(None) => return (bytes, sink, None),
                Err(e) => return (bytes, sink, Some(describe(&e))),
            }
        }
    }
}

/// Read and drop a body we do not need, so the connection can be reused;
/// give up (and let the connection close) after 1 MiB.
async fn drain(mut resp: reqwest::Response) {
    let mut n = 0usize;
    while let Ok(Some(c)) = resp.chunk().await {
        n += c.len();
        if n > 1 << 20 {
            break;
        }
    }
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

fn is_refused(e: &reqwest::Error) -> bool {
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
fn describe(e: &reqwest::Error) -> String {
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

/// A writer that accepts at most `left` bytes, then fails (so decoders stop
/// early on decompression bombs).
pub struct Capped<W> {
    inner: W,
    left: u64,
}

impl<W> Capped<W> {
    fn new(inner: W, max: u64) -> Self {
        Capped { inner, left: max }
    }
}

impl<W: Write> Write for Capped<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.left == 0 {
            return Err(io::Error::other("size limit reached"));
        }
        let n = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.write(&buf[..n])?;
        self.left -= n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A push-style Content-Encoding decoder.
pub enum Decoder<W: Write> {
    /// No encoding.
    Identity(W),
    /// gzip (also x-gzip).
    Gzip(flate2::write::MultiGzDecoder<W>),
    /// deflate (zlib-wrapped, as HTTP specifies).
    Deflate(flate2::write::ZlibDecoder<W>),
    /// deflate without the zlib wrapper (sent by some servers; browsers accept it).
    RawDeflate(flate2::write::DeflateDecoder<W>),
    /// deflate before its first byte: zlib-wrapped or raw is decided then.
    DeflatePending(W),
    /// Brotli.
    Brotli(Box<brotli::DecompressorWriter<W>>),
    /// Zstandard.
    Zstd(zstd::stream::write::Decoder<'static, W>),
    /// Decoding failed; the rest is ignored.
    Failed,
}

impl<W: Write> Decoder<W> {
    /// A decoder for the `Content-Encoding` value (lower-case).
    pub fn new(encoding: &str, inner: W) -> Self {
        match encoding {
            "gzip" | "x-gzip" => Decoder::Gzip(flate2::write::MultiGzDecoder::new(inner)),
            "deflate" => Decoder::DeflatePending(inner),
            "br" => Decoder::Brotli(Box::new(brotli::DecompressorWriter::new(inner, 8192))),
            "zstd" => match zstd::stream::write::Decoder::new(inner) {
                Ok(d) => Decoder::Zstd(d),
                Err(_) => Decoder::Failed,
            },
            // identity, empty, or an encoding we cannot decode: scanning
            // garbage is harmless (it finds nothing).
            _ => Decoder::Identity(inner),
        }
    }

    /// Push encoded bytes; on any error the decoder turns into `Failed`.
    pub fn write(&mut self, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        if matches!(self, Decoder::DeflatePending(_)) {
            let Decoder::DeflatePending(w) = std::mem::replace(self, Decoder::Failed) else {
                return;
            };
            // A zlib stream starts with CM=8 and a header checksum; anything
            // else is raw deflate.
            let zlib = data[0] & 0x0f == 8
                && data
                    .get(1)
                    .is_none_or(|f| (u16::from(data[0]) * 256 + u16::from(*f)) % 31 == 0);
            *self = if zlib {
                Decoder::Deflate(flate2::write::ZlibDecoder::new(w))
            } else {
                Decoder::RawDeflate(flate2::write::DeflateDecoder::new(w))
            };
        }
        let r = match self {
            Decoder::Identity(w) => w.write_all(data),
            Decoder::Gzip(d) => d.write_all(data),
            Decoder::Deflate(d) => d.write_all(data),
            Decoder::RawDeflate(d) => d.write_all(data),
            Decoder::DeflatePending(_) => Ok(()),
            Decoder::Brotli(d) => d.write_all(data),
            Decoder::Zstd(d) => d.write_all(data),
            Decoder::Failed => return,
        };
        if r.is_err() {
            *self = Decoder::Failed;
        }
    }

    /// End of input: the inner writer, unless decoding failed.
    pub fn finish(self) -> Option<W> {
        match self {
            Decoder::Identity(w) => Some(w),
            Decoder::Gzip(d) => d.finish().ok(),
            Decoder::Deflate(d) => d.finish().ok(),
            Decoder::RawDeflate(d) => d.finish().ok(),
            Decoder::DeflatePending(w) => Some(w),
            Decoder::Brotli(d) => d.into_inner().ok(),
            Decoder::Zstd(mut d) => {
                d.flush().ok()?;
                Some(d.into_inner())
            }
            Decoder::Failed => None,
        }
    }
}

/// A growable buffer that stays reachable after its decoder is dropped.
#[derive(Clone, Default)]
struct SharedBuf(std::rc::Rc<std::cell::RefCell<Vec<u8>>>);

impl Write for SharedBuf {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

enum Sink {
    Discard,
    Links(
        Box<Decoder<Capped<LinkScanner>>>,
        crate::discover::links::LinkResults,
    ),
    Collect(Box<Decoder<Capped<SharedBuf>>>, SharedBuf),
}

impl Sink {
    fn write(&mut self, data: &[u8]) {
        match self {
            Sink::Discard => {}
            Sink::Links(d, _) => d.write(data),
            Sink::Collect(d, _) => d.write(data),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn decoders_roundtrip_and_cap() {
        let data = b"<a href=\"/x/\">x</a>".repeat(100);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&data).unwrap();
        let gz = gz.finish().unwrap();
        let mut d = Decoder::new("gzip", Capped::new(Vec::new(), 1 << 20));
        d.write(&gz);
        assert_eq!(d.finish().unwrap().inner, data);
        let mut br = Vec::new();
        {
            let mut w = brotli::CompressorWriter::new(&mut br, 4096, 5, 22);
            w.write_all(&data).unwrap();
        }
        let mut d = Decoder::new("br", Capped::new(Vec::new(), 1 << 20));
        d.write(&br);
        assert_eq!(d.finish().unwrap().inner, data);
        let zs = zstd::encode_all(&data[..], 3).unwrap();
        let mut d = Decoder::new("zstd", Capped::new(Vec::new(), 1 << 20));
        d.write(&zs);
        assert_eq!(d.finish().unwrap().inner, data);
        for raw in [false, true] {
            let packed = if raw {
                let mut e =
                    flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
                e.write_all(&data).unwrap();
                e.finish().unwrap()
            } else {
                let mut e =
                    flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
                e.write_all(&data).unwrap();
                e.finish().unwrap()
            };
            let mut d = Decoder::new("deflate", Capped::new(Vec::new(), 1 << 20));
            for c in packed.chunks(7) {
                d.write(c);
            }
            assert_eq!(d.finish().unwrap().inner, data, "raw={raw}");
        }
        let mut d = Decoder::new("gzip", Capped::new(Vec::new(), 10));
        d.write(&gz);
        assert!(d.finish().is_none());
        let mut d = Decoder::new("gzip", Capped::new(Vec::new(), 1 << 20));
        d.write(b"not gzip at all");
        assert!(d.finish().is_none());
    }
}
