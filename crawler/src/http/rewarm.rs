//! Re-warming single URLs after a purge: the library entry point of the purge service.
//!
//! A purge removes a page (every variant of it) from nginx's cache; the next visitor then waits
//! for PHP. [`Rewarmer::warm`] requests the page again the way browsers do, once per
//! User-Agent class (desktop, mobile) and `Accept-Encoding` value, so each cache entry a visitor
//! would hit is stored again. Redirects are not followed (a redirect is itself what nginx
//! caches for that key) and bodies are read to the end and dropped, since nginx stores a response
//! only once upstream has sent all of it.
//!
//! This API is kept stable for the purge service (`purged`): new options get defaults through
//! [`RewarmOptions::default`], and fields are only added.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::header::{
    HeaderMap, HeaderName, HeaderValue, ACCEPT, ACCEPT_ENCODING, HOST, USER_AGENT,
};
use url::Url;

use crate::config::{ACCEPT_BROWSER, ACCEPT_ENCODING_BROWSER, UA_DESKTOP, UA_MOBILE};
use crate::inspect::cache_status::KNOWN_HEADERS;

/// Which User-Agent classes are warmed (WordPress themes and caches key on `wp_is_mobile()`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Variants {
    /// A desktop browser only.
    Desktop,
    /// A mobile browser only.
    Mobile,
    /// Desktop, then mobile.
    #[default]
    Both,
}

/// One User-Agent class.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Agent {
    /// A current desktop Chrome.
    Desktop,
    /// A current mobile Chrome on Android (matches `wp_is_mobile()`).
    Mobile,
}

impl Agent {
    /// The `User-Agent` value sent.
    pub fn user_agent(self) -> &'static str {
        match self {
            Agent::Desktop => UA_DESKTOP,
            Agent::Mobile => UA_MOBILE,
        }
    }
}

impl Variants {
    fn agents(self) -> &'static [Agent] {
        match self {
            Variants::Desktop => &[Agent::Desktop],
            Variants::Mobile => &[Agent::Mobile],
            Variants::Both => &[Agent::Desktop, Agent::Mobile],
        }
    }
}

/// Where to connect for a URL's `(host, port)` instead of resolving the host; `None` resolves
/// normally. The request keeps the URL's `Host` (and TLS name), so nginx computes the public
/// cache key.
pub type ConnectTo = Arc<dyn Fn(&str, u16) -> Option<SocketAddr> + Send + Sync>;

/// Options of a [`Rewarmer`].
#[derive(Clone)]
pub struct RewarmOptions {
    /// User-Agent classes to warm.
    pub variants: Variants,
    /// `Accept-Encoding` values to warm, one request each per agent (default: the browser's
    /// `gzip, deflate, br, zstd` only).
    pub encodings: Vec<String>,
    /// Address override per `(host, port)`, e.g. the local nginx for the site's public name.
    pub connect_to: Option<ConnectTo>,
    /// Whole-request timeout (connect, head and body).
    pub timeout: Duration,
    /// Headers added to every request (replacing same-named defaults), e.g. a cache-bypass
    /// header so nginx refreshes an entry in place.
    pub extra_headers: Vec<(String, String)>,
}

impl Default for RewarmOptions {
    fn default() -> Self {
        RewarmOptions {
            variants: Variants::Both,
            encodings: vec![ACCEPT_ENCODING_BROWSER.to_owned()],
            connect_to: None,
            timeout: Duration::from_secs(30),
            extra_headers: Vec::new(),
        }
    }
}

impl fmt::Debug for RewarmOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RewarmOptions")
            .field("variants", &self.variants)
            .field("encodings", &self.encodings)
            .field("connect_to", &self.connect_to.as_ref().map(|_| "fn"))
            .field("timeout", &self.timeout)
            .field("extra_headers", &self.extra_headers)
            .finish()
    }
}

/// The outcome of one variant's request.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct VariantResult {
    /// The User-Agent class.
    pub agent: Agent,
    /// The `Accept-Encoding` value sent.
    pub accept_encoding: String,
    /// The HTTP status, or `None` when no response arrived (see `error`).
    pub status: Option<u16>,
    /// The value of the first of `X-FastCGI-Cache`, `X-Cache-Status`, `X-Proxy-Cache`,
    /// `X-Cache` present on the response (e.g. `MISS` right after a purge).
    pub cache_status: Option<String>,
    /// Time from sending the request to the end of the body (or the failure).
    #[serde(serialize_with = "millis")]
    pub elapsed: Duration,
    /// One-line reason when no complete response was received.
    pub error: Option<String>,
}

fn millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Why a [`Rewarmer`] could not be built.
#[derive(Debug)]
pub struct RewarmError(String);

impl fmt::Display for RewarmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RewarmError {}

/// Re-warms URLs; cheap to share (`&self`), keeps connections alive between calls.
pub struct Rewarmer {
    opts: RewarmOptions,
    headers: HeaderMap,
    client: reqwest::Client,
    /// HTTPS clients pinned to one address per `(host, addr)` (TLS needs the real name, so the
    /// URL cannot be rewritten to the address as for plain HTTP).
    pinned: Mutex<HashMap<(String, SocketAddr), reqwest::Client>>,
}

