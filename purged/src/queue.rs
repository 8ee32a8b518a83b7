//! The purge queue: duplicates coalesce, the queue is bounded, sites take turns, and Purge All
//! runs alone on its site.
//!
//! - A request waits [`Limits::window`] before it runs; an identical request (same site, same
//!   operation) arriving meanwhile joins it and gets the same answer. A URL, prefix or path
//!   purge that arrives while a Purge All of its site waits joins the Purge All.
//! - At most [`Limits::jobs`] distinct jobs ([`Limits::site_jobs`] of one site) and
//!   [`Limits::waiters`] waiting answers exist; past that a request is refused at once with
//!   [`Busy`], so every accepted request gets an answer and a refused one is told.
//! - Workers take the next runnable job from the sites in turn (round robin), so a storm on one
//!   site delays another site's purge by at most one job per worker.
//! - A Purge All starts only when nothing else of its site runs, and nothing else of its site
//!   starts while it runs; at most one prefix purge (a walk reading every key) runs per site. Before it, the site's service-owned preload is stopped; after it, the
//!   preload is started again ([`crate::preload`]).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::{oneshot, Notify};

use crate::engine::{PurgeBackend, Removed};
use crate::preload::Preloads;
use crate::sites::{Sites, Target};
use crate::warm::{VariantResult, Warmer};

/// What to do.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Op {
    /// Purge one URL (every method and variant).
    Url(Target),
    /// Purge every key starting with this URL's key.
    Prefix(Target),
    /// Purge the whole site.
    All,
    /// Purge a file or level directory below the root (SpinupWP paths).
    Rel(Vec<String>),
    /// Replace the entries of a URL in place (no deletion).
    Refresh(Target),
}

/// When to re-request a purged URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum WarmMode {
    /// Not at all.
    Off,
    /// In the background, right after the purge; the answer does not wait.
    Queue,
    /// Before answering.
    Wait,
}

/// What happened to the re-warm.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum WarmNote {
    /// No re-warm (not asked, nothing purged, or a site without `url=`).
    None,
    /// Queued right after the purge.
    Queued,
    /// The re-warm queue was full: the page stays cold until a visitor comes.
    Skipped,
    /// Done before the answer: one result per variant.
    Done(Vec<VariantResult>),
}

/// The answer to one job.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Counts, or a one-line reason.
    pub result: Result<Removed, String>,
    /// The re-warm.
    pub warm: WarmNote,
    /// Set when the answer came from a Purge All this request joined.
    pub via_all: bool,
}

/// The queue is full: the request was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Busy;

/// Bounds of the queue.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Coalescing window.
    pub window: Duration,
    /// Distinct queued jobs.
    pub jobs: usize,
    /// Distinct queued jobs of one site (so one site's storm cannot fill the queue for all).
    pub site_jobs: usize,
    /// Waiting answers.
    pub waiters: usize,
    /// Jobs of one site running at once (Purge All always runs alone).
    pub per_site: usize,
    /// Queued background re-warms.
    pub warm_queue: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            window: Duration::from_millis(5),
            jobs: 20_000,
            site_jobs: 5_000,
            waiters: 100_000,
            per_site: 4,
            warm_queue: 20_000,
        }
    }
}

struct Waiting {
    txs: Vec<oneshot::Sender<Outcome>>,
    warm: WarmMode,
    since: Instant,
}

#[derive(Default)]
struct SiteQ {
    order: VecDeque<Op>,
    waiting: HashMap<Op, Waiting>,
    running: usize,
    all_running: bool,
    prefix_running: bool,
}

struct State {
    sites: Vec<SiteQ>,
    next: usize,
    jobs: usize,
    waiters: usize,
    warm: VecDeque<(usize, String)>,
    warm_set: std::collections::HashSet<(usize, String)>,
    warm_running: usize,
    closed: bool,
}

/// Counters for the `stats` request and the logs.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Stats {
    /// Requests accepted.
    pub accepted: u64,
    /// Requests that joined a queued identical job.
    pub coalesced: u64,
    /// Requests refused because the queue was full.
    pub refused: u64,
    /// Jobs run.
    pub jobs_run: u64,
    /// Re-warms done.
    pub warmed: u64,
    /// Re-warms skipped (queue full).
    pub warm_skipped: u64,
}

