//! The rlimit fallback: limits that no cgroup enforces become rlimits, and only ever lower.
#![forbid(unsafe_code)]

use std::io;

use super::cgroup::Placement;
use crate::config::Config;
use crate::sys::{self, Rlimit, RlimitKind};

/// The resources this module sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Resource {
    /// `RLIMIT_CORE`: always 0, so a crashing tool leaves no core file with the job's memory
    /// (the tool is dumpable again after execve).
    Core,
    /// `RLIMIT_AS`: stands in for the memory limit. It limits address space, not resident
    /// memory, so it is stricter than a cgroup memory limit for tools that reserve much.
    As,
    /// `RLIMIT_NPROC`: stands in for the pids limit. It counts every process of the real uid,
    /// not just this job's.
    Nproc,
}

/// rlimit and nice operations, behind a trait so the lowering rules are unit-tested.
pub(crate) trait RlimitSys {
    /// getrlimit.
    fn get(&mut self, r: Resource) -> io::Result<Rlimit>;
    /// setrlimit.
    fn set(&mut self, r: Resource, v: Rlimit) -> io::Result<()>;
    /// The current nice value.
    fn nice(&mut self) -> io::Result<i32>;
    /// Sets the nice value.
    fn set_nice(&mut self, v: i32) -> io::Result<()>;
}

struct RealRlimits;

impl RealRlimits {
    fn resource(r: Resource) -> RlimitKind {
        match r {
            Resource::Core => RlimitKind::Core,
            Resource::As => RlimitKind::As,
            Resource::Nproc => RlimitKind::Nproc,
        }
    }
}

impl RlimitSys for RealRlimits {
    fn get(&mut self, r: Resource) -> io::Result<Rlimit> {
        sys::getrlimit(Self::resource(r))
    }
    fn set(&mut self, r: Resource, v: Rlimit) -> io::Result<()> {
        sys::setrlimit(Self::resource(r), v)
    }
    fn nice(&mut self) -> io::Result<i32> {
        sys::getnice()
    }
    fn set_nice(&mut self, v: i32) -> io::Result<()> {
        sys::setnice(v)
    }
}

/// The lowered pair: each of soft and hard becomes the minimum of its current value and the
/// wanted one, so the result never exceeds what the caller (PAM, systemd, `ulimit -H`) set.
pub(crate) fn lowered(current: Rlimit, wanted: u64) -> Rlimit {
    Rlimit {
        soft: current.soft.min(wanted),
        hard: current.hard.min(wanted),
    }
}

/// The nice value whose CFS weight matches a cgroup v2 `cpu.weight` below 100: each nice step
/// is a factor of 1.25 in weight (kernel/sched/core.c, sched_prio_to_weight).
pub(crate) fn nice_for_weight(weight: u32) -> i32 {
    if weight >= 100 || weight == 0 {
        return 0;
    }
    let steps = (100.0 / f64::from(weight)).ln() / 1.25f64.ln();
    (steps.round() as i32).clamp(0, 19)
}

/// Lowers (never raises) rlimits: RLIMIT_CORE to 0 always; RLIMIT_AS and RLIMIT_NPROC from the
/// memory and pids limits when no cgroup enforces them; a higher nice value for a cpu weight
/// below 100 when no cgroup does. Runs as root, before the privilege drop.
pub fn lower_rlimits(cfg: &Config, placement: &Placement) -> Result<(), String> {
    lower_with(&mut RealRlimits, cfg, placement)
}

