//! The glue between the crawl loop and the warm-up modules: configuration from the command
//! line, a second HTTP client for `--verify`, `--variants` and `--connect-to` requests (single
//! GETs, redirects not followed, bodies drained and dropped), and [`WarmRun`], the per-run state
//! the crawl loop calls into.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::header::{HeaderMap, HeaderName, HeaderValue, HOST};
use url::Url;

use super::adaptive::{self, Controller, LoadGate, Outcome};
use super::cache_index::{replay_scan, CacheIndex, KeyRequest, KeyTemplate, Levels, DEFAULT_KEY};
use super::cache_status::CacheStatus;
use super::connect_to::{nodes_for, ConnectTo};
use super::session::Session;
use super::vary::{variants, Variant, VariantSet};
use crate::cli::{Config, UA_DESKTOP, UA_MOBILE};
use crate::fetch::{self, Failure, Response};
use crate::Error;

/// Warm-up settings of a run.
#[derive(Clone, Debug, Default)]
pub struct WarmConfig {
    /// `--cache-header NAME`.
    pub cache_header: Option<String>,
    /// `--verify`.
    pub verify: bool,
    /// `--variants [SET]`.
    pub variants: Option<VariantSet>,
    /// `--cache-path` (+ `--cache-key`, `--levels`).
    pub index: Option<CacheIndex>,
    /// `--index-out FILE|-`.
    pub index_out: Option<PathBuf>,
    /// `--replay-keys DIR` with the key template to split keys by.
    pub replay_keys: Option<(PathBuf, KeyTemplate)>,
    /// Adaptive concurrency, unless a fixed `--concurrency` was given.
    pub adaptive: Option<adaptive::Config>,
    /// `--max-load`.
    pub max_load: Option<f64>,
    /// `--connect-to` rules.
    pub connect_to: Vec<ConnectTo>,
}

/// The warm-up options as given on the command line.
#[derive(Clone, Debug, Default)]
pub struct WarmArgs {
    /// `--cache-header`.
    pub cache_header: Option<String>,
    /// `--verify`.
    pub verify: bool,
    /// `--variants`.
    pub variants: Option<String>,
    /// `--cache-path`.
    pub cache_path: Option<String>,
    /// `--cache-key`.
    pub cache_key: Option<String>,
    /// `--levels`.
    pub levels: Option<String>,
    /// `--index-out`.
    pub index_out: Option<String>,
    /// `--replay-keys`.
    pub replay_keys: Option<String>,
    /// `--max-concurrency`.
    pub max_concurrency: Option<usize>,
    /// A fixed `--concurrency` was given (adaptive off).
    pub fixed_concurrency: bool,
    /// `--max-rps`.
    pub max_rps: Option<f64>,
    /// `--max-load`.
    pub max_load: Option<f64>,
    /// `--connect-to`, repeatable.
    pub connect_to: Vec<String>,
}

impl WarmConfig {
    /// Validates and converts the command-line values.
    pub fn from_args(a: &WarmArgs) -> Result<Self, Error> {
        let template = KeyTemplate::parse(a.cache_key.as_deref().unwrap_or(DEFAULT_KEY))
            .map_err(Error::usage)?;
        let levels = Levels::parse(a.levels.as_deref().unwrap_or("1:2")).map_err(Error::usage)?;
        if a.cache_path.is_none() && (a.index_out.is_some() || a.levels.is_some()) {
            return Err(Error::usage("--index-out and --levels need --cache-path"));
        }
        if a.cache_key.is_some() && a.cache_path.is_none() && a.replay_keys.is_none() {
            return Err(Error::usage(
                "--cache-key needs --cache-path or --replay-keys",
            ));
        }
        let index = a.cache_path.as_ref().map(|p| CacheIndex {
            template: template.clone(),
            base: PathBuf::from(p),
            levels: levels.clone(),
            check: true,
        });
        if a.fixed_concurrency && a.max_concurrency.is_some() {
            return Err(Error::usage(
                "--concurrency fixes the requests in flight and --max-concurrency caps the adaptive number: give one",
            ));
        }
        let adaptive = if a.fixed_concurrency {
            None
        } else {
            let c = adaptive::Config {
                max_concurrency: a
                    .max_concurrency
                    .unwrap_or(adaptive::DEFAULT_MAX_CONCURRENCY),
                max_rps: a.max_rps,
                ..adaptive::Config::default()
            };
            c.validate().map_err(Error::usage)?;
            if c.max_concurrency > 1024 {
                return Err(Error::usage("--max-concurrency must be between 1 and 1024"));
            }
            Some(c)
        };
        if a.fixed_concurrency && a.max_rps.is_some() {
            return Err(Error::usage(
                "--max-rps works with adaptive concurrency; drop --concurrency",
            ));
        }
        if let Some(l) = a.max_load {
            if !(l.is_finite() && l > 0.0) {
                return Err(Error::usage("--max-load must be a positive number"));
            }
        }
        let connect_to = a
            .connect_to
            .iter()
            .map(|c| ConnectTo::parse(c))
            .collect::<Result<Vec<_>, _>>()
            .map_err(Error::usage)?;
        Ok(WarmConfig {
            cache_header: a.cache_header.clone(),
            verify: a.verify,
            variants: a
                .variants
                .as_deref()
                .map(VariantSet::parse)
                .transpose()
                .map_err(Error::usage)?,
            index,
            index_out: a.index_out.as_ref().map(PathBuf::from),
            replay_keys: a.replay_keys.as_ref().map(|d| (PathBuf::from(d), template)),
            adaptive,
            max_load: a.max_load,
            connect_to,
        })
    }

