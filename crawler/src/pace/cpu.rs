//! Local CPU headroom: how many cores stood idle over the last fraction of a second.
//!
//! On a site whose pages burn CPU (a real WordPress), the crawler's own requests can take every
//! core while its latency does not grow at all: with two cores, two renders in flight each still
//! get a whole core. A visitor arriving then queues behind them. So, when the site runs on this
//! machine, the controller keeps a reserve of idle cores for visitors, read from `/proc/stat`
//! every [`SAMPLE_EVERY`] (reacting within a second, unlike the 1-minute load average).

use std::time::{Duration, Instant};

/// How often the counters are read.
pub const SAMPLE_EVERY: Duration = Duration::from_millis(250);

/// How often the number of runnable tasks is read between two counter readings.
pub const RUNNABLE_EVERY: Duration = Duration::from_millis(20);

/// The aggregate CPU counters of `/proc/stat` (in clock ticks) and the runnable tasks now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CpuTimes {
    /// Ticks spent idle or waiting for I/O.
    pub idle: u64,
    /// All ticks.
    pub total: u64,
    /// Tasks running or waiting for a CPU (`procs_running`).
    pub running: u32,
}

/// One reading over an interval.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Reading {
    /// Idle cores.
    pub idle: f64,
    /// Runnable tasks, averaged over the interval. Unlike idle time it keeps growing past a
    /// saturated CPU, so it shows what each request of ours adds even on a machine that other
    /// programs keep busy.
    pub running: f64,
}

/// Parses the first (`cpu `) line of `/proc/stat`.
pub fn parse_proc_stat(text: &str) -> Option<CpuTimes> {
    let line = text.lines().next()?;
    let mut f = line.split_whitespace();
    if f.next()? != "cpu" {
        return None;
    }
    let v: Vec<u64> = f.map_while(|x| x.parse().ok()).collect();
    if v.len() < 4 {
        return None;
    }
    // user nice system idle iowait irq softirq steal (guest time is already in user).
    let idle = v[3] + v.get(4).copied().unwrap_or(0);
    let total = v.iter().take(8).sum();
    let running = text
        .lines()
        .find_map(|l| l.strip_prefix("procs_running "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0);
    Some(CpuTimes {
        idle,
        total,
        running,
    })
}

/// Turns successive counter readings into idle cores over each interval.
#[derive(Clone, Debug)]
pub struct Headroom {
    cpus: f64,
    last: Option<(Instant, CpuTimes)>,
    /// Runnable-task readings since `last`: sum, count, time of the latest.
    running: (u64, u32, Option<Instant>),
}

impl Headroom {
    /// A reader for a machine with `cpus` cores.
    pub fn new(cpus: usize) -> Self {
        Headroom {
            cpus: cpus.max(1) as f64,
            last: None,
            running: (0, 0, None),
        }
    }

    /// The cores to keep idle for visitors: `wanted`, or by default one, or half the machine
    /// below two cores.
    pub fn reserve(&self, wanted: Option<f64>) -> f64 {
        wanted.unwrap_or((self.cpus / 2.0).min(1.0))
    }

    /// Whether a new reading is due at `now`.
    pub fn due(&self, now: Instant) -> bool {
        self.last
            .is_none_or(|(t, _)| now.duration_since(t) >= SAMPLE_EVERY)
    }

    /// Whether a runnable-task reading is due at `now`.
    pub fn running_due(&self, now: Instant) -> bool {
        self.running
            .2
            .is_none_or(|t| now.duration_since(t) >= RUNNABLE_EVERY)
    }

    /// Feeds a runnable-task count read between two full readings.
    pub fn add_running(&mut self, now: Instant, running: u32) {
        self.running.0 += u64::from(running);
        self.running.1 += 1;
        self.running.2 = Some(now);
    }

    /// Feeds a full reading; returns idle cores and average runnable tasks since the previous
    /// one (none for the first).
    pub fn sample(&mut self, now: Instant, t: CpuTimes) -> Option<Reading> {
        self.add_running(now, t.running);
        let (sum, n, _) = std::mem::replace(&mut self.running, (0, 0, Some(now)));
        let prev = self.last.replace((now, t));
        let (_, p) = prev?;
        let total = t.total.checked_sub(p.total)?;
        let idle = t.idle.checked_sub(p.idle)?;
        if total == 0 {
            return None;
        }
        Some(Reading {
            idle: self.cpus * idle as f64 / total as f64,
            running: sum as f64 / f64::from(n.max(1)),
        })
    }
}

/// Reads the runnable-task count of `/proc/stat`.
pub fn read_running() -> Option<u32> {
    parse_proc_stat(&std::fs::read_to_string("/proc/stat").ok()?).map(|t| t.running)
}

/// Reads `/proc/stat` (`None` where it does not exist).
pub fn read_proc_stat() -> Option<CpuTimes> {
    parse_proc_stat(&std::fs::read_to_string("/proc/stat").ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_measures_idle_cores() {
        let a = parse_proc_stat("cpu  100 0 100 800 0 0 0 0 0 0\ncpu0 1 2 3 4\nprocs_running 3\n")
            .unwrap();
        assert_eq!(
            a,
            CpuTimes {
                idle: 800,
                total: 1000,
                running: 3
            }
        );
        assert_eq!(parse_proc_stat("intr 1 2 3"), None);
        let b = parse_proc_stat("cpu  250 0 250 900 100 0 0 0 0 0\nprocs_running 5\n").unwrap();
        let mut h = Headroom::new(2);
        let t0 = Instant::now();
        assert!(h.due(t0));
        assert_eq!(h.sample(t0, a), None);
        assert!(!h.due(t0 + Duration::from_millis(100)));
        assert!(h.running_due(t0 + RUNNABLE_EVERY));
        h.add_running(t0 + RUNNABLE_EVERY, 7);
        // 500 ticks passed, 200 of them idle: 2 cores x 40 % = 0.8 idle cores; (7 + 5) / 2 run.
        let r = h.sample(t0 + SAMPLE_EVERY, b).unwrap();
        assert!((r.idle - 0.8).abs() < 1e-9, "{r:?}");
        assert!((r.running - 6.0).abs() < 1e-9, "{r:?}");
        assert_eq!(h.reserve(None), 1.0);
        assert_eq!(h.reserve(Some(0.5)), 0.5);
        assert_eq!(Headroom::new(1).reserve(None), 0.5);
        assert!(read_proc_stat().is_some(), "Linux has /proc/stat");
    }
}