impl fmt::Debug for Rewarmer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rewarmer")
            .field("opts", &self.opts)
            .finish_non_exhaustive()
    }
}

impl Rewarmer {
    /// A re-warmer with `opts`; fails on an invalid extra header or an empty encoding list.
    pub fn new(opts: RewarmOptions) -> Result<Self, RewarmError> {
        if opts.encodings.is_empty() {
            return Err(RewarmError(
                "rewarm: no Accept-Encoding value to warm".into(),
            ));
        }
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT, HeaderValue::from_static(ACCEPT_BROWSER));
        for (n, v) in &opts.extra_headers {
            let name = HeaderName::from_bytes(n.as_bytes())
                .map_err(|_| RewarmError(format!("rewarm: invalid header name '{n}'")))?;
            let value = HeaderValue::from_str(v)
                .map_err(|_| RewarmError(format!("rewarm: invalid value for header '{n}'")))?;
            headers.insert(name, value);
        }
        for e in &opts.encodings {
            HeaderValue::from_str(e)
                .map_err(|_| RewarmError(format!("rewarm: invalid Accept-Encoding '{e}'")))?;
        }
        let client = Self::builder(&opts)
            .build()
            .map_err(|e| RewarmError(format!("rewarm: cannot build HTTP client: {e}")))?;
        Ok(Rewarmer {
            opts,
            headers,
            client,
            pinned: Mutex::new(HashMap::new()),
        })
    }

    fn builder(opts: &RewarmOptions) -> reqwest::ClientBuilder {
        reqwest::Client::builder()
            .dns_resolver(Arc::new(crate::http::dns::ReqwestResolver {
                resolver: crate::http::dns::Resolver::default(),
                timeout: opts.timeout,
                prefer_ipv4: false,
            }))
            .redirect(reqwest::redirect::Policy::none())
            .timeout(opts.timeout)
            .tcp_nodelay(true)
            .http1_title_case_headers()
            .pool_idle_timeout(Duration::from_secs(30))
            .no_proxy()
    }

    /// The options in use.
    pub fn options(&self) -> &RewarmOptions {
        &self.opts
    }

    /// Requests `url` once per variant (agents × encodings, desktop first), one after another so
    /// a re-warm never adds more than one request to the site's load; one result per variant.
    /// A URL that does not parse as `http(s)://` gives one failed result per variant.
    pub async fn warm(&self, url: &str) -> Vec<VariantResult> {
        let mut out = Vec::new();
        let parsed = Url::parse(url)
            .map_err(|e| format!("invalid URL '{url}': {e}"))
            .and_then(|u| match u.scheme() {
                "http" | "https" if u.host_str().is_some() => Ok(u),
                _ => Err(format!("not an http(s) URL: '{url}'")),
            });
        for &agent in self.opts.variants.agents() {
            for ae in &self.opts.encodings {
                let start = Instant::now();
                let r = match &parsed {
                    Ok(u) => self.one(u, agent, ae).await,
                    Err(e) => Err(e.clone()),
                };
                let (status, cache_status, error) = match r {
                    Ok((s, c)) => (Some(s), c, None),
                    Err(e) => (None, None, Some(e)),
                };
                out.push(VariantResult {
                    agent,
                    accept_encoding: ae.clone(),
                    status,
                    cache_status,
                    elapsed: start.elapsed(),
                    error,
                });
            }
        }
        out
    }

    async fn one(
        &self,
        url: &Url,
        agent: Agent,
        accept_encoding: &str,
    ) -> Result<(u16, Option<String>), String> {
        let mut headers = HeaderMap::new();
        headers.insert(USER_AGENT, HeaderValue::from_static(agent.user_agent()));
        if let Ok(v) = HeaderValue::from_str(accept_encoding) {
            headers.insert(ACCEPT_ENCODING, v);
        }
        // Extra headers come last so they may replace the defaults above.
        for (k, v) in &self.headers {
            headers.insert(k.clone(), v.clone());
        }
        let (client, target) = self.route(url, &mut headers)?;
        let mut resp = client
            .get(target)
            .headers(headers)
            .send()
            .await
            .map_err(|e| one_line(&e))?;
        let status = resp.status().as_u16();
        let cache_status = KNOWN_HEADERS.iter().find_map(|h| {
            resp.headers()
                .get(*h)
                .and_then(|v| v.to_str().ok())
                .map(|v| v.trim().to_owned())
        });
        while resp.chunk().await.map_err(|e| one_line(&e))?.is_some() {}
        Ok((status, cache_status))
    }

    /// The client and request URL for `url`, applying `connect_to`.
    fn route(&self, url: &Url, headers: &mut HeaderMap) -> Result<(reqwest::Client, Url), String> {
        let host = url.host_str().unwrap_or_default();
        let port = url.port_or_known_default().unwrap_or(80);
        let Some(addr) = self.opts.connect_to.as_ref().and_then(|f| f(host, port)) else {
            return Ok((self.client.clone(), url.clone()));
        };
        if url.scheme() == "http" {
            // Connect to the address, keep the public authority in Host (and so the cache key).
            let authority = match url.port() {
                Some(p) => format!("{host}:{p}"),
                None => host.to_owned(),
            };
            let mut target = url.clone();
            target
                .set_ip_host(addr.ip())
                .and_then(|()| target.set_port(Some(addr.port())))
                .map_err(|()| format!("cannot address {addr}"))?;
            let v = HeaderValue::from_str(&authority).map_err(|_| "bad host".to_owned())?;
            headers.insert(HOST, v);
            return Ok((self.client.clone(), target));
        }
        if url.port().is_some_and(|p| p != addr.port()) {
            // reqwest always connects to an explicit URL port; it cannot be redirected for TLS.
            return Err(format!(
                "cannot connect {url} to {addr}: an https URL with an explicit port must keep it"
            ));
        }
        let mut pinned = self.pinned.lock().unwrap_or_else(|p| p.into_inner());
        let key = (host.to_owned(), addr);
        if let Some(c) = pinned.get(&key) {
            return Ok((c.clone(), url.clone()));
        }
        let c = Self::builder(&self.opts)
            .resolve(host, addr)
            .build()
            .map_err(|e| format!("cannot build HTTP client: {e}"))?;
        pinned.insert(key, c.clone());
        Ok((c, url.clone()))
    }
}

