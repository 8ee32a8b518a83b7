//! What a group's files must say: the limits of a job group and of a caller's parent, each
//! written as one [`Op`] (through cgroups-rs on the real file system) and read back.
#![forbid(unsafe_code)]

use std::path::Path;

use super::{CgroupFs, Ctl, Version};
use crate::config::{CallerLimits, Limits};

/// One value written into a group, through cgroups-rs's controllers on the real file system.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    /// `memory.limit_in_bytes` (v1) / `memory.max` (v2); -1 is no limit.
    MemoryMax(i64),
    /// `memory.memsw.limit_in_bytes` (v1: memory plus swap) / `memory.swap.max` (v2: swap).
    SwapMax(i64),
    /// `pids.max`; `None` is no limit.
    PidsMax(Option<u64>),
    /// `cpu.shares` (v1) / `cpu.weight` (v2).
    CpuShares(u64),
    /// `cpu.cfs_quota_us` (v1) / `cpu.max` with a 100 ms period (v2), in microseconds.
    CpuQuota(u64),
    /// Moves the process with this pid in (`cgroup.procs`).
    AddProc(u32),
}

impl Op {
    /// The file the value lands in (and is read back from).
    pub(crate) fn file(self, version: Version) -> &'static str {
        let v2 = version == Version::V2;
        match self {
            Op::MemoryMax(_) if v2 => "memory.max",
            Op::MemoryMax(_) => "memory.limit_in_bytes",
            Op::SwapMax(_) if v2 => "memory.swap.max",
            Op::SwapMax(_) => "memory.memsw.limit_in_bytes",
            Op::PidsMax(_) => "pids.max",
            Op::CpuShares(_) if v2 => "cpu.weight",
            Op::CpuShares(_) => "cpu.shares",
            Op::CpuQuota(_) if v2 => "cpu.max",
            Op::CpuQuota(_) => "cpu.cfs_quota_us",
            Op::AddProc(_) => "cgroup.procs",
        }
    }

    /// The text written, as the kernel receives it.
    pub(crate) fn text(self, version: Version) -> String {
        let v2 = version == Version::V2;
        match self {
            Op::MemoryMax(-1) | Op::SwapMax(-1) if v2 => "max".to_string(),
            Op::MemoryMax(b) | Op::SwapMax(b) => b.to_string(),
            Op::PidsMax(None) => "max".to_string(),
            Op::PidsMax(Some(n)) => n.to_string(),
            Op::CpuShares(s) => s.to_string(),
            Op::CpuQuota(us) if v2 => format!("{us} 100000"),
            Op::CpuQuota(us) => us.to_string(),
            Op::AddProc(pid) => pid.to_string(),
        }
    }
}

/// How a written value must read back.
#[derive(Debug, Clone, Copy)]
pub(super) enum Expect<'a> {
    Same(&'a str),
    /// Memory limits read back rounded down to a page; 64 KiB is the largest page size.
    BytesRoundedDown(u64),
    /// No limit: `max`, or v1's "-1" that reads back as a huge page-rounded number.
    Unlimited,
}

impl Expect<'_> {
    fn matches(self, back: &str) -> bool {
        match self {
            Expect::Same(want) => back == want,
            Expect::BytesRoundedDown(want) => back
                .parse::<u64>()
                .is_ok_and(|got| got <= want && want - got < 64 * 1024),
            Expect::Unlimited => back == "max" || back.parse::<u64>().is_ok_and(|v| v >= 1 << 62),
        }
    }
}

/// Applies `op` in `dir` and checks that its file reads back as `expect`.
pub(super) fn set_verified(
    fs: &mut dyn CgroupFs,
    dir: &Path,
    version: Version,
    op: Op,
    expect: Expect<'_>,
) -> Result<(), String> {
    let path = dir.join(op.file(version));
    let text = op.text(version);
    fs.apply(dir, version, op)
        .map_err(|e| format!("cannot write {text:?} to {}: {e}", path.display()))?;
    let back = fs
        .read(&path)
        .map_err(|e| format!("cannot read back {}: {e}", path.display()))?;
    let back = back.trim();
    if expect.matches(back) {
        Ok(())
    } else {
        Err(format!(
            "{} reads back {back:?} after writing {text:?}",
            path.display()
        ))
    }
}

