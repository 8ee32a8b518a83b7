//! The glue between the crawl loop and the warm-up modules: configuration from the command
//! line, a second HTTP client for `--verify`, `--variants` and `--connect-to` requests (single
//! GETs, redirects not followed, bodies drained and dropped), and [`WarmRun`], the per-run state
//! the crawl loop calls into.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use url::Url;

use crate::config::{Config, ConnectTo, InspectionConfig, PacingConfig, UA_DESKTOP, UA_MOBILE};
use crate::http::fetch::{Failure, Response};
use crate::http::probe::{Probe, ProbeResponse};
use crate::inspect::cache_index::{replay_scan, KeyRequest};
use crate::inspect::cache_status::CacheStatus;
use crate::inspect::connect_to::nodes_for;
use crate::inspect::session::Session;
use crate::inspect::vary::{self, variants, Variant};
use crate::pace::adaptive::{self, Controller, LoadGate, Outcome};
use crate::pace::cpu::{self, Headroom};
use crate::report::event::WarmSummary;
use crate::Error;

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
    pub async fn run(self, url: &Url, pause: &crate::http::client::PauseGate) -> Vec<Extra> {
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
    /// What to check besides warming.
    pub inspection: InspectionConfig,
    /// The pacing settings (the adaptive tuning, `--max-load`).
    pub pacing: PacingConfig,
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
    /// CPU headroom readings, for an adaptive run on a site served by this machine.
    cpu: Option<Headroom>,
    last_status: CacheStatus,
    /// A stored page whose response carried `Vary`, and the headers it names.
    vary_check: Option<(Url, Vec<String>)>,
    /// The client for the `Vary` check (and verify and variants).
    check_probe: Arc<Probe>,
}

impl WarmRun {
    /// Sets up the run: clients for extra requests, the controller.
    pub fn new(cfg: &Config) -> Result<Self, Error> {
        let w = cfg.inspection.clone();
        let session = Session::new(
            w.cache_header.as_deref(),
            w.index.clone(),
            w.index_out.clone(),
        );
        let controller = cfg
            .pacing
            .adaptive
            .clone()
            .map(|c| Controller::new(c, Instant::now()));
        let ua = cfg
            .http
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("user-agent"))
            .map_or(UA_DESKTOP, |(_, v)| v.as_str());
        let variants = match w.variants {
            // The crawl itself already requests with the configured headers (the first variant).
            Some(set) => variants(set, ua, UA_MOBILE).into_iter().skip(1).collect(),
            None => Vec::new(),
        };
        let check_probe = Arc::new(Probe::new(&cfg.http, None)?);
        let probe = (w.verify || !variants.is_empty()).then(|| check_probe.clone());
        let mut node_probes = Vec::new();
        for rule in &w.connect_to {
            node_probes.push((
                rule.clone(),
                Arc::new(Probe::new(&cfg.http, Some(rule.addr))?),
            ));
        }
        Ok(WarmRun {
            session,
            controller,
            headers: cfg.http.headers.clone(),
            variants,
            probe,
            node_probes,
            warmed: Vec::new(),
            load_checked: None,
            load_paused: false,
            local_site: None,
            cpu: None,
            last_status: CacheStatus::Absent,
            vary_check: None,
            check_probe,
            inspection: w,
            pacing: cfg.pacing.clone(),
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
        let adaptive = self.controller.is_some();
        if (self.pacing.max_load.is_some() || adaptive) && self.local_site.is_none() {
            self.local_site = Some(site_is_local(site).await);
        }
        let wanted = self.pacing.adaptive.as_ref().and_then(|a| a.cpu_reserve);
        if adaptive && self.local_site == Some(true) && wanted != Some(0.0) {
            // The site's PHP workers share these cores with its visitors.
            let cpus = std::thread::available_parallelism().map_or(1, usize::from);
            self.cpu = Some(Headroom::new(cpus));
        }
    }

    /// Feeds the controller a CPU reading when one is due (local sites only).
    fn sample_cpu(&mut self, now: Instant) {
        let (Some(h), Some(c)) = (&mut self.cpu, &mut self.controller) else {
            return;
        };
        if !h.due(now) {
            if h.running_due(now) {
                if let Some(r) = cpu::read_running() {
                    h.add_running(now, r);
                }
            }
            return;
        }
        if let Some(r) = cpu::read_proc_stat().and_then(|t| h.sample(now, t)) {
            let wanted = self.pacing.adaptive.as_ref().and_then(|a| a.cpu_reserve);
            c.on_cpu(r.idle, r.running, h.reserve(wanted));
        }
    }

    /// Whether the load gate holds new requests now (re-reads the load at most once a second).
    pub fn load_paused(&mut self, now: Instant) -> bool {
        let Some(max) = self.pacing.max_load else {
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
        let pairs = resp.header_pairs();
        let obs = self.session.observe(&pairs, None);
        self.last_status = obs.status;
        // With --variants the other values are being warmed anyway: nothing to check.
        if self.vary_check.is_none()
            && self.inspection.variants.is_none()
            && !obs.vary.is_empty()
            && resp.is_success()
            && !matches!(obs.status, CacheStatus::Absent | CacheStatus::Bypass)
        {
            // The first stored page that varies is checked once the crawl is over.
            self.vary_check = Some((resp.final_target.url.clone(), obs.vary));
        }
        let code = resp.status;
        self.sample_cpu(Instant::now());
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
        if resp.is_success() {
            let t = &resp.final_target;
            if self.inspection.verify {
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
                let [chrome, safari, ..] = vary::ACCEPT_ENCODINGS;
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
        let Some((dir, template)) = &self.inspection.replay_keys else {
            return Ok((Vec::new(), Vec::new()));
        };
        let scan = replay_scan(dir, template)
            .map_err(|e| Error::input(format!("--replay-keys {}", dir.display()), e))?;
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
    pub fn finish(&mut self) -> WarmSummary {
        let mut notes = Vec::new();
        let index_counts = if self.inspection.index.is_some() {
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
        WarmSummary {
            inspect: self.session.summary(index_counts),
            concurrency_peak: self.controller.as_ref().map(Controller::peak),
            concurrency_cap: self
                .pacing
                .adaptive
                .as_ref()
                .map_or(0, |a| a.max_concurrency),
            concurrency_cap_cached: self
                .pacing
                .adaptive
                .as_ref()
                .map_or(0, |a| a.max_concurrency_cached),
            variants: self.variants.iter().map(|v| v.label.clone()).collect(),
            notes,
        }
    }

    /// The nodes a URL must be warmed on (per `--connect-to`).
    pub fn nodes_for(&self, url: &Url) -> Vec<SocketAddr> {
        nodes_for(
            &self.inspection.connect_to,
            url.host_str().unwrap_or(""),
            url.port_or_known_default().unwrap_or(0),
        )
    }
}

/// Whether `site` is served by this machine (the host resolves to an address bound here).
async fn site_is_local(site: &Url) -> bool {
    let host = site.host_str().unwrap_or("");
    crate::http::dns::Resolver::default()
        .lookup(host)
        .await
        .is_ok_and(|ips| ips.into_iter().any(adaptive::is_local))
}
