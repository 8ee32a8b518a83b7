//! Adaptive concurrency: as fast as the server allows, never at its visitors' expense.
//!
//! A pure state machine; the crawl loop passes in [`Instant`]s and response outcomes.
//!
//! * It starts with one request in flight and measures a **baseline** latency (the median of
//!   the first round). Cached (HIT) and uncached responses are tracked separately: a HIT costs
//!   the server a file read, a MISS a PHP render, and mixing them would make every MISS look
//!   like congestion once a few HITs set the baseline.
//! * After every **round** (as many completions as the current limit, at least
//!   [`Config::min_round`]) it compares the round's median latency with the baseline: within
//!   [`Config::latency_factor`] × baseline it adds one request in flight (additive increase);
//!   above it, it removes a quarter (latency growth means requests queue for PHP workers,
//!   i.e. visitors queue too).
//! * HTTP 429, 503 and transport errors halve the limit at once, at most once per round of
//!   requests that were already in flight (as TCP does), and a `Retry-After` pauses new requests.
//! * Hard caps: [`Config::max_concurrency`] and [`Config::max_rps`] (a token bucket with a burst
//!   of one, so requests are evenly spaced).
//! * CPU headroom (`pace::cpu`), when the site runs on this machine: the limit grows only while
//!   at least one core (half the machine below two cores) stands idle for visitors, and drops
//!   by one per quarter second while less than half of that is idle. A CPU-bound site fills the
//!   cores long before its latency grows.
//! * [`LoadGate`]: while the 1-minute load average is above `--max-load` and the site is on this
//!   machine, no new request starts.
//!
//! While most recent responses are cache HITs the cap is [`Config::max_concurrency_cached`]
//! (default 16): a HIT costs nginx a file read and keeps no PHP worker from a visitor.
//!
//! Default cap: [`crate::config::DEFAULT_MAX_CONCURRENCY`] = 6, the number of parallel connections a browser
//! opens to one host over HTTP/1.1. Any site already serves that much parallelism to a single
//! visitor loading a page, and the cap is only reached while latency shows no queueing.

use std::collections::VecDeque;
use std::fs;
use std::io;
use std::net::{IpAddr, UdpSocket};
use std::path::Path;
use std::time::{Duration, Instant};

use crate::config::Pacing as Config;
#[cfg(test)]
use crate::config::{DEFAULT_MAX_CONCURRENCY, DEFAULT_MAX_CONCURRENCY_CACHED};

/// How one request ended, as the controller sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A response (any status but 429/503); `latency` is the time to the response headers.
    Ok {
        /// Time from sending to the response head.
        latency: Duration,
        /// Whether the cache served it (HIT and friends): tracked against its own baseline.
        cached: bool,
    },
    /// HTTP 429 or 503, with `Retry-After` if given.
    Throttled {
        /// The server's requested pause.
        retry_after: Option<Duration>,
    },
    /// Connect, timeout or read error.
    Error,
}

/// Latency history of one kind of response (cached or not).
#[derive(Clone, Debug, Default)]
struct Track {
    baseline: Option<Duration>,
    recent: VecDeque<Duration>,
}

/// Why the limit last changed (for reports and tests).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// Latency stayed within the bound: one more in flight.
    Increase,
    /// Latency grew: a quarter fewer.
    LatencyBackoff,
    /// 429/503/error: half as many.
    ThrottleBackoff,
    /// The site's machine had less than half its reserve of idle cores: one fewer.
    CpuBackoff,
}

