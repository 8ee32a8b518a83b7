//! The crawl loop.
//!
//! Seeds (robots.txt sitemaps, sitemaps, URL list, start URLs) go into a
//! bounded [`Frontier`]; up to `concurrency` fetches run at once on the
//! current task; every completed fetch goes through
//! `Crawl::on_response` / `Crawl::on_failure` — the single place where
//! results are counted, reported and links are fed back into the frontier.

use std::cell::RefCell;
use std::collections::HashSet;
use std::future::Future;
use std::io::BufRead;
use std::pin::Pin;
use std::rc::Rc;
use std::time::{Duration, Instant};

use futures_util::stream::{FuturesUnordered, StreamExt};
use futures_util::FutureExt;
use url::Url;

use crate::config::Config;
use crate::discover::frontier::{Frontier, Item, Origin, Push};
use crate::discover::norm::{self, Target};
use crate::discover::scope::HostFilter;
use crate::discover::sitemap::{self, Kind, SitemapLimits};
use crate::http::fetch::{BodyUse, FailKind, Failure, Fetcher, Response};
use crate::report::event::{FailureEvent, FailureKind, PageEvent, Summary};
use crate::report::Reporter;
use crate::Error;
use warm::{Extra, WarmRun};

mod warm;

type FetchFuture = Pin<Box<dyn Future<Output = (Item, Result<Response, Failure>, Vec<Extra>)>>>;

/// A crawl in progress. Fields are public so that the per-response hook can
/// be extended (cache-status counting, adaptive concurrency).
pub(crate) struct Crawl {
    /// The run configuration.
    pub cfg: Config,
    /// The HTTP client.
    pub fetcher: Fetcher,
    /// Queue and seen-set.
    pub frontier: Frontier,
    /// Allowed hosts (shared with in-flight redirect checks).
    pub hosts: Rc<RefCell<HostFilter>>,
    /// Output.
    pub reporter: Reporter,
    /// Running totals.
    pub summary: Summary,
    /// Requests allowed in flight; read before every scheduling round, so
    /// it can be changed from the hook.
    pub concurrency: usize,
    /// Cache-warming state: status counts, adaptive concurrency, extras, verify, index.
    pub warm: WarmRun,
    started: Instant,
    pages_started: u64,
    next_slot: Instant,
    /// Pages queued from sitemaps while seeding.
    from_sitemaps: u64,
    /// Raw hrefs (with their base's origin) already settled in the frontier.
    settled: HashSet<String, foldhash::fast::RandomState>,
    /// Final URLs of the pages fetched so far (shared with in-flight redirect checks).
    fetched: Rc<RefCell<HashSet<String, foldhash::fast::RandomState>>>,
}

/// Sitemaps of an index fetched at once.
const SITEMAPS_AT_ONCE: usize = 4;

/// Bound on [`Crawl::settled`].
const SETTLED_MAX: usize = 200_000;

/// Bound on [`Crawl::fetched`]: past it a redirect to a known page is requested again, which
/// costs one cache HIT, not memory.
const FETCHED_MAX: usize = 200_000;

/// Run a whole crawl for `cfg`.
pub async fn run(cfg: Config) -> Result<Summary, Error> {
    let mut crawl = Crawl::new(cfg)?;
    crawl.seed().await?;
    crawl.crawl().await;
    Ok(crawl.finish())
}