/// Applies `op` only when its file does not already read as `expect` (the per-caller parent
/// keeps its limits from one run to the next, so usually nothing is written).
fn ensure_value(
    fs: &mut dyn CgroupFs,
    dir: &Path,
    version: Version,
    op: Op,
    expect: Expect<'_>,
) -> Result<(), String> {
    let current = fs.read(&dir.join(op.file(version))).unwrap_or_default();
    if expect.matches(current.trim()) {
        return Ok(());
    }
    set_verified(fs, dir, version, op, expect)
}

/// Brings the per-caller parent's aggregate limits in line with the configuration
/// (`caller_memory_max`, `caller_pids_max`; unset means no limit).
pub(super) fn apply_caller_limits(
    fs: &mut dyn CgroupFs,
    dir: &Path,
    version: Version,
    ctls: &[Ctl],
    limits: &CallerLimits,
) -> Result<(), String> {
    if ctls.contains(&Ctl::Memory) {
        match limits.memory_max {
            Some(b) => ensure_value(
                fs,
                dir,
                version,
                Op::MemoryMax(b as i64),
                Expect::BytesRoundedDown(b),
            )?,
            None => ensure_value(fs, dir, version, Op::MemoryMax(-1), Expect::Unlimited)?,
        }
    }
    if ctls.contains(&Ctl::Pids) {
        let op = Op::PidsMax(limits.pids_max);
        let want = op.text(version);
        ensure_value(fs, dir, version, op, Expect::Same(&want))?;
    }
    Ok(())
}

/// Writes one controller's limits into a fresh job group.
pub(super) fn apply_limits(
    fs: &mut dyn CgroupFs,
    dir: &Path,
    version: Version,
    ctl: Ctl,
    limits: &Limits,
) -> Result<(), String> {
    let exact = |fs: &mut dyn CgroupFs, op: Op| {
        let want = op.text(version);
        set_verified(fs, dir, version, op, Expect::Same(&want))
    };
    match ctl {
        Ctl::Memory => {
            let Some(bytes) = limits.memory_max else {
                return Ok(());
            };
            let rounded = Expect::BytesRoundedDown(bytes);
            set_verified(fs, dir, version, Op::MemoryMax(bytes as i64), rounded)?;
            // v1 memsw is memory+swap, so the same value allows no swap on top; v2 limits swap
            // alone. Swap accounting may be compiled out or disabled: then there is no file
            // and no swap to limit through it.
            let (swap, expect) = match version {
                Version::V1 => (Op::SwapMax(bytes as i64), rounded),
                Version::V2 => (Op::SwapMax(0), Expect::Same("0")),
            };
            if fs.exists(&dir.join(swap.file(version))) {
                set_verified(fs, dir, version, swap, expect)?;
            }
            Ok(())
        }
        Ctl::Pids => match limits.pids_max {
            Some(n) => exact(fs, Op::PidsMax(Some(n))),
            None => Ok(()),
        },
        Ctl::Cpu => {
            if let Some(w) = limits.cpu_weight {
                // v1 shares: 1024 is the default as 100 is the default v2 weight; the kernel's
                // minimum is 2.
                let v = match version {
                    Version::V1 => (u64::from(w) * 1024 / 100).max(2),
                    Version::V2 => u64::from(w),
                };
                exact(fs, Op::CpuShares(v))?;
            }
            if let Some(pct) = limits.cpu_quota_percent {
                let period = match version {
                    Version::V1 => fs
                        .read(&dir.join("cpu.cfs_period_us"))
                        .ok()
                        .and_then(|p| p.trim().parse::<u64>().ok())
                        .ok_or_else(|| {
                            format!("cannot read {}/cpu.cfs_period_us", dir.display())
                        })?,
                    Version::V2 => 100_000,
                };
                exact(fs, Op::CpuQuota((u64::from(pct) * period / 100).max(1000)))?;
            }
            Ok(())
        }
    }
}