/// The adaptive concurrency controller.
#[derive(Clone, Debug)]
pub struct Controller {
    cfg: Config,
    limit: usize,
    tracks: [Track; 2],
    /// Completions since the limit last changed (one round = max(limit, min_round)).
    since_change: usize,
    /// Completions still to come from requests sent before the last backoff; a further
    /// congestion signal from them is the same congestion and does not cut again.
    recovering: usize,
    bucket: TokenBucket,
    paused_until: Option<Instant>,
    peak: usize,
    history: Vec<(usize, Change)>,
    /// Idle cores and the reserve to keep, from the last CPU reading of a local site.
    cpu: Option<(f64, f64)>,
    /// Runnable tasks seen at each limit (smoothed) and how many readings: what one more
    /// request in flight costs the CPU is the difference between neighbouring limits.
    running_at: Vec<(f64, u32)>,
    /// Idle cores seen at each limit (smoothed), the second estimate of that cost (exact on a
    /// machine with idle time left, blind on a saturated one).
    idle_at: Vec<f64>,
    /// The last measured CPU cost of one more request in flight, in cores, and the readings
    /// since: after [`CPU_COST_READINGS`] it is measured again (the load may have changed).
    cpu_cost: Option<f64>,
    cpu_cost_age: u32,
    /// Whether each of the last [`RENDER_WINDOW`] responses needed a render (not from the
    /// cache): the CPU reserve only binds while most of them did.
    renders: VecDeque<bool>,
}

/// Cores one more request in flight must cost for the CPU reserve to bind: below it the
/// site mostly waits (I/O, a sleeping render), and a busy CPU is someone else's load.
pub const CPU_BOUND_COST: f64 = 0.4;

/// Readings (of [`super::cpu::SAMPLE_EVERY`]) a measured CPU cost stays valid: 30 s (each new
/// measurement means half a second with one more render in flight).
const CPU_COST_READINGS: u32 = 120;

/// Responses over which the share of rendered (uncached) pages is taken.
const RENDER_WINDOW: usize = 16;

impl Controller {
    /// A controller at one request in flight.
    pub fn new(cfg: Config, now: Instant) -> Self {
        let bucket = TokenBucket::new(cfg.max_rps, now);
        Controller {
            cfg,
            limit: 1,
            tracks: Default::default(),
            since_change: 0,
            recovering: 0,
            bucket,
            paused_until: None,
            cpu: None,
            running_at: Vec::new(),
            idle_at: Vec::new(),
            cpu_cost: None,
            cpu_cost_age: 0,
            renders: VecDeque::new(),
            peak: 1,
            history: Vec::new(),
        }
    }

    /// Requests allowed in flight now.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// The highest limit reached in this run.
    pub fn peak(&self) -> usize {
        self.peak
    }

    /// Every limit change so far: the new limit and why.
    #[cfg(test)]
    pub fn history(&self) -> &[(usize, Change)] {
        &self.history
    }

    /// The baseline latency of cached (`true`) or uncached responses, once measured.
    #[cfg(test)]
    pub fn baseline(&self, cached: bool) -> Option<Duration> {
        self.tracks[usize::from(cached)].baseline
    }

    /// Reserves the next start time: `now`, or later under the rate cap or a `Retry-After`
    /// pause. It never refuses; the caller sleeps until then.
    pub fn reserve(&mut self, now: Instant) -> Instant {
        let at = self.bucket.reserve(now);
        match self.paused_until {
            Some(p) if p > at => p,
            _ => at,
        }
    }

    /// Feeds one finished request.
    pub fn on_outcome(&mut self, outcome: Outcome, now: Instant) {
        self.recovering = self.recovering.saturating_sub(1);
        match outcome {
            Outcome::Throttled { retry_after } => {
                if let Some(d) = retry_after {
                    let until = now + d;
                    self.paused_until = Some(self.paused_until.map_or(until, |p| p.max(until)));
                }
                self.backoff(self.limit / 2, Change::ThrottleBackoff);
            }
            Outcome::Error => self.backoff(self.limit / 2, Change::ThrottleBackoff),
            Outcome::Ok { latency, cached } => {
                self.renders.push_back(!cached);
                if self.renders.len() > RENDER_WINDOW {
                    self.renders.pop_front();
                }
                // Back to rendering after a run of HITs: at once under the lower cap.
                self.limit = self.limit.min(self.cap());
                self.on_latency(latency, cached)
            }
        }
    }