    /// Defaults of the wget dialect: adaptive concurrency unless `--wait` asks for one at a time.
    pub fn wget_default(wait_is_zero: bool) -> Self {
        WarmConfig {
            adaptive: wait_is_zero.then(adaptive::Config::default),
            ..WarmConfig::default()
        }
    }
}

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
    pub fn new(cfg: &Config, node: Option<SocketAddr>) -> Result<Self, Error> {
        let b = fetch::client_builder(cfg);
        // A node connection bypasses any proxy: the point is to reach that node.
        let b = if node.is_none() {
            fetch::with_proxies(b, cfg)?
        } else {
            b
        };
        let client = b
            .build()
            .map_err(|e| Error::internal(format!("cannot build HTTP client: {e}")))?;
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
        let retry_after = fetch::retry_after(resp.headers());
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

/// An extra request made for a page: a header variant, or the page on one `--connect-to` node.
#[derive(Clone, Debug)]
pub struct Extra {
    /// What it was: a variant label or `node ADDR`.
    pub label: String,
    /// The node, for per-node counts.
    pub node: Option<SocketAddr>,
    /// Its outcome.
    pub result: Result<ProbeResponse, String>,
}

/// A planned extra request.
#[derive(Clone, Debug)]
struct ExtraPlan {
    label: String,
    probe: Arc<Probe>,
    node: Option<SocketAddr>,
    headers: Vec<(String, String)>,
}

/// The extra requests for one page, ready to run inside the page's fetch future.
#[derive(Clone, Debug, Default)]
pub struct Extras(Vec<ExtraPlan>);

impl Extras {
    /// Runs them one after another (each counts as one request in flight) against `url`,
    /// honouring and extending the run's `Retry-After` pause.
    pub async fn run(self, url: &Url, pause: &fetch::PauseGate) -> Vec<Extra> {
        let mut out = Vec::with_capacity(self.0.len());
        for p in self.0 {
            pause.wait().await;
            let result = p.probe.get(url, &p.headers).await;
            if let Ok(r) = &result {
                if r.status == 429 || r.status == 503 {
                    if let Some(d) = r.retry_after {
                        pause.pause_until(Instant::now() + d.min(Duration::from_secs(60)));
                    }
                }
            }
            out.push(Extra {
                label: p.label,
                node: p.node,
                result,
            });
        }
        out
    }

    /// Whether there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Per-run warm-up state, owned by the crawl.
pub struct WarmRun {
    /// The settings.
    pub cfg: WarmConfig,
    /// Counts, warnings, verify results, index.
    pub session: Session,
    /// The adaptive controller, unless concurrency is fixed.
    pub controller: Option<Controller>,
    headers: Vec<(String, String)>,
    variants: Vec<Variant>,
    probe: Option<Arc<Probe>>,
    node_probes: Vec<(ConnectTo, Arc<Probe>)>,
    warmed: Vec<Url>,
    load_checked: Option<Instant>,
    load_paused: bool,
    local_site: Option<bool>,
    last_status: CacheStatus,
    /// A stored page whose response carried `Vary`, and the headers it names.
    vary_check: Option<(Url, Vec<String>)>,
    /// The client for the `Vary` check (and verify and variants).
    check_probe: Arc<Probe>,
}

/// Turns header pairs of a reqwest map into `(&str, &str)`.
pub fn header_pairs(map: &HeaderMap) -> Vec<(&str, &str)> {
    map.iter()
        .filter_map(|(k, v)| Some((k.as_str(), v.to_str().ok()?)))
        .collect()
}

impl WarmRun {
    /// Sets up the run: clients for extra requests, the controller.
    pub fn new(cfg: &Config) -> Result<Self, Error> {
        let w = cfg.warm.clone();
        let session = Session::new(
            w.cache_header.as_deref(),
            w.index.clone(),
            w.index_out.clone(),
        );
        let controller = w
            .adaptive
            .clone()
            .map(|c| Controller::new(c, Instant::now()));
        let ua = cfg
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("user-agent"))
            .map_or(UA_DESKTOP, |(_, v)| v.as_str());
        let variants = match w.variants {
            // The crawl itself already requests with the configured headers (the first variant).
            Some(set) => variants(set, ua, UA_MOBILE).into_iter().skip(1).collect(),
            None => Vec::new(),
        };
        let check_probe = Arc::new(Probe::new(cfg, None)?);
        let probe = (w.verify || !variants.is_empty()).then(|| check_probe.clone());
        let mut node_probes = Vec::new();
        for rule in &w.connect_to {
            node_probes.push((rule.clone(), Arc::new(Probe::new(cfg, Some(rule.addr))?)));
        }
        Ok(WarmRun {
            session,
            controller,
            headers: cfg.headers.clone(),
            variants,
            probe,
            node_probes,
            warmed: Vec::new(),
            load_checked: None,
            load_paused: false,
            local_site: None,
            last_status: CacheStatus::Absent,
            vary_check: None,
            check_probe,
            cfg: w,
        })
    }

    /// Requests allowed in flight now (`fixed` when concurrency is not adaptive).
    pub fn limit(&self, fixed: usize) -> usize {
        self.controller.as_ref().map_or(fixed, Controller::limit)
    }

    /// When the next request may start: `now`, or later under `--max-rps` or a `Retry-After`.
    pub fn start_at(&mut self, now: Instant) -> Instant {
        match &mut self.controller {
            Some(c) => c.reserve(now),
            None => now,
        }
    }

    /// The extra requests (header variants, `--connect-to` nodes) for the page at `url`.
    pub fn extras(&self, url: &Url) -> Extras {
        let nodes = self.nodes_for(url);
        let mut plans = Vec::new();
        if let Some(probe) = &self.probe {
            for v in &self.variants {
                let mut headers = self.headers.clone();
                for (name, value) in [
                    ("User-Agent", &v.user_agent),
                    ("Accept-Encoding", &v.accept_encoding),
                ] {
                    match headers
                        .iter_mut()
                        .find(|(k, _)| k.eq_ignore_ascii_case(name))
                    {
                        Some(slot) => slot.1 = value.clone(),
                        None => headers.push((name.to_owned(), value.clone())),
                    }
                }
                plans.push(ExtraPlan {
                    label: v.label.clone(),
                    probe: probe.clone(),
                    node: None,
                    headers,
                });
            }
        }
        for (rule, probe) in self
            .node_probes
            .iter()
            .filter(|(r, _)| nodes.contains(&r.addr))
        {
            plans.push(ExtraPlan {
                label: format!("node {}", rule.addr),
                probe: probe.clone(),
                node: Some(rule.addr),
                headers: self.headers.clone(),
            });
        }
        Extras(plans)
    }

    /// Resolves the site once so that [`WarmRun::load_paused`] knows whether the load it reads
    /// is the site's own (`--max-load` only applies to a site on this machine).
    pub async fn prepare_load_gate(&mut self, site: &Url) {
        if self.cfg.max_load.is_some() && self.local_site.is_none() {
            self.local_site = Some(site_is_local(site).await);
        }
    }

    /// Whether the load gate holds new requests now (re-reads the load at most once a second).
    pub fn load_paused(&mut self, now: Instant) -> bool {
        let Some(max) = self.cfg.max_load else {
            return false;
        };
        if self
            .load_checked
            .is_some_and(|t| now.duration_since(t) < Duration::from_secs(1))
        {
            return self.load_paused;
        }
        self.load_checked = Some(now);
        let local = self.local_site.unwrap_or(false);
        self.load_paused = local
            && LoadGate::read_load(std::path::Path::new("/proc/loadavg"))
                .is_ok_and(|l| LoadGate { max_load: max }.should_pause(l));
        self.load_paused
    }

    /// Feeds a page's final response and its extras; returns notices to print (the Vary
    /// warning once, failed extras).
    pub fn on_response(&mut self, resp: &Response, extras: &[Extra]) -> Vec<String> {
        let mut notes = Vec::new();
        let pairs = header_pairs(&resp.headers);
        let obs = self.session.observe(&pairs, None);
        self.last_status = obs.status;
        // With --variants the other values are being warmed anyway: nothing to check.
        if self.vary_check.is_none()
            && self.cfg.variants.is_none()
            && !obs.vary.is_empty()
            && resp.status.is_success()
            && !matches!(obs.status, CacheStatus::Absent | CacheStatus::Bypass)
        {
            // The first stored page that varies is checked once the crawl is over.
            self.vary_check = Some((resp.final_target.url.clone(), obs.vary));
        }
        let code = resp.status.as_u16();
        if let Some(c) = &mut self.controller {
            let now = Instant::now();
            if resp.tries > 1 || code == 429 || code == 503 {
                c.on_outcome(Outcome::Throttled { retry_after: None }, now);
            } else {
                c.on_outcome(
                    Outcome::Ok {
                        latency: resp.ttfb,
                        cached: obs.status.is_served_from_cache(),
                    },
                    now,
                );
            }
        }
        if resp.status.is_success() {
            let t = &resp.final_target;
            if self.cfg.verify {
                self.warmed.push(t.url.clone());
            }
            let hdrs: Vec<(&str, &str)> = self
                .headers
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            let req = KeyRequest {
                scheme: t.scheme(),
                method: "GET",
                host: t.host(),
                port: t.port(),
                target: &t.request_target,
                headers: &hdrs,
            };
            self.session.index_url(t.url.as_str(), &req);
        }
        for e in extras {
            match &e.result {
                Ok(p) => {
                    let o = self.session.observe(&p.pairs(), e.node);
                    if let Some(c) = &mut self.controller {
                        let out = if p.status == 429 || p.status == 503 {
                            Outcome::Throttled { retry_after: None }
                        } else {
                            Outcome::Ok {
                                latency: p.ttfb,
                                cached: o.status.is_served_from_cache(),
                            }
                        };
                        c.on_outcome(out, Instant::now());
                    }
                }
                Err(msg) => {
                    if let Some(n) = e.node {
                        self.session.node_error(n);
                    }
                    if let Some(c) = &mut self.controller {
                        c.on_outcome(Outcome::Error, Instant::now());
                    }
                    notes.push(format!("{} {}: {msg}", e.label, resp.final_target.url));
                }
            }
        }
        notes
    }

    /// After the crawl: whether the `Vary` the site sends really splits its cache. The first
    /// stored page that carried `Vary` is requested again with the crawl's own headers (it must
    /// now be served from the cache) and with another browser's values of the varied headers;
    /// only if the second misses is the `Vary` warning given. Two requests per run at most.
    pub async fn check_vary(&mut self) -> Option<String> {
        let (url, names) = self.vary_check.take()?;
        let same = self.check_probe.get(&url, &self.headers).await.ok()?;
        if !self.session.status_of(&same.pairs()).is_served_from_cache() {
            // Not stored at all (or not yet): the miss would not be Vary's doing.
            return None;
        }
        let mut other = self.headers.clone();
        let varies_on = |h: &str| names.iter().any(|n| n == h || n == "*");
        let known = varies_on("accept-encoding") || varies_on("user-agent");
        for (name, slot) in other.iter_mut() {
            if name.eq_ignore_ascii_case("accept-encoding")
                && (varies_on("accept-encoding") || !known)
            {
                // Chrome's value, or Safari's if the crawl already sends Chrome's.
                let [chrome, safari, ..] = super::vary::ACCEPT_ENCODINGS;
                *slot = if slot.as_str() == chrome {
                    safari
                } else {
                    chrome
                }
                .to_owned();
            }
            if name.eq_ignore_ascii_case("user-agent") && (varies_on("user-agent") || !known) {
                *slot = if slot.as_str() == UA_MOBILE {
                    UA_DESKTOP
                } else {
                    UA_MOBILE
                }
                .to_owned();
            }
        }
        let res = self.check_probe.get(&url, &other).await.ok()?;
        if self.session.status_of(&res.pairs()).is_served_from_cache() {
            return None;
        }
        self.session.vary_confirmed(&names)
    }

    /// The cache status of the page last passed to [`WarmRun::on_response`].
    pub fn last_status(&self) -> CacheStatus {
        self.last_status
    }

    /// Feeds a fetch that got no final response.
    pub fn on_failure(&mut self, _f: &Failure) {
        if let Some(c) = &mut self.controller {
            c.on_outcome(Outcome::Error, Instant::now());
        }
    }

    /// `--replay-keys`: the URLs to request, built from the keys in the cache directory, with
    /// the scheme, host and port of `site` where the key does not say (or says another port).
    pub fn replay_urls(&self, site: Option<&Url>) -> Result<(Vec<String>, Vec<String>), Error> {
        let Some((dir, template)) = &self.cfg.replay_keys else {
            return Ok((Vec::new(), Vec::new()));
        };
        let scan = replay_scan(dir, template)
            .map_err(|e| Error::usage(format!("--replay-keys {}: {e}", dir.display())))?;
        let mut urls = Vec::new();
        let mut notes = Vec::new();
        for t in scan.targets {
            let scheme = t
                .parts
                .scheme
                .as_deref()
                .or(site.map(Url::scheme))
                .unwrap_or("http");
            let key_host = t.parts.host.as_deref();
            let site_host = site.and_then(Url::host_str);
            let host = match (key_host, site_host) {
                (Some(k), Some(s))
                    if !k.eq_ignore_ascii_case(s) && !k.starts_with(&format!("{s}:")) =>
                {
                    notes.push(format!(
                        "replay: skipping key {:?}: host {k} is not {s}",
                        t.key
                    ));
                    continue;
                }
                (_, Some(s)) => s,
                (Some(k), None) => k,
                (None, None) => {
                    notes.push(format!(
                        "replay: skipping key {:?}: no host (give the site URL)",
                        t.key
                    ));
                    continue;
                }
            };
            let port = site
                .and_then(Url::port)
                .map(|p| format!(":{p}"))
                .unwrap_or_default();
            urls.push(format!("{scheme}://{host}{port}{}", t.target));
        }
        for (path, why) in scan.skipped {
            notes.push(format!("replay: skipping {}: {why}", path.display()));
        }
        Ok((urls, notes))
    }

    /// `--verify`: re-requests every warmed page as a visitor, `parallel` at a time.
    pub async fn verify(&mut self, parallel: usize) {
        use futures_util::stream::{self, StreamExt};
        let Some(probe) = self.probe.clone() else {
            return;
        };
        let mut urls = std::mem::take(&mut self.warmed);
        // A redirect's target may also have been crawled directly: check each page once, in order.
        urls.sort_unstable_by(|a, b| a.as_str().cmp(b.as_str()));
        urls.dedup();
        let headers = self.headers.clone();
        let results: Vec<(Url, Result<ProbeResponse, String>)> = stream::iter(urls)
            .map(|u| {
                let probe = probe.clone();
                let headers = headers.clone();
                async move {
                    let r = probe.get(&u, &headers).await;
                    (u, r)
                }
            })
            .buffered(parallel.max(1))
            .collect()
            .await;
        for (u, r) in results {
            match r {
                Ok(p) => self.session.verify_result(u.as_str(), p.status, &p.pairs()),
                Err(e) => self.session.verify_error(u.as_str(), &e),
            }
        }
    }

    /// Final summary: text lines and JSON members; checks and writes the cache index.
    pub fn finish(&mut self) -> (Vec<String>, serde_json::Value) {
        let mut notes = Vec::new();
        let index_counts = if self.cfg.index.is_some() {
            match self.session.finish_index() {
                Ok(c) => Some(c),
                Err(e) => {
                    notes.push(format!("index: cannot write: {e}"));
                    None
                }
            }
        } else {
            None
        };
        let mut lines = self.session.summary_lines(index_counts);
        if !self.variants.is_empty() {
            // The cache counts above include these extra requests.
            let labels: Vec<&str> = self.variants.iter().map(|v| v.label.as_str()).collect();
            lines.insert(
                1,
                format!(
                    "variants: every page also requested as {}",
                    labels.join("; ")
                ),
            );
        }
        if let Some(c) = &self.controller {
            lines.push(format!(
                "concurrency: adaptive, peak {} in flight (cap {})",
                c.peak(),
                self.cfg.adaptive.as_ref().map_or(0, |a| a.max_concurrency)
            ));
        }
        lines.extend(notes);
        let mut json: serde_json::Value =
            serde_json::from_str(&format!("{{{}}}", self.session.summary_json(index_counts)))
                .unwrap_or_default();
        if let (Some(c), Some(obj)) = (&self.controller, json.as_object_mut()) {
            obj.insert("concurrency_peak".into(), c.peak().into());
        }
        (lines, json)
    }

    /// The nodes a URL must be warmed on (per `--connect-to`).
    pub fn nodes_for(&self, url: &Url) -> Vec<SocketAddr> {
        nodes_for(
            &self.cfg.connect_to,
            url.host_str().unwrap_or(""),
            url.port_or_known_default().unwrap_or(0),
        )
    }
}

/// Whether `site` is served by this machine (the host resolves to an address bound here).
async fn site_is_local(site: &Url) -> bool {
    let host = site.host_str().unwrap_or("");
    crate::dns::Resolver::default()
        .lookup(host)
        .await
        .is_ok_and(|ips| ips.into_iter().any(adaptive::is_local))
}