/// A client error as one line, innermost cause last.
fn one_line(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s.replace(['\r', '\n'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// A loopback server answering every request with `X-FastCGI-Cache: MISS` and recording the
    /// request heads it saw.
    async fn server() -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut s, _)) = l.accept().await else {
                    return;
                };
                let log = log.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    loop {
                        let Ok(n) = s.read(&mut chunk).await else {
                            return;
                        };
                        if n == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                        while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
                            buf.drain(..end + 4);
                            let status = if head.starts_with("GET /gone") {
                                404
                            } else {
                                200
                            };
                            log.lock().unwrap().push(head);
                            let body = "<html>page</html>";
                            let resp = format!(
                                "HTTP/1.1 {status} X\r\nX-FastCGI-Cache: MISS\r\nContent-Length: {}\r\n\r\n{body}",
                                body.len()
                            );
                            if s.write_all(resp.as_bytes()).await.is_err() {
                                return;
                            }
                        }
                    }
                });
            }
        });
        (addr, seen)
    }

    #[tokio::test]
    async fn warms_each_variant_through_connect_to() {
        let (addr, seen) = server().await;
        let w = Rewarmer::new(RewarmOptions {
            connect_to: Some(Arc::new(move |h: &str, p: u16| {
                (h == "example.test" && p == 80).then_some(addr)
            })),
            extra_headers: vec![("X-Bypass".into(), "1".into())],
            ..RewarmOptions::default()
        })
        .unwrap();
        let r = w.warm("http://example.test/hello/").await;
        assert_eq!(r.len(), 2, "{r:?}");
        assert_eq!(r[0].agent, Agent::Desktop);
        assert_eq!(r[1].agent, Agent::Mobile);
        for v in &r {
            assert_eq!(v.status, Some(200), "{v:?}");
            assert_eq!(v.cache_status.as_deref(), Some("MISS"));
            assert_eq!(v.error, None);
            assert_eq!(v.accept_encoding, "gzip, deflate, br, zstd");
        }
        let seen = seen.lock().unwrap().clone();
        assert_eq!(seen.len(), 2);
        for head in &seen {
            assert!(head.starts_with("GET /hello/ HTTP/1.1\r\n"), "{head}");
            let lower = format!("{}\r\n", head.to_ascii_lowercase());
            assert!(lower.contains("\r\nhost: example.test\r\n"), "{head}");
            assert!(lower.contains("\r\nx-bypass: 1"), "{head}");
            assert!(
                lower.contains("accept-encoding: gzip, deflate, br, zstd"),
                "{head}"
            );
        }
        assert!(seen[0].contains("Windows NT") && seen[1].contains("Mobile Safari"));
        let json = serde_json::to_string(&r[0]).unwrap();
        assert!(json.contains("\"agent\":\"desktop\""), "{json}");

        let gone = w.warm("http://example.test/gone").await;
        assert!(gone.iter().all(|v| v.status == Some(404)));
    }

    #[tokio::test]
    async fn bad_input_is_a_result_not_a_panic() {
        let w = Rewarmer::new(RewarmOptions {
            variants: Variants::Desktop,
            encodings: vec!["gzip".into(), "identity".into()],
            ..RewarmOptions::default()
        })
        .unwrap();
        let r = w.warm("ftp://example.test/").await;
        assert_eq!(r.len(), 2);
        assert!(r.iter().all(|v| v.status.is_none() && v.error.is_some()));
        // Nothing listens on port 1 of loopback: a connection error, reported per variant.
        let r = w.warm("http://127.0.0.1:1/").await;
        assert!(
            r.iter().all(|v| v.status.is_none() && v.error.is_some()),
            "{r:?}"
        );
        assert!(Rewarmer::new(RewarmOptions {
            extra_headers: vec![("bad name".into(), "x".into())],
            ..RewarmOptions::default()
        })
        .is_err());
    }
}