    /// Whether the CPU reserve applies: most recent responses were rendered by the site (a
    /// HIT costs a file read, and visitors are not waiting behind PHP workers busy with ours).
    fn cpu_bound_work(&self) -> bool {
        let rendered = self.renders.iter().filter(|r| **r).count();
        rendered * 2 >= self.renders.len()
    }

    /// The cap for the current mix: `max_concurrency` while the site renders, the higher
    /// `max_concurrency_cached` while it mostly serves HITs.
    fn cap(&self) -> usize {
        if self.cpu_bound_work() {
            self.cfg.max_concurrency
        } else {
            self.cfg
                .max_concurrency_cached
                .max(self.cfg.max_concurrency)
        }
    }

    fn on_latency(&mut self, latency: Duration, cached: bool) {
        let round = self.limit.max(self.cfg.min_round);
        let track = &mut self.tracks[usize::from(cached)];
        track.recent.push_back(latency);
        while track.recent.len() > round {
            track.recent.pop_front();
        }
        self.since_change += 1;
        if track.recent.len() < round || self.since_change < round {
            return;
        }
        let median = median(&track.recent);
        let baseline = match track.baseline {
            None => {
                track.baseline = Some(median);
                median
            }
            // At one in flight nothing of ours queues, so that median is the unloaded latency
            // now (it may legitimately drift up); above one the baseline only ever falls.
            Some(b) if self.limit == 1 => {
                track.baseline = Some(median);
                b.max(median)
            }
            Some(b) => {
                let b = b.min(median);
                track.baseline = Some(b);
                b
            }
        };
        let grew = median.as_secs_f64() > baseline.as_secs_f64() * self.cfg.latency_factor
            && median > baseline + self.cfg.min_growth;
        if grew {
            let cut = (self.limit / 4).max(1);
            self.backoff(self.limit.saturating_sub(cut), Change::LatencyBackoff);
        } else if self.limit < self.cap() && self.cpu_allows_growth() {
            self.limit += 1;
            self.peak = self.peak.max(self.limit);
            self.since_change = 0;
            self.history.push((self.limit, Change::Increase));
        } else {
            self.since_change = 0;
        }
    }

    /// Feeds a CPU reading of the machine the site runs on: `idle` cores over the last fraction
    /// of a second, of which `reserve` are to be left to visitors.
    ///
    /// Other programs may keep the CPU busy too, so the controller measures what its own
    /// requests cost: the runnable tasks (`running`) at this limit against the limit below,
    /// which unlike idle time still differ on a saturated machine. Only when one more
    /// request in flight costs at least [`CPU_BOUND_COST`] cores (the site burns CPU per render)
    /// and most recent responses were renders does the reserve bind: the limit then grows only
    /// while the reserve would survive one more request, and drops by one per reading while
    /// less than half the reserve is idle.
    pub fn on_cpu(&mut self, idle: f64, running: f64, reserve: f64) {
        self.cpu = Some((idle, reserve));
        let l = self.limit;
        if self.running_at.len() <= l {
            self.running_at.resize(l + 1, (0.0, 0));
            self.idle_at.resize(l + 1, 0.0);
        }
        let first = self.running_at[l].1 == 0;
        let i = &mut self.idle_at[l];
        *i = if first { idle } else { (*i + idle) / 2.0 };
        let (v, n) = &mut self.running_at[l];
        *v = if *n == 0 {
            running
        } else {
            (*v + running) / 2.0
        };
        *n += 1;
        self.cpu_cost_age += 1;
        if l >= 2 && self.running_at[l].1 >= 2 && self.running_at[l - 1].1 >= 1 {
            let by_queue = self.running_at[l].0 - self.running_at[l - 1].0;
            let by_idle = self.idle_at[l - 1] - self.idle_at[l];
            self.cpu_cost = Some(by_queue.max(by_idle));
            self.cpu_cost_age = 0;
        }
        if self.cpu_cost_age > CPU_COST_READINGS {
            // Probe again: one step up, measured, kept or given back.
            self.cpu_cost = None;
            self.cpu_cost_age = 0;
        }
        let costly = self.cpu_cost.is_some_and(|c| c >= CPU_BOUND_COST);
        if costly && idle < reserve / 2.0 && l > 1 && self.cpu_bound_work() {
            self.limit -= 1;
            self.since_change = 0;
            for t in &mut self.tracks {
                t.recent.clear();
            }
            self.history.push((self.limit, Change::CpuBackoff));
        }
    }

