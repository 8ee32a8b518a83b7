//! Single GETs without redirects (verify, variants, nodes, the `Vary` check), optionally pinned
//! to one node; bodies are read and dropped.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use reqwest::header::{HeaderMap, HeaderName, HeaderValue, HOST};
use url::Url;

use super::client;
use crate::config::HttpConfig;
use crate::Error;

/// One response of a single GET without redirects.
#[derive(Clone, Debug)]
pub struct ProbeResponse {
    /// HTTP status.
    pub status: u16,
    /// Response headers (values that are not visible ASCII are left out).
    pub headers: Vec<(String, String)>,
    /// Time to the response head.
    pub ttfb: Duration,
    /// The `Retry-After` the response asked for.
    pub retry_after: Option<Duration>,
}

impl ProbeResponse {
    /// The headers as `(&str, &str)` pairs.
    pub fn pairs(&self) -> Vec<(&str, &str)> {
        self.headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }
}

/// A second client for single GETs (verify, variants, nodes), optionally pinned to one node.
#[derive(Clone, Debug)]
pub struct Probe {
    client: reqwest::Client,
    node: Option<SocketAddr>,
}

impl Probe {
    /// A client with the run's timeouts, proxy and TLS settings, connecting to `node` if given.
    pub fn new(cfg: &HttpConfig, node: Option<SocketAddr>) -> Result<Self, Error> {
        let b = client::client_builder(cfg);
        // A node connection bypasses any proxy: the point is to reach that node.
        let b = if node.is_none() {
            client::with_proxies(b, cfg)?
        } else {
            b
        };
        let client = b.build().map_err(Error::client)?;
        Ok(Probe { client, node })
    }

    /// GET `url` with `headers`; the body is read and dropped (nginx stores a page only once it
    /// has all of it), at most 64 MiB.
    pub async fn get(
        &self,
        url: &Url,
        headers: &[(String, String)],
    ) -> Result<ProbeResponse, String> {
        let mut map = HeaderMap::new();
        for (n, v) in headers {
            if let (Ok(n), Ok(v)) = (
                HeaderName::from_bytes(n.as_bytes()),
                HeaderValue::from_str(v),
            ) {
                map.insert(n, v);
            }
        }
        let mut target = url.clone();
        if let Some(node) = self.node {
            // Connect to the node but keep the public Host header (and so the cache key).
            let authority = match url.port() {
                Some(p) => format!("{}:{p}", url.host_str().unwrap_or("")),
                None => url.host_str().unwrap_or("").to_owned(),
            };
            if url.scheme() == "https" {
                return Err("--connect-to supports http:// sites (TLS would need the node to present the public name)".into());
            }
            target
                .set_ip_host(node.ip())
                .map_err(|()| "cannot address the node".to_owned())?;
            target
                .set_port(Some(node.port()))
                .map_err(|()| "cannot address the node".to_owned())?;
            if let Ok(v) = HeaderValue::from_str(&authority) {
                map.insert(HOST, v);
            }
        }
        let sent = Instant::now();
        let mut resp = self
            .client
            .get(target)
            .headers(map)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let ttfb = sent.elapsed();
        let status = resp.status().as_u16();
        let retry_after = client::retry_after(resp.headers());
        let headers = resp
            .headers()
            .iter()
            .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
            .collect();
        let mut read = 0usize;
        while let Some(chunk) = resp.chunk().await.map_err(|e| e.to_string())? {
            read += chunk.len();
            if read > 64 << 20 {
                break;
            }
        }
        Ok(ProbeResponse {
            status,
            headers,
            ttfb,
            retry_after,
        })
    }
}