impl Crawl {
    /// Validate the configuration and set everything up (no network yet).
    pub fn new(cfg: Config) -> Result<Self, Error> {
        let fetcher = Fetcher::new(&cfg)?;
        let mut hosts = HostFilter {
            dialect: Some(cfg.dialect),
            domains: cfg.discovery.domains.clone(),
            ..HostFilter::default()
        };
        for u in cfg
            .discovery
            .start_urls
            .iter()
            .chain(cfg.discovery.sitemaps.iter())
        {
            let t = norm::resolve(None, u, &cfg.discovery.norm)
                .map_err(|e| Error::usage(format!("invalid URL '{u}': {e}")))?;
            hosts.start_hosts.insert(t.host().to_ascii_lowercase());
        }
        let frontier = Frontier::new(cfg.discovery.max_queue, cfg.discovery.max_per_pattern);
        let reporter = Reporter::new(cfg.output);
        let concurrency = cfg.pacing.concurrency.max(1);
        let warm = WarmRun::new(&cfg)?;
        Ok(Crawl {
            warm,
            fetcher,
            frontier,
            hosts: Rc::new(RefCell::new(hosts)),
            reporter,
            summary: Summary::default(),
            concurrency,
            started: Instant::now(),
            pages_started: 0,
            next_slot: Instant::now(),
            from_sitemaps: 0,
            settled: HashSet::default(),
            fetched: Rc::new(RefCell::new(HashSet::default())),
            cfg,
        })
    }

    fn allow_closure(&self) -> impl Fn(&Url) -> bool {
        let hosts = self.hosts.clone();
        move |u: &Url| hosts.borrow().allows(u)
    }

    /// Whether a redirect's target was already fetched by this run: with sitemaps seeded, a
    /// link that redirects (`/contact` → `/contact/`) often lands on a page already warmed, and
    /// requesting it again would only count the same cache entry twice.
    fn fetched_closure(&self) -> impl Fn(&Url) -> bool {
        let fetched = self.fetched.clone();
        move |u: &Url| fetched.borrow().contains(u.as_str())
    }