    /// Whether the CPU reading lets the limit grow (see [`Controller::on_cpu`]).
    fn cpu_allows_growth(&self) -> bool {
        let Some((idle, reserve)) = self.cpu else {
            return true;
        };
        if !self.cpu_bound_work() {
            return true;
        }
        match self.cpu_cost {
            Some(cost) if cost >= CPU_BOUND_COST => idle >= reserve + cost,
            Some(_) => true,
            // Not measured yet: with a core to spare beyond the reserve, one more request
            // cannot take the reserve; otherwise take two readings at this limit first.
            None => {
                idle >= reserve + 1.0
                    || self
                        .running_at
                        .get(self.limit)
                        .is_some_and(|(_, n)| *n >= 2)
            }
        }
    }

    fn backoff(&mut self, to: usize, why: Change) {
        if self.recovering > 0 {
            return;
        }
        let to = to.max(1);
        self.recovering = self.limit;
        self.since_change = 0;
        for t in &mut self.tracks {
            t.recent.clear();
        }
        if to != self.limit {
            self.limit = to;
            self.history.push((to, why));
        }
    }
}

fn median(samples: &VecDeque<Duration>) -> Duration {
    let mut v: Vec<Duration> = samples.iter().copied().collect();
    v.sort_unstable();
    v[v.len() / 2]
}

/// A token bucket with a burst of one: at most `rate` starts per second, evenly spaced.
#[derive(Clone, Debug)]
pub struct TokenBucket {
    interval: Option<Duration>,
    next: Instant,
}

impl TokenBucket {
    /// A bucket for `rate` per second, or unlimited.
    pub fn new(rate: Option<f64>, now: Instant) -> Self {
        TokenBucket {
            interval: rate.map(|r| Duration::from_secs_f64(1.0 / r)),
            next: now,
        }
    }

    /// Reserves the next evenly spaced slot at or after `now`.
    pub fn reserve(&mut self, now: Instant) -> Instant {
        let Some(interval) = self.interval else {
            return now;
        };
        let at = self.next.max(now);
        self.next = at + interval;
        at
    }
}

/// `--max-load`: hold new requests while the 1-minute load average is above a ceiling.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LoadGate {
    /// The ceiling.
    pub max_load: f64,
}

impl LoadGate {
    /// Whether to hold new requests at this 1-minute load.
    pub fn should_pause(&self, load1: f64) -> bool {
        load1 > self.max_load
    }

    /// Reads the 1-minute load average from `/proc/loadavg` (or another file of that format).
    pub fn read_load(path: &Path) -> io::Result<f64> {
        parse_loadavg(&fs::read_to_string(path)?).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                "unexpected /proc/loadavg format",
            )
        })
    }
}

/// The first field of `/proc/loadavg`.
pub fn parse_loadavg(s: &str) -> Option<f64> {
    s.split_whitespace()
        .next()?
        .parse()
        .ok()
        .filter(|v: &f64| v.is_finite() && *v >= 0.0)
}