/// The shared queue.
pub struct Queue {
    state: Mutex<State>,
    stats: Mutex<Stats>,
    notify: Notify,
    warm_notify: Notify,
    limits: Limits,
    sites: Sites,
    backend: Arc<dyn PurgeBackend>,
    warmer: Option<Warmer>,
    preloads: Arc<Preloads>,
}

impl Queue {
    /// A queue over `sites`.
    pub fn new(
        sites: Sites,
        backend: Arc<dyn PurgeBackend>,
        warmer: Option<Warmer>,
        preloads: Arc<Preloads>,
        limits: Limits,
    ) -> Arc<Queue> {
        let n = sites.all.len();
        Arc::new(Queue {
            state: Mutex::new(State {
                sites: (0..n).map(|_| SiteQ::default()).collect(),
                next: 0,
                jobs: 0,
                waiters: 0,
                warm: VecDeque::new(),
                warm_set: Default::default(),
                warm_running: 0,
                closed: false,
            }),
            stats: Mutex::new(Stats::default()),
            notify: Notify::new(),
            warm_notify: Notify::new(),
            limits,
            sites,
            backend,
            warmer,
            preloads,
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A worker never panics while holding the lock (no caller input is unwrapped there);
        // should one ever, the state is still consistent counters and queues.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn count(&self, f: impl FnOnce(&mut Stats)) {
        f(&mut self.stats.lock().unwrap_or_else(|p| p.into_inner()));
    }

    /// Current counters.
    pub fn stats(&self) -> Stats {
        *self.stats.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The sites served.
    pub fn sites(&self) -> &Sites {
        &self.sites
    }

    /// Whether nothing is queued, running or re-warming (for the idle exit).
    pub fn idle(&self) -> bool {
        let st = self.lock();
        st.jobs == 0
            && st.warm.is_empty()
            && st.warm_running == 0
            && st.sites.iter().all(|s| s.running == 0)
    }

    /// Queues `op` on `site`; the receiver gets the answer.
    pub fn submit(
        &self,
        site: usize,
        op: Op,
        warm: WarmMode,
    ) -> Result<oneshot::Receiver<Outcome>, Busy> {
        let (tx, rx) = oneshot::channel();
        let mut st = self.lock();
        if st.closed || st.waiters >= self.limits.waiters {
            drop(st);
            self.count(|s| s.refused += 1);
            return Err(Busy);
        }
        let joins_all = !matches!(op, Op::All | Op::Refresh(_))
            && st.sites[site].waiting.contains_key(&Op::All);
        let key = if joins_all { Op::All } else { op };
        let jobs = st.jobs;
        let q = &mut st.sites[site];
        if let Some(w) = q.waiting.get_mut(&key) {
            w.txs.push(tx);
            w.warm = w.warm.max(warm);
            st.waiters += 1;
            drop(st);
            self.count(|s| {
                s.accepted += 1;
                s.coalesced += 1;
            });
            return Ok(rx);
        }
        if jobs >= self.limits.jobs || q.order.len() >= self.limits.site_jobs {
            drop(st);
            self.count(|s| s.refused += 1);
            return Err(Busy);
        }
        q.order.push_back(key.clone());
        q.waiting.insert(
            key,
            Waiting {
                txs: vec![tx],
                warm,
                since: Instant::now(),
            },
        );
        st.jobs += 1;
        st.waiters += 1;
        drop(st);
        self.count(|s| s.accepted += 1);
        self.notify.notify_one();
        Ok(rx)
    }

    /// Stops accepting; queued jobs still run.
    pub fn close(&self) {
        self.lock().closed = true;
        self.notify.notify_waiters();
        self.warm_notify.notify_waiters();
    }

    /// The next runnable job, or the instant the earliest queued one becomes runnable.
    fn take(&self) -> Result<(usize, Op, Waiting), Option<Instant>> {
        let mut st = self.lock();
        let n = st.sites.len();
        let mut earliest: Option<Instant> = None;
        let now = Instant::now();
        for i in 0..n {
            let s = (st.next + i) % n;
            let q = &st.sites[s];
            let Some(head) = q.order.front() else {
                continue;
            };
            let since = q.waiting.get(head).map_or(now, |w| w.since);
            let ready_at = since + self.limits.window;
            // A prefix purge reads every file's key: one such walk per cache at a time.
            let blocked = q.all_running
                || match head {
                    Op::All => q.running > 0,
                    Op::Prefix(_) => q.prefix_running || q.running >= self.limits.per_site,
                    _ => q.running >= self.limits.per_site,
                };
            if blocked {
                continue;
            }
            if ready_at > now {
                earliest = Some(earliest.map_or(ready_at, |e: Instant| e.min(ready_at)));
                continue;
            }
            let q = &mut st.sites[s];
            let Some(op) = q.order.pop_front() else {
                continue;
            };
            let Some(w) = q.waiting.remove(&op) else {
                continue;
            };
            q.running += 1;
            match op {
                Op::All => q.all_running = true,
                Op::Prefix(_) => q.prefix_running = true,
                _ => {}
            }
            st.jobs -= 1;
            st.waiters -= w.txs.len();
            st.next = (s + 1) % n;
            return Ok((s, op, w));
        }
        Err(earliest)
    }

    fn finish(&self, site: usize, op: &Op) {
        let mut st = self.lock();
        let q = &mut st.sites[site];
        q.running -= 1;
        match op {
            Op::All => q.all_running = false,
            Op::Prefix(_) => q.prefix_running = false,
            _ => {}
        }
        drop(st);
        self.notify.notify_waiters();
        self.notify.notify_one();
    }

    /// One purge worker: runs jobs until the queue is closed and empty.
    pub async fn worker(self: Arc<Self>) {
        loop {
            // Registered before the state is read, so a wake-up in between is not lost.
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            match self.take() {
                Ok((site, op, w)) => {
                    let outcome = self.run(site, &op, w.warm).await;
                    self.count(|s| s.jobs_run += 1);
                    for tx in w.txs {
                        let mut o = outcome.clone();
                        o.via_all = op == Op::All;
                        // A client that went away no longer needs the answer.
                        let _ = tx.send(o);
                    }
                    self.finish(site, &op);
                }
                Err(earliest) => {
                    if self.lock().closed && self.idle_jobs() {
                        return;
                    }
                    match earliest {
                        Some(t) => {
                            let _ = tokio::time::timeout_at(t.into(), notified).await;
                        }
                        None => notified.await,
                    }
                }
            }
        }
    }

    fn idle_jobs(&self) -> bool {
        self.lock().jobs == 0
    }

    async fn run(&self, site_id: usize, op: &Op, warm: WarmMode) -> Outcome {
        let site = self.sites.all[site_id].clone();
        if let Op::Refresh(t) = op {
            return self.refresh(t).await;
        }
        let restart = if *op == Op::All {
            self.preloads.stop(site_id).await
        } else {
            None
        };
        let backend = self.backend.clone();
        let (op2, site2) = (op.clone(), site.clone());
        let result = tokio::task::spawn_blocking(move || match &op2 {
            Op::Url(t) => backend.purge_url(&site2, t),
            Op::Prefix(t) => backend.purge_prefix(&site2, t),
            Op::All => backend.purge_all(&site2),
            Op::Rel(rel) => backend.purge_rel(&site2, rel),
            Op::Refresh(_) => Ok(Removed::default()),
        })
        .await
        .unwrap_or_else(|e| Err(format!("purge task failed: {e}")));
        if let Some(job) = restart {
            self.preloads.restart(site_id, job).await;
        }
        let warm = match (op, &result) {
            (Op::Url(t), Ok(r)) if r.files > 0 && warm != WarmMode::Off => {
                self.after_purge(site_id, t, warm).await
            }
            _ => WarmNote::None,
        };
        Outcome {
            result,
            warm,
            via_all: false,
        }
    }

    async fn refresh(&self, t: &Target) -> Outcome {
        let Some(w) = &self.warmer else {
            return Outcome {
                result: Err("refresh needs the re-warm client (started with --no-warm)".into()),
                warm: WarmNote::None,
                via_all: false,
            };
        };
        let res = w.warm(&t.url(), true).await;
        let ok = res.iter().all(|r| r.status.is_some() && r.error.is_none());
        Outcome {
            result: if ok {
                Ok(Removed::default())
            } else {
                Err("the refresh request failed".into())
            },
            warm: WarmNote::Done(res),
            via_all: false,
        }
    }

    async fn after_purge(&self, site: usize, t: &Target, mode: WarmMode) -> WarmNote {
        let Some(w) = &self.warmer else {
            return WarmNote::None;
        };
        if mode == WarmMode::Wait {
            self.count(|s| s.warmed += 1);
            return WarmNote::Done(w.warm(&t.url(), false).await);
        }
        let url = t.url();
        let mut st = self.lock();
        if st.warm_set.contains(&(site, url.clone())) {
            return WarmNote::Queued;
        }
        if st.warm.len() >= self.limits.warm_queue {
            drop(st);
            self.count(|s| s.warm_skipped += 1);
            return WarmNote::Skipped;
        }
        st.warm_set.insert((site, url.clone()));
        st.warm.push_back((site, url));
        drop(st);
        self.warm_notify.notify_one();
        WarmNote::Queued
    }

    /// One background re-warm worker.
    pub async fn warm_worker(self: Arc<Self>) {
        let Some(w) = self.warmer.clone() else {
            return;
        };
        loop {
            let notified = self.warm_notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let next = {
                let mut st = self.lock();
                let item = st.warm.pop_front();
                if let Some(it) = &item {
                    st.warm_set.remove(it);
                    st.warm_running += 1;
                }
                item
            };
            match next {
                Some((_, url)) => {
                    w.warm(&url, false).await;
                    self.lock().warm_running -= 1;
                    self.count(|s| s.warmed += 1);
                }
                None => {
                    if self.lock().closed && self.idle_jobs() {
                        return;
                    }
                    notified.await;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Removed;
    use crate::sites::{Site, Target};

    /// Records the order of calls; each takes `delay`.
    struct Mock {
        log: Mutex<Vec<String>>,
        delay: Duration,
        prefixes: std::sync::atomic::AtomicUsize,
        max_prefixes: std::sync::atomic::AtomicUsize,
    }

    impl Mock {
        fn note(&self, s: String) -> Result<Removed, String> {
            std::thread::sleep(self.delay);
            self.log.lock().unwrap().push(s);
            Ok(Removed {
                files: 1,
                skipped: 0,
            })
        }
    }

    impl PurgeBackend for Mock {
        fn purge_url(&self, site: &Site, t: &Target) -> Result<Removed, String> {
            self.note(format!("{} url {}", site.id, t.uri))
        }
        fn purge_prefix(&self, site: &Site, t: &Target) -> Result<Removed, String> {
            use std::sync::atomic::Ordering::SeqCst;
            let now = self.prefixes.fetch_add(1, SeqCst) + 1;
            self.max_prefixes.fetch_max(now, SeqCst);
            let r = self.note(format!("{} prefix {}", site.id, t.uri));
            self.prefixes.fetch_sub(1, SeqCst);
            r
        }
        fn purge_all(&self, site: &Site) -> Result<Removed, String> {
            self.note(format!("{} all", site.id))
        }
        fn purge_rel(&self, site: &Site, rel: &[String]) -> Result<Removed, String> {
            self.note(format!("{} rel {}", site.id, rel.join("/")))
        }
    }

    fn sites(n: usize) -> Sites {
        Sites {
            all: (0..n)
                .map(|i| Site {
                    id: i,
                    conf: safexec_conf::CacheRoot::new(format!("/c/{i}"), "www-data"),
                    levels: vec![1, 2],
                    key: Err("unused".into()),
                    bases: Vec::new(),
                })
                .collect(),
        }
    }

    fn queue(n: usize, delay_ms: u64, limits: Limits) -> (Arc<Queue>, Arc<Mock>) {
        let mock = Arc::new(Mock {
            log: Mutex::new(Vec::new()),
            delay: Duration::from_millis(delay_ms),
            prefixes: Default::default(),
            max_prefixes: Default::default(),
        });
        let preloads = Arc::new(Preloads::new(None, Vec::new(), vec![None; n]));
        let q = Queue::new(sites(n), mock.clone(), None, preloads, limits);
        (q, mock)
    }

    fn url(p: &str) -> Op {
        Op::Url(Target::parse(&format!("http://h{p}")).unwrap())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn duplicates_coalesce_and_a_full_queue_refuses() {
        let limits = Limits {
            window: Duration::from_millis(50),
            jobs: 3,
            ..Limits::default()
        };
        let (q, mock) = queue(1, 0, limits);
        let a = q.submit(0, url("/a"), WarmMode::Off).unwrap();
        let b = q.submit(0, url("/a"), WarmMode::Off).unwrap();
        q.submit(0, url("/b"), WarmMode::Off).unwrap();
        q.submit(0, url("/c"), WarmMode::Off).unwrap();
        // Three distinct jobs queued: a fourth is refused at once, a duplicate still joins.
        assert_eq!(q.submit(0, url("/d"), WarmMode::Off).err(), Some(Busy));
        let c = q.submit(0, url("/c"), WarmMode::Off).unwrap();
        tokio::spawn(q.clone().worker());
        for rx in [a, b, c] {
            assert_eq!(
                rx.await.unwrap().result,
                Ok(Removed {
                    files: 1,
                    skipped: 0
                })
            );
        }
        let s = q.stats();
        assert_eq!((s.accepted, s.coalesced, s.refused), (5, 2, 1));
        let log = mock.log.lock().unwrap().clone();
        assert_eq!(log.len(), 3, "{log:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_site_cannot_fill_the_queue() {
        let limits = Limits {
            window: Duration::from_millis(50),
            site_jobs: 2,
            ..Limits::default()
        };
        let (q, _) = queue(2, 0, limits);
        q.submit(0, url("/1"), WarmMode::Off).unwrap();
        q.submit(0, url("/2"), WarmMode::Off).unwrap();
        assert_eq!(q.submit(0, url("/3"), WarmMode::Off).err(), Some(Busy));
        assert!(
            q.submit(1, url("/1"), WarmMode::Off).is_ok(),
            "the other site still gets in"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_prefix_walk_per_site_at_a_time() {
        let limits = Limits {
            window: Duration::ZERO,
            ..Limits::default()
        };
        let (q, mock) = queue(1, 10, limits);
        let rxs: Vec<_> = (0..4)
            .map(|i| {
                let t = Target::parse(&format!("http://h/{i}/")).unwrap();
                q.submit(0, Op::Prefix(t), WarmMode::Off).unwrap()
            })
            .collect();
        for _ in 0..4 {
            tokio::spawn(q.clone().worker());
        }
        for rx in rxs {
            rx.await.unwrap();
        }
        let max = mock.max_prefixes.load(std::sync::atomic::Ordering::SeqCst);
        assert_eq!(max, 1, "prefix walks overlapped");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sites_take_turns() {
        let limits = Limits {
            window: Duration::ZERO,
            per_site: 1,
            ..Limits::default()
        };
        let (q, mock) = queue(2, 2, limits);
        let mut rxs = Vec::new();
        for i in 0..50 {
            rxs.push(q.submit(0, url(&format!("/{i}")), WarmMode::Off).unwrap());
        }
        let late = q.submit(1, url("/other"), WarmMode::Off).unwrap();
        tokio::spawn(q.clone().worker());
        late.await.unwrap();
        let pos = mock
            .log
            .lock()
            .unwrap()
            .iter()
            .position(|l| l.starts_with("1 "))
            .unwrap();
        assert!(
            pos <= 2,
            "site 1's job ran after {pos} jobs of the busy site"
        );
        for rx in rxs {
            rx.await.unwrap();
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn purge_all_runs_alone_and_absorbs_queued_purges() {
        let limits = Limits {
            window: Duration::from_millis(30),
            ..Limits::default()
        };
        let (q, mock) = queue(1, 5, limits);
        let all = q.submit(0, Op::All, WarmMode::Off).unwrap();
        let joined = q.submit(0, url("/x"), WarmMode::Off).unwrap();
        let rel = q
            .submit(0, Op::Rel(vec!["7".into()]), WarmMode::Off)
            .unwrap();
        for _ in 0..4 {
            tokio::spawn(q.clone().worker());
        }
        all.await.unwrap();
        assert!(joined.await.unwrap().via_all);
        assert!(rel.await.unwrap().via_all);
        assert_eq!(*mock.log.lock().unwrap(), vec!["0 all".to_string()]);
        // A URL purge queued after the Purge All started is its own job again.
        let after = q.submit(0, url("/y"), WarmMode::Off).unwrap();
        assert!(!after.await.unwrap().via_all);
        q.close();
        assert!(q.submit(0, url("/z"), WarmMode::Off).is_err(), "closed");
    }
}