pub(crate) fn lower_with(
    sys: &mut dyn RlimitSys,
    cfg: &Config,
    placement: &Placement,
) -> Result<(), String> {
    let enforced = placement.enforced;
    let mut wanted = vec![(Resource::Core, 0)];
    if let (false, Some(bytes)) = (enforced.memory, cfg.limits.memory_max) {
        wanted.push((Resource::As, bytes));
    }
    if let (false, Some(n)) = (enforced.pids, cfg.limits.pids_max) {
        wanted.push((Resource::Nproc, n));
    }
    for (r, value) in wanted {
        let current = sys
            .get(r)
            .map_err(|e| format!("cannot read rlimit {r:?}: {e}"))?;
        let new = lowered(current, value);
        if new != current {
            sys.set(r, new)
                .map_err(|e| format!("cannot lower rlimit {r:?}: {e}"))?;
        }
    }
    if let (false, Some(w)) = (enforced.cpu, cfg.limits.cpu_weight) {
        let target = nice_for_weight(w);
        let current = sys
            .nice()
            .map_err(|e| format!("cannot read nice value: {e}"))?;
        // Only ever nicer: a caller already running at a higher nice value keeps it.
        if target > current {
            sys.set_nice(target)
                .map_err(|e| format!("cannot set nice value: {e}"))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::confine::cgroup::Enforced;
    use std::collections::HashMap;

    const INF: u64 = u64::MAX;

    #[derive(Default)]
    struct Fake {
        limits: HashMap<&'static str, Rlimit>,
        nice: i32,
        sets: Vec<String>,
    }

    fn key(r: Resource) -> &'static str {
        match r {
            Resource::Core => "core",
            Resource::As => "as",
            Resource::Nproc => "nproc",
        }
    }

    impl RlimitSys for Fake {
        fn get(&mut self, r: Resource) -> io::Result<Rlimit> {
            Ok(*self.limits.get(key(r)).unwrap_or(&Rlimit {
                soft: INF,
                hard: INF,
            }))
        }
        fn set(&mut self, r: Resource, v: Rlimit) -> io::Result<()> {
            let cur = self.get(r)?;
            // The kernel refuses to raise a hard limit without CAP_SYS_RESOURCE, which this
            // host's root lacks too.
            if v.hard > cur.hard || v.soft > v.hard {
                return Err(io::Error::from_raw_os_error(libc::EPERM));
            }
            self.sets.push(format!("{} {} {}", key(r), v.soft, v.hard));
            self.limits.insert(key(r), v);
            Ok(())
        }
        fn nice(&mut self) -> io::Result<i32> {
            Ok(self.nice)
        }
        fn set_nice(&mut self, v: i32) -> io::Result<()> {
            self.sets.push(format!("nice {v}"));
            self.nice = v;
            Ok(())
        }
    }

    fn rlimits_only() -> Placement {
        Placement::default()
    }

    #[test]
    fn lowering_takes_the_minimum_of_each_half() {
        let r = |soft, hard| Rlimit { soft, hard };
        assert_eq!(lowered(r(INF, INF), 64), r(64, 64));
        assert_eq!(lowered(r(10, 50), 64), r(10, 50));
        assert_eq!(lowered(r(100, INF), 64), r(64, 64));
        assert_eq!(lowered(r(10, INF), 64), r(10, 64));
    }

    #[test]
    fn fallback_sets_core_as_nproc_and_nice() {
        let mut fake = Fake::default();
        lower_with(&mut fake, &Config::default(), &rlimits_only()).unwrap();
        assert_eq!(
            fake.sets,
            [
                "core 0 0",
                "as 536870912 536870912",
                "nproc 64 64",
                "nice 3"
            ]
        );
    }

    #[test]
    fn never_raises_a_callers_hard_limit() {
        // ISO-5: `ulimit -Hu 50` before the call.
        let mut fake = Fake::default();
        fake.limits.insert("nproc", Rlimit { soft: 50, hard: 50 });
        fake.limits.insert(
            "as",
            Rlimit {
                soft: 1 << 20,
                hard: 1 << 30,
            },
        );
        fake.nice = 10;
        lower_with(&mut fake, &Config::default(), &rlimits_only()).unwrap();
        assert_eq!(fake.limits["nproc"], Rlimit { soft: 50, hard: 50 });
        assert_eq!(
            fake.limits["as"],
            Rlimit {
                soft: 1 << 20,
                hard: 512 << 20
            }
        );
        assert_eq!(fake.nice, 10);
    }

    #[test]
    fn cgroup_enforced_limits_need_no_rlimit() {
        let mut fake = Fake::default();
        let placement = Placement {
            groups: vec!["/sys/fs/cgroup/memory/nppp/nppp.1".into()],
            enforced: Enforced {
                memory: true,
                pids: true,
                cpu: true,
            },
            notes: Vec::new(),
        };
        lower_with(&mut fake, &Config::default(), &placement).unwrap();
        assert_eq!(fake.sets, ["core 0 0"]);
    }

    #[test]
    fn unlimited_config_sets_only_core() {
        let mut cfg = Config::default();
        cfg.limits.memory_max = None;
        cfg.limits.pids_max = None;
        cfg.limits.cpu_weight = None;
        let mut fake = Fake::default();
        lower_with(&mut fake, &cfg, &rlimits_only()).unwrap();
        assert_eq!(fake.sets, ["core 0 0"]);
    }

    #[test]
    fn weights_map_to_nice_values() {
        assert_eq!(nice_for_weight(100), 0);
        assert_eq!(nice_for_weight(50), 3);
        assert_eq!(nice_for_weight(80), 1);
        assert_eq!(nice_for_weight(1), 19);
        assert_eq!(nice_for_weight(10_000), 0);
    }
}