/// Whether `ip` belongs to this machine: loopback, or an address a socket can bind to (which the
/// kernel only allows for local addresses). The load average only says something about the site
/// when the site runs here.
pub fn is_local(ip: IpAddr) -> bool {
    ip.is_loopback() || UdpSocket::bind((ip, 0)).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn ok(latency: u64) -> Outcome {
        Outcome::Ok {
            latency: ms(latency),
            cached: false,
        }
    }

    /// Runs `n` completions with a latency model `lat(limit)`, returns the limit after each.
    fn drive(c: &mut Controller, n: usize, lat: impl Fn(usize) -> u64) -> Vec<usize> {
        let t = Instant::now();
        (0..n)
            .map(|_| {
                c.on_outcome(ok(lat(c.limit())), t);
                c.limit()
            })
            .collect()
    }

    #[test]
    fn starts_at_one_and_climbs_to_the_cap_on_flat_latency() {
        let mut c = Controller::new(Config::default(), Instant::now());
        assert_eq!(c.limit(), 1);
        let limits = drive(&mut c, 200, |_| 20);
        assert_eq!(*limits.last().unwrap(), DEFAULT_MAX_CONCURRENCY);
        assert!(limits.iter().all(|l| *l <= DEFAULT_MAX_CONCURRENCY));
        assert_eq!(c.baseline(false), Some(ms(20)));
        // 1→2 needs a full first round (4 completions) before the baseline exists.
        assert_eq!(&limits[..5], &[1, 1, 1, 2, 2]);
        assert!(c.history().iter().all(|(_, w)| *w == Change::Increase));
    }

    #[test]
    fn settles_below_the_knee_of_a_worker_pool() {
        // 8 PHP workers, 20 ms render: beyond 8 in flight requests queue (Little's law).
        let cfg = Config {
            max_concurrency: 64,
            ..Config::default()
        };
        let mut c = Controller::new(cfg, Instant::now());
        let model = |l: usize| if l <= 8 { 20 } else { 20 * l as u64 / 8 };
        let limits = drive(&mut c, 3000, model);
        let tail = &limits[2000..];
        // It never runs away: with factor 1.5 the median crosses the bound at 13 in flight.
        assert!(
            tail.iter().all(|l| (6..=13).contains(l)),
            "{:?}",
            &tail[..50]
        );
        assert!(c
            .history()
            .iter()
            .any(|(_, w)| *w == Change::LatencyBackoff));
        assert!(c.peak() <= 13);
    }

    #[test]
    fn table_of_latency_models() {
        // (cap, model, expected final range)
        type Model = fn(usize) -> u64;
        let cases: [(usize, Model, std::ops::RangeInclusive<usize>); 4] = [
            (6, |_| 5, 6..=6),
            // CPU-bound on one core: latency grows linearly from the first extra request.
            (16, |l| 100 * l as u64, 1..=1),
            // Two cores.
            (16, |l| if l <= 2 { 100 } else { 50 * l as u64 }, 2..=3),
            (1, |_| 5, 1..=1),
        ];
        for (cap, model, want) in cases {
            let mut c = Controller::new(
                Config {
                    max_concurrency: cap,
                    ..Config::default()
                },
                Instant::now(),
            );
            let limits = drive(&mut c, 2000, model);
            let last = *limits.last().unwrap();
            assert!(want.contains(&last), "cap {cap}: ended at {last}");
            assert!(limits.iter().all(|l| *l <= cap));
        }
    }

    #[test]
    fn throttle_halves_once_per_round_and_honours_retry_after() {
        let t0 = Instant::now();
        let mut c = Controller::new(
            Config {
                max_concurrency: 16,
                ..Config::default()
            },
            t0,
        );
        drive(&mut c, 400, |_| 10);
        assert_eq!(c.limit(), 16);
        // A burst of 16 429s from the 16 requests in flight: one halving, not sixteen.
        for _ in 0..16 {
            c.on_outcome(Outcome::Throttled { retry_after: None }, t0);
        }
        assert_eq!(c.limit(), 8);
        // The next burst comes from requests sent at the new limit: halves again.
        for _ in 0..8 {
            c.on_outcome(
                Outcome::Throttled {
                    retry_after: Some(Duration::from_secs(2)),
                },
                t0,
            );
        }
        assert_eq!(c.limit(), 4);
        assert_eq!(c.reserve(t0), t0 + Duration::from_secs(2));
        assert_eq!(
            c.reserve(t0 + Duration::from_secs(3)),
            t0 + Duration::from_secs(3)
        );
        for _ in 0..20 {
            c.on_outcome(Outcome::Error, t0);
        }
        assert_eq!(c.limit(), 1, "never below one");
        let throttles = c
            .history()
            .iter()
            .filter(|(_, w)| *w == Change::ThrottleBackoff)
            .count();
        assert_eq!(throttles, 4, "{:?}", c.history());
        // And it climbs back once the server answers normally.
        drive(&mut c, 400, |_| 10);
        assert_eq!(c.limit(), 16);
    }

    #[test]
    fn jitter_on_sub_millisecond_hits_is_not_congestion() {
        let mut c = Controller::new(Config::default(), Instant::now());
        // HITs at 0.3 ms with spikes to 2 ms: ratios up to 7x, but never 3 ms above the baseline.
        let t = Instant::now();
        for i in 0..400 {
            let us = if i % 2 == 0 { 300 } else { 2000 };
            c.on_outcome(
                Outcome::Ok {
                    latency: Duration::from_micros(us),
                    cached: true,
                },
                t,
            );
        }
        assert_eq!(c.limit(), DEFAULT_MAX_CONCURRENCY_CACHED);
        assert!(c.history().iter().all(|(_, w)| *w == Change::Increase));
    }

    #[test]
    fn cached_and_uncached_have_separate_baselines() {
        let t = Instant::now();
        let mut c = Controller::new(Config::default(), t);
        for _ in 0..8 {
            c.on_outcome(
                Outcome::Ok {
                    latency: Duration::from_micros(300),
                    cached: true,
                },
                t,
            );
        }
        // 20 ms renders after sub-millisecond HITs are not congestion.
        for _ in 0..100 {
            c.on_outcome(ok(20), t);
        }
        assert_eq!(c.limit(), DEFAULT_MAX_CONCURRENCY);
        assert_eq!(c.baseline(true), Some(Duration::from_micros(300)));
        assert_eq!(c.baseline(false), Some(ms(20)));
    }

    #[test]
    fn cpu_headroom_caps_and_cuts() {
        // A CPU-bound site on two cores: each render in flight takes 0.8 of a core.
        let idle_for = |limit: usize| (2.0 - 0.8 * limit as f64).max(0.0);
        let run_for = |limit: usize| 0.3 + 0.8 * limit as f64;
        let mut c = Controller::new(Config::default(), Instant::now());
        for _ in 0..60 {
            c.on_cpu(idle_for(c.limit()), run_for(c.limit()), 1.0);
            c.on_cpu(idle_for(c.limit()), run_for(c.limit()), 1.0);
            drive(&mut c, 4, |_| 20);
        }
        // It tried two, measured the cost, and went back to one: a core stays for visitors.
        assert_eq!(c.limit(), 1, "{:?}", c.history());
        assert!(c.history().iter().any(|(_, w)| *w == Change::CpuBackoff));
        assert!(c.peak() <= 2, "{:?}", c.history());
        // The same site on a machine other programs saturate: idle time is zero at any limit,
        // but the run queue still shows what each render adds. One in flight, no more.
        let mut b = Controller::new(Config::default(), Instant::now());
        for _ in 0..60 {
            b.on_cpu(0.0, 3.0 + run_for(b.limit()), 1.0);
            b.on_cpu(0.0, 3.0 + run_for(b.limit()), 1.0);
            drive(&mut b, 4, |_| 20);
        }
        assert_eq!(b.limit(), 1, "{:?}", b.history());
        // A sleeping site on a machine someone else keeps busy: the CPU is not ours to save.
        let mut s = Controller::new(Config::default(), Instant::now());
        for _ in 0..60 {
            s.on_cpu(0.2, 4.0, 1.0);
            s.on_cpu(0.2, 4.0, 1.0);
            drive(&mut s, 4, |_| 20);
        }
        assert_eq!(s.limit(), DEFAULT_MAX_CONCURRENCY, "{:?}", s.history());
        // Cache HITs cost the site a file read: a busy CPU does not hold them back.
        let mut h = Controller::new(Config::default(), Instant::now());
        let t = Instant::now();
        for _ in 0..200 {
            h.on_cpu(idle_for(h.limit()), run_for(h.limit()), 1.0);
            h.on_outcome(
                Outcome::Ok {
                    latency: Duration::from_micros(400),
                    cached: true,
                },
                t,
            );
        }
        assert_eq!(h.limit(), DEFAULT_MAX_CONCURRENCY_CACHED);
        // Renders again: back under the rendering cap at once, then the CPU reserve applies.
        for _ in 0..9 {
            h.on_outcome(ok(20), t);
        }
        assert!(h.limit() <= DEFAULT_MAX_CONCURRENCY, "{}", h.limit());
    }

    #[test]
    fn rate_cap_spaces_requests() {
        let t0 = Instant::now();
        let mut c = Controller::new(
            Config {
                max_rps: Some(10.0),
                ..Config::default()
            },
            t0,
        );
        assert_eq!(c.reserve(t0), t0);
        assert_eq!(c.reserve(t0), t0 + ms(100));
        assert_eq!(c.reserve(t0 + ms(60)), t0 + ms(200));
        // A long idle spell gives one slot at once, not a burst.
        let later = t0 + Duration::from_secs(10);
        assert_eq!(c.reserve(later), later);
        assert_eq!(c.reserve(later), later + ms(100));
        // The second from later + 100 ms holds 10 slots: the one reserved above and 9 more.
        let mut starts = 1;
        let end = later + ms(100) + Duration::from_secs(1);
        while c.reserve(later) < end {
            starts += 1;
        }
        assert_eq!(starts, 10);
    }

    #[test]
    fn reserve_spaces_starts_and_honours_pauses() {
        let t0 = Instant::now();
        let mut c = Controller::new(
            Config {
                max_rps: Some(4.0),
                ..Config::default()
            },
            t0,
        );
        let slots: Vec<Duration> = (0..4).map(|_| c.reserve(t0) - t0).collect();
        assert_eq!(slots, [ms(0), ms(250), ms(500), ms(750)]);
        c.on_outcome(
            Outcome::Throttled {
                retry_after: Some(Duration::from_secs(3)),
            },
            t0,
        );
        assert_eq!(c.reserve(t0) - t0, Duration::from_secs(3));
        let mut free = Controller::new(Config::default(), t0);
        assert_eq!(free.reserve(t0), t0);
    }

    #[test]
    fn config_validation() {
        assert!(Config::default().validate().is_ok());
        assert!(Config {
            max_concurrency: 0,
            ..Config::default()
        }
        .validate()
        .is_err());
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert!(
                Config {
                    max_rps: Some(bad),
                    ..Config::default()
                }
                .validate()
                .is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn load_gate_and_loadavg() {
        assert_eq!(parse_loadavg("0.52 0.58 0.59 1/467 12345\n"), Some(0.52));
        assert_eq!(parse_loadavg(""), None);
        assert_eq!(parse_loadavg("x 1 2"), None);
        let g = LoadGate { max_load: 2.0 };
        assert!(!g.should_pause(2.0));
        assert!(g.should_pause(2.01));
        let real = LoadGate::read_load(Path::new("/proc/loadavg")).unwrap();
        assert!(real >= 0.0);
        assert!(LoadGate::read_load(Path::new("/nonexistent/loadavg")).is_err());
    }

    #[test]
    fn locality() {
        assert!(is_local("127.0.0.1".parse().unwrap()));
        assert!(is_local("127.8.9.10".parse().unwrap()));
        assert!(is_local("::1".parse().unwrap()));
        // TEST-NET-1 is never assigned to a machine; bind() fails without sending anything.
        assert!(!is_local("192.0.2.1".parse().unwrap()));
    }
}