    /// Why a discovered URL is not crawled, if it is not.
    fn rejected(&self, t: &Target) -> Option<&'static str> {
        if !self.hosts.borrow().allows(&t.url) {
            return Some("off-site");
        }
        if let Some(re) = &self.cfg.discovery.reject_regex {
            if re.is_match(t.url.as_str()) {
                return Some("reject-regex");
            }
        }
        if let Some(re) = &self.cfg.discovery.reject_ext {
            let last = t.url.path().rsplit('/').next().unwrap_or("");
            if !last.is_empty() && re.is_match(last) {
                return Some("reject");
            }
        }
        None
    }

    /// Queues `target` unless it is rejected or known; returns whether the URL is settled
    /// (queued, seen before, or rejected), i.e. whether meeting it again can change nothing.
    fn enqueue(&mut self, target: Target, depth: u32, origin: Origin, filter: bool) -> bool {
        if filter && self.rejected(&target).is_some() {
            if !self.frontier.is_seen(&target) {
                self.frontier.mark_seen(&target);
                self.summary.skipped += 1;
            }
            return true;
        }
        let pushed = self.frontier.push(Item {
            target,
            depth,
            origin,
        });
        if origin == Origin::Sitemap && pushed == Push::Queued {
            self.from_sitemaps += 1;
        }
        matches!(pushed, Push::Queued | Push::Seen)
    }

    /// Fill the frontier from robots.txt, sitemaps, the URL list and the
    /// start URLs.
    pub async fn seed(&mut self) -> Result<(), Error> {
        let mut sitemaps: Vec<String> = Vec::new();
        if self.cfg.discovery.robots_sitemaps {
            let mut robots = Vec::new();
            for u in &self.cfg.discovery.start_urls {
                if let Ok(t) = norm::resolve(None, u, &self.cfg.discovery.norm) {
                    if let Ok(r) =
                        norm::resolve(Some(&t.url), "/robots.txt", &self.cfg.discovery.norm)
                    {
                        if !robots.contains(&r) {
                            robots.push(r);
                        }
                    }
                }
            }
            // Only an explicit request hears about a robots.txt without sitemaps: as the
            // default, most sites would print the same notice on every run.
            let explicit = self.cfg.discovery.robots_sitemaps_explicit;
            for r in robots {
                // A default read must not hold the crawl up for a full read timeout.
                let limit = if explicit {
                    self.cfg.http.read_timeout.max(Duration::from_secs(10))
                } else {
                    Duration::from_secs(10)
                };
                let body = tokio::time::timeout(limit, self.collect(&r, 512 * 1024))
                    .await
                    .ok()
                    .flatten();
                match body {
                    Some(body) => {
                        let text = String::from_utf8_lossy(&body);
                        let found = sitemap::robots_sitemaps(&text, 100);
                        if found.is_empty() && explicit {
                            self.reporter
                                .notice(&format!("no Sitemap: lines in {}", r.url));
                        }
                        sitemaps.extend(found);
                    }
                    None if explicit => self.reporter.notice(&format!("could not read {}", r.url)),
                    None => {}
                }
            }
        }
        // Sitemaps named in robots.txt stay within the crawl's hosts; one named on the command
        // line adds its host, as a start URL does.
        self.read_sitemaps(sitemaps, false).await;
        self.read_sitemaps(self.cfg.discovery.sitemaps.clone(), true)
            .await;

        if let Some(path) = self.cfg.discovery.url_list.clone() {
            let reader: Box<dyn BufRead> = if path == "-" {
                Box::new(std::io::BufReader::new(std::io::stdin()))
            } else {
                let f = std::fs::File::open(&path)
                    .map_err(|e| Error::input(format!("--url-list '{path}'"), e))?;
                Box::new(std::io::BufReader::new(f))
            };
            for (index, line) in reader.lines().enumerate() {
                let line = line.map_err(|e| Error::input(format!("--url-list '{path}'"), e))?;
                let line = line.trim();
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                match norm::resolve(None, line, &self.cfg.discovery.norm) {
                    Ok(t) => {
                        self.hosts
                            .borrow_mut()
                            .start_hosts
                            .insert(t.host().to_ascii_lowercase());
                        self.enqueue(t, 0, Origin::List, true);
                    }
                    // A line number and a reason, never the line: through safexec the list may
                    // be a file the job could read but its caller could not (issue 15, class 1),
                    // and the resolver's own message can quote the input.
                    Err(_) => self.reporter.notice(&format!(
                        "skipping line {} of the URL list: not a valid http or https URL",
                        index + 1
                    )),
                }
            }
        }

        if self.cfg.inspection.replay_keys.is_some() {
            let site = match self.cfg.discovery.start_urls.first() {
                Some(u) => Some(
                    norm::resolve(None, u, &self.cfg.discovery.norm)
                        .map_err(|e| Error::usage(format!("invalid URL '{u}': {e}")))?
                        .url,
                ),
                None => None,
            };
            let (urls, notes) = self.warm.replay_urls(site.as_ref())?;
            for n in notes {
                self.reporter.notice(&n);
            }
            for u in urls {
                match norm::resolve(None, &u, &self.cfg.discovery.norm) {
                    Ok(t) => {
                        self.hosts
                            .borrow_mut()
                            .start_hosts
                            .insert(t.host().to_ascii_lowercase());
                        self.enqueue(t, 0, Origin::List, false);
                    }
                    Err(e) => self
                        .reporter
                        .notice(&format!("replay: skipping '{u}': {e}")),
                }
            }
        }

        for u in self.cfg.discovery.start_urls.clone() {
            let t = norm::resolve(None, &u, &self.cfg.discovery.norm)
                .map_err(|e| Error::usage(format!("invalid URL '{u}': {e}")))?;
            // Start URLs are always fetched, as with wget.
            self.enqueue(t, 0, Origin::Start, false);
        }
        if self.from_sitemaps > 0 {
            // The sitemap names the site's pages: a known total (links may add a few more).
            self.reporter.set_total(self.frontier.len() as u64);
        }
        Ok(())
    }

    /// The body of `t` (2xx only, decoded, at most `max` bytes). The future holds its own
    /// client handle, so several can run at once.
    fn collect(&self, t: &Target, max: u64) -> impl Future<Output = Option<Vec<u8>>> + 'static {
        let allow = self.allow_closure();
        let fetcher = self.fetcher.clone();
        let t = t.clone();
        async move {
            match fetcher
                .fetch(&t, BodyUse::Collect(max), &allow, &|_| false)
                .await
            {
                Ok(r) if r.is_success() => r.body,
                _ => None,
            }
        }
    }

    async fn read_sitemaps(&mut self, roots: Vec<String>, widen: bool) {
        const MAX_SITEMAPS: usize = 1000;
        let limits = SitemapLimits::default();
        let mut queue: std::collections::VecDeque<(Target, u32)> = Default::default();
        let mut seen = HashSet::new();
        for s in roots {
            match norm::resolve(None, &s, &self.cfg.discovery.norm) {
                Ok(t) if widen => {
                    self.hosts
                        .borrow_mut()
                        .start_hosts
                        .insert(t.host().to_ascii_lowercase());
                    queue.push_back((t, 0));
                }
                Ok(t) if self.hosts.borrow().allows(&t.url) => queue.push_back((t, 0)),
                Ok(t) => self
                    .reporter
                    .notice(&format!("sitemap {} is off-site; not read", t.url)),
                Err(e) => self
                    .reporter
                    .notice(&format!("invalid sitemap URL '{s}': {e}")),
            }
        }
        let mut fetched = 0usize;
        let mut over = false;
        while !queue.is_empty() && !over {
            // The sitemaps of an index are fetched a few at a time (they are rendered by the
            // site, one round trip each) and read in queue order, so the frontier's order does
            // not depend on which answer came first.
            let mut batch = Vec::new();
            while let Some((t, level)) = queue.pop_front() {
                if !seen.insert(crate::discover::frontier::key(&t)) {
                    continue;
                }
                fetched += 1;
                if fetched > MAX_SITEMAPS {
                    over = true;
                    break;
                }
                batch.push((t, level));
                if batch.len() == SITEMAPS_AT_ONCE {
                    break;
                }
            }
            let bodies: Vec<Option<Vec<u8>>> = futures_util::future::join_all(
                batch.iter().map(|(t, _)| self.collect(t, limits.max_bytes)),
            )
            .await;
            for ((t, level), body) in batch.into_iter().zip(bodies) {
                self.read_sitemap(t, level, body, limits, &mut queue);
            }
        }
        if over {
            self.reporter
                .notice("more than 1000 sitemaps; the rest are ignored");
        }
    }

    /// Queues the pages of one fetched sitemap (and the sitemaps of an index).
    fn read_sitemap(
        &mut self,
        t: Target,
        level: u32,
        body: Option<Vec<u8>>,
        limits: SitemapLimits,
        queue: &mut std::collections::VecDeque<(Target, u32)>,
    ) {
        const MAX_NESTING: u32 = 5;
        let Some(body) = body else {
            self.reporter
                .notice(&format!("could not fetch sitemap {}", t.url));
            return;
        };
        let parsed = match sitemap::parse_bytes(&body, limits) {
            Ok(p) => p,
            Err(e) => {
                self.reporter.notice(&format!("sitemap {}: {e}", t.url));
                return;
            }
        };
        if parsed.truncated {
            self.reporter
                .notice(&format!("sitemap {} truncated at a size limit", t.url));
        }
        for loc in parsed.locs {
            let Ok(lt) = norm::resolve(Some(&t.url), &loc, &self.cfg.discovery.norm) else {
                continue;
            };
            match parsed.kind {
                Kind::Index => {
                    if level < MAX_NESTING && self.hosts.borrow().allows(&lt.url) {
                        queue.push_back((lt, level + 1));
                    }
                }
                Kind::UrlSet | Kind::Text => {
                    self.enqueue(lt, 0, Origin::Sitemap, true);
                }
            }
        }
    }

    fn schedule(&mut self, inflight: &mut FuturesUnordered<FetchFuture>) {
        while inflight.len() < self.warm.limit(self.concurrency).max(1) {
            if let Some(max) = self.cfg.discovery.max_pages {
                if self.pages_started >= max {
                    if !self.frontier.is_empty() {
                        self.summary.limit_reached = true;
                    }
                    return;
                }
            }
            let Some(item) = self.frontier.pop() else {
                return;
            };
            // Reached earlier as another page's redirect target: already warmed.
            if self.fetched.borrow().contains(item.target.url.as_str()) {
                continue;
            }
            self.pages_started += 1;
            let now = Instant::now();
            let start_at = if self.cfg.pacing.wait.is_zero() {
                self.warm.start_at(now)
            } else {
                let at = self.next_slot.max(now);
                self.next_slot = at + self.cfg.pacing.wait;
                at
            };
            let scan = self.cfg.discovery.recursive
                && self.cfg.discovery.max_depth.is_none_or(|m| item.depth < m);
            let body_use = if scan {
                BodyUse::ScanLinks
            } else {
                BodyUse::Discard
            };
            let fetcher = self.fetcher.clone();
            let allow = self.allow_closure();
            let known = self.fetched_closure();
            let first = self.pages_started == 1;
            let extras = self.warm.extras(&item.target.url);
            inflight.push(Box::pin(async move {
                // Only sleep for a real pause: the timer wheel has 1 ms
                // granularity, and a zero-length sleep would cost that per page.
                if !first && start_at > Instant::now() {
                    tokio::time::sleep_until(start_at.into()).await;
                }
                let r = fetcher.fetch(&item.target, body_use, &allow, &known).await;
                let done = match &r {
                    Ok(resp) if !extras.is_empty() => {
                        extras
                            .run(&resp.final_target.url, fetcher.pause_gate())
                            .await
                    }
                    _ => Vec::new(),
                };
                (item, r, done)
            }));
        }
    }

    /// Run until the frontier is empty or a limit is reached.
    pub async fn crawl(&mut self) {
        let mut inflight: FuturesUnordered<FetchFuture> = FuturesUnordered::new();
        let site = self.frontier_site();
        if let Some(s) = &site {
            self.warm.prepare_load_gate(s).await;
        }
        loop {
            let paused = site.is_some() && self.warm.load_paused(Instant::now());
            if paused {
                if inflight.is_empty() && !self.frontier.is_empty() {
                    // --max-load: nothing in flight and the machine is busy; look again shortly.
                    self.reporter.flush();
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            } else {
                self.schedule(&mut inflight);
            }
            // Lines are written when nothing is ready, before the loop waits (and before any
            // other task, such as the SIGTERM watcher, can run on this thread).
            let next = match inflight.next().now_or_never() {
                Some(next) => next,
                None => {
                    self.reporter.flush();
                    inflight.next().await
                }
            };
            let Some((item, result, extras)) = next else {
                break;
            };
            match result {
                Ok(resp) => {
                    for note in self.warm.on_response(&resp, &extras) {
                        self.reporter.notice(&note);
                    }
                    self.on_response(item, resp)
                }
                Err(f) => {
                    self.warm.on_failure(&f);
                    self.on_failure(item, f)
                }
            }
            if self.concurrency == 1 && !self.cfg.pacing.wait.is_zero() {
                // wget waits after each retrieval, not between starts.
                self.next_slot = self.next_slot.max(Instant::now() + self.cfg.pacing.wait);
            }
        }
        self.reporter.flush();
        if let Some(w) = self.warm.check_vary().await {
            self.reporter.notice(&w);
        }
        if self.cfg.inspection.verify {
            let parallel = self
                .warm
                .controller
                .as_ref()
                .map_or(self.concurrency, |c| c.peak());
            self.warm.verify(parallel).await;
        }
    }

    /// The first start URL, for the `--max-load` locality check.
    fn frontier_site(&self) -> Option<Url> {
        let u = self.cfg.discovery.start_urls.first()?;
        norm::resolve(None, u, &self.cfg.discovery.norm)
            .ok()
            .map(|t| t.url)
    }

    /// The per-response hook: every final HTTP response of the crawl passes
    /// through here exactly once, with its status, headers, timings
    /// (`resp.ttfb`, `resp.elapsed`) and final URL.
    pub fn on_response(&mut self, item: Item, resp: Response) {
        let status = resp.status;
        if resp.is_success() {
            self.summary.ok += 1;
            self.summary.bytes += resp.bytes;
        } else {
            self.summary.http_errors += 1;
        }
        self.frontier.mark_seen(&resp.final_target);
        {
            let mut fetched = self.fetched.borrow_mut();
            if fetched.len() < FETCHED_MAX {
                fetched.insert(resp.final_target.url.as_str().to_owned());
            }
        }
        if item.origin == Origin::Start && resp.redirects > 0 {
            // A start URL that redirects (http→https, bare→www) moves the
            // site: follow links on the host it landed on.
            self.hosts
                .borrow_mut()
                .start_hosts
                .insert(resp.final_target.host().to_ascii_lowercase());
        }
        let nlinks = resp.links.as_ref().map_or(0, |l| l.hrefs.len());
        let event = PageEvent {
            url: item.target.url.as_str(),
            final_url: resp.final_target.url.as_str(),
            status,
            reason: resp.reason,
            ok: resp.is_success(),
            bytes: resp.bytes,
            content_length: resp.content_length,
            ttfb: resp.ttfb,
            elapsed: resp.elapsed,
            tries: resp.tries,
            redirects: resp.redirects,
            depth: item.depth,
            links: nlinks,
            cache: self.warm.last_status().as_str(),
        };
        self.reporter.page(&event, self.frontier.len());
        if let Some(links) = resp.links {
            let page_url = resp.final_target.url.clone();
            let base = links
                .base
                .as_deref()
                .and_then(|b| page_url.join(b).ok())
                .unwrap_or(page_url);
            // Every page of a site repeats its menus: a link already settled is skipped before
            // the normalizer (half the crawler's CPU time on a warm cache). The key is the href
            // with the base's origin, which is all an absolute or root-relative href depends on.
            // One key buffer per page: most links are settled already, and a lookup then
            // allocates nothing.
            let mut key = base.origin().ascii_serialization();
            key.push(' ');
            let prefix = key.len();
            let utf8 = links.encoding.is_none_or(|e| e == encoding_rs::UTF_8);
            for href in &links.hrefs {
                let memo = utf8
                    && (href.starts_with("http://")
                        || href.starts_with("https://")
                        || (href.starts_with('/') && !href.starts_with("//")));
                if memo {
                    key.truncate(prefix);
                    key.push_str(href);
                    if self.settled.contains(key.as_str()) {
                        continue;
                    }
                }
                if let Ok(t) =
                    norm::resolve_in(Some(&base), href, &self.cfg.discovery.norm, links.encoding)
                {
                    if self.enqueue(t, item.depth + 1, Origin::Link, true) && memo {
                        if self.settled.len() >= SETTLED_MAX {
                            // A cache, not a record: starting over only costs time.
                            self.settled.clear();
                        }
                        self.settled.insert(key.clone());
                    }
                }
            }
        }
    }

    /// The per-failure hook: fetches that produced no final response.
    pub fn on_failure(&mut self, item: Item, f: Failure) {
        let kind = match f.kind {
            FailKind::Network => FailureKind::Network,
            FailKind::TooManyRedirects => FailureKind::TooManyRedirects,
            FailKind::BadRedirect => FailureKind::BadRedirect,
            FailKind::AlreadyFetched => {
                // Not a failure: the page behind the redirect is already warm.
                self.summary.skipped += 1;
                return;
            }
        };
        self.summary.failed += 1;
        self.reporter.failure(&FailureEvent {
            url: item.target.url.as_str(),
            at: f.at.as_str(),
            kind,
            message: &f.message,
            tries: f.tries,
            elapsed: f.elapsed,
            depth: item.depth,
        });
    }

    /// Close the run: totals, exit status, summary output.
    pub fn finish(mut self) -> Summary {
        self.summary.elapsed = self.started.elapsed();
        self.summary.dropped_full = self.frontier.dropped_full;
        self.summary.dropped_pattern = self.frontier.dropped_pattern;
        self.summary.finish();
        self.summary.warm = self.warm.finish();
        if self.summary.dropped_full > 0 {
            self.reporter.notice(&format!(
                "{} URLs dropped: the queue was full (--max-queue)",
                self.summary.dropped_full
            ));
        }
        self.reporter.summary(&self.summary);
        self.summary
    }
}
