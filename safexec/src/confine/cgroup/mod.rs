//! cgroup placement: every job in its own group `<parent>/caller.<uid>/nppp.<pid>` below a
//! per-caller parent that carries the caller's aggregate limits, on cgroup v1, v2 and hybrid
//! hosts.
//!
//! cgroups-rs 0.3 does what it does safely here: it finds the hierarchies (is the host
//! unified? where is each v1 controller mounted?), writes every limit through its memory, pids
//! and cpu controllers, and moves the process in (`add_task_by_tgid`), all through [`Op`].
//! Kept here, because the crate falls short for a setuid program:
//! - creating groups: its v2 `Cgroup::new` writes `+controller` into the *root*
//!   `cgroup.subtree_control` (spec §7.1-F), its v1 `create` panics on a bad path and ignores
//!   mkdir errors, so an existing, populated group of a reused pid would be joined; here
//!   `mkdir` must create the group (EEXIST is handled explicitly), root-owned and 0755;
//! - verification: its setters never read back; every value is read back and compared here
//!   (memory limits rounded to a page), so a refused or silently clamped write fails closed;
//! - the hybrid layout: it knows only the v1 mounts, not a v2 tree beside them;
//! - per-caller parents, the stale-group sweep, the job count and the lock.
//!
//! Every file access goes through [`CgroupFs`], so the rules are unit-tested against an
//! in-memory cgroupfs.
//!
//! Concurrency: the sweep of a caller's stale groups, the job count and the creation of the
//! new group happen under an exclusive lock on `/run/safexec/cgroup.<uid>.lock`, a file only
//! root can open (the directory is 0700), taken with a bounded wait. No lock is ever taken on
//! anything an unprivileged user can open, and one caller's runs never wait for another's.
#![forbid(unsafe_code)]

use std::collections::BTreeSet;
use std::ffi::{CString, OsStr};
use std::fs::{self, File};
use std::io::{self, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cgroups_rs::cpu::CpuController;
use cgroups_rs::hierarchies;
use cgroups_rs::memory::MemController;
use cgroups_rs::pid::PidController;
use cgroups_rs::{CgroupPid, Controller, Controllers, MaxValue};

use crate::config::{CallerLimits, Config, Limits};
use crate::sys::{self, flags};

/// How long a run waits for its caller's placement lock before refusing the job. Placement
/// under the lock takes milliseconds; longer means a run of the same caller is stuck (e.g.
/// stopped with SIGSTOP by that caller), and only that caller's jobs are affected.
pub(crate) const LOCK_WAIT: Duration = Duration::from_secs(5);

/// How strongly the caller asked for a cgroup (`SAFEXEC_DETACH`). In setuid mode a caller may
/// only ask for stricter behaviour, so there is no way to turn isolation off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detach {
    /// Use cgroups where possible; limits no cgroup enforces fall back to rlimits.
    Auto,
    /// `SAFEXEC_DETACH=cgv2`: every configured limit must be enforced by a cgroup, else fail.
    Required,
}

impl Detach {
    /// Parses the `SAFEXEC_DETACH` snapshot. `off` is not honoured in setuid mode (spec §7.1-F,
    /// ISO-3): it means `auto`, as does anything unknown or unset.
    pub fn from_env_value(value: Option<&OsStr>) -> Detach {
        match value {
            Some(v) if v == "cgv2" => Detach::Required,
            _ => Detach::Auto,
        }
    }
}

/// Which configured limits a cgroup enforces (an unset limit counts as enforced: there is
/// nothing for an rlimit to add).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Enforced {
    /// The memory limit.
    pub memory: bool,
    /// The pids limit.
    pub pids: bool,
    /// The cpu weight and quota.
    pub cpu: bool,
}

/// Where a job was placed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Placement {
    /// The job's own groups, one per hierarchy joined; empty when only rlimits apply.
    pub groups: Vec<PathBuf>,
    /// Which limits those groups enforce; [`super::lower_rlimits`] covers the rest.
    pub enforced: Enforced,
    /// Things worth an `Info:` line: hierarchies that could not be used and why, removed
    /// stale groups.
    pub notes: Vec<String>,
}

impl Placement {
    /// True when no cgroup was joined.
    pub fn is_rlimits_only(&self) -> bool {
        self.groups.is_empty()
    }

    /// The value of the `Summary: cgroup=` line.
    pub fn summary(&self) -> String {
        if self.groups.is_empty() {
            "(none; rlimits in effect)".to_string()
        } else {
            let paths: Vec<String> = self
                .groups
                .iter()
                .map(|p| p.display().to_string())
                .collect();
            paths.join(",")
        }
    }
}

/// A controller this module writes limits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Ctl {
    Memory,
    Pids,
    Cpu,
}

impl Ctl {
    fn name(self) -> &'static str {
        match self {
            Ctl::Memory => "memory",
            Ctl::Pids => "pids",
            Ctl::Cpu => "cpu",
        }
    }

    /// Whether the configuration asks this controller for anything. pids always counts: the
    /// per-caller job cap is counted in the job groups, and the pids hierarchy is the cheapest
    /// place that tracks every process of a job.
    fn wanted(self, cfg: &Config) -> bool {
        match self {
            Ctl::Memory => {
                cfg.limits.memory_max.is_some() || cfg.caller_limits.memory_max.is_some()
            }
            Ctl::Pids => true,
            Ctl::Cpu => cfg.limits.cpu_weight.is_some() || cfg.limits.cpu_quota_percent.is_some(),
        }
    }
}

/// cgroup v1 or v2 file layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Version {
    V1,
    V2,
}

/// One mounted hierarchy and the controllers this module wants from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Hier {
    pub mount: PathBuf,
    pub version: Version,
    /// v1: the controllers mounted there. v2: the ones to enable if the tree offers them.
    pub ctls: Vec<Ctl>,
}

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

/// cgroups-rs reports errors as its own type with the `io::Error` as the source.
fn crate_error(e: cgroups_rs::error::Error) -> io::Error {
    use std::error::Error as _;
    match e.source().and_then(|s| s.downcast_ref::<io::Error>()) {
        Some(io) => io::Error::new(io.kind(), io.to_string()),
        None => io::Error::other(e.to_string()),
    }
}

/// The answer of one attempt at the caller's lock.
pub(crate) enum TryLock {
    /// Held until the value is dropped (`None` for a double without a real lock).
    Held {
        /// The locked file; closing it releases the lock.
        _fd: Option<OwnedFd>,
    },
    /// Another run holds it.
    Busy,
}

/// File operations on a cgroup file system.
pub(crate) trait CgroupFs {
    /// mkdir; an existing directory is `AlreadyExists`.
    fn mkdir(&mut self, p: &Path) -> io::Result<()>;
    /// rmdir.
    fn rmdir(&mut self, p: &Path) -> io::Result<()>;
    /// Whether the path exists.
    fn exists(&mut self, p: &Path) -> bool;
    /// Reads a whole (small) file.
    fn read(&mut self, p: &Path) -> io::Result<String>;
    /// Exactly one write(2) of `data` to an existing file; returns the bytes written.
    fn write_once(&mut self, p: &Path, data: &[u8]) -> io::Result<usize>;
    /// Writes a limit or moves a process into the group `dir`.
    fn apply(&mut self, dir: &Path, version: Version, op: Op) -> io::Result<()>;
    /// Names of the subdirectories.
    fn subdirs(&mut self, p: &Path) -> io::Result<Vec<String>>;
    /// One non-blocking attempt at the exclusive placement lock of caller `uid`.
    fn try_lock_caller(&mut self, uid: u32) -> io::Result<TryLock>;
    /// Whether a process with this pid exists.
    fn alive(&mut self, pid: u32) -> bool;
    /// How many other live jobs of caller `uid` the root-owned job records list (the count
    /// when no cgroup hierarchy can be used).
    fn recorded_jobs(&mut self, uid: u32, own: u32) -> usize;
}

/// The real cgroup file systems.
pub(crate) struct RealFs;

/// Where the placement locks live: root's own 0700 directory, created by the job record.
const LOCK_DIR: &str = "/run/safexec";

impl CgroupFs for RealFs {
    fn mkdir(&mut self, p: &Path) -> io::Result<()> {
        fs::DirBuilder::new().mode(0o755).create(p)?;
        // The caller's umask (077 by then) must not hide the job's own limits from it, and the
        // setuid process still has the caller's gid, which must not own a root-made group.
        fs::set_permissions(p, fs::Permissions::from_mode(0o755))?;
        std::os::unix::fs::chown(p, Some(0), Some(0))
    }
    fn rmdir(&mut self, p: &Path) -> io::Result<()> {
        fs::remove_dir(p)
    }
    fn exists(&mut self, p: &Path) -> bool {
        p.exists()
    }
    fn read(&mut self, p: &Path) -> io::Result<String> {
        fs::read_to_string(p)
    }
    fn write_once(&mut self, p: &Path, data: &[u8]) -> io::Result<usize> {
        // kernfs treats each write(2) as one complete value (spec §7.2-1): a single write with
        // the newline included, never `write_all`, which could split it.
        File::options().write(true).open(p)?.write(data)
    }
    fn apply(&mut self, dir: &Path, version: Version, op: Op) -> io::Result<()> {
        // Each controller object is rooted at the job's own directory: it writes the files
        // there and nowhere else.
        let (d, v2) = (dir.to_path_buf(), version == Version::V2);
        let max = |n: Option<u64>| n.map_or(MaxValue::Max, |n| MaxValue::Value(n as i64));
        match op {
            Op::MemoryMax(b) => MemController::new(d, v2).set_limit(b),
            Op::SwapMax(b) => MemController::new(d, v2).set_memswap_limit(b),
            Op::PidsMax(n) => PidController::new(d, v2).set_pid_max(max(n)),
            Op::CpuShares(s) => CpuController::new(d, v2).set_shares(s),
            Op::CpuQuota(us) if v2 => {
                CpuController::new(d, v2).set_cfs_quota_and_period(Some(us as i64), Some(100_000))
            }
            Op::CpuQuota(us) => CpuController::new(d, v2).set_cfs_quota(us as i64),
            Op::AddProc(pid) => {
                PidController::new(d, v2).add_task_by_tgid(&CgroupPid::from(u64::from(pid)))
            }
        }
        .map_err(crate_error)
    }
    fn subdirs(&mut self, p: &Path) -> io::Result<Vec<String>> {
        let mut out = Vec::new();
        for entry in fs::read_dir(p)? {
            let entry = entry?;
            if entry.file_type()?.is_dir() {
                if let Some(name) = entry.file_name().to_str() {
                    out.push(name.to_string());
                }
            }
        }
        Ok(out)
    }
    fn try_lock_caller(&mut self, uid: u32) -> io::Result<TryLock> {
        let fd = open_lock_file(uid)?;
        Ok(if sys::try_flock_exclusive(fd.as_fd())? {
            TryLock::Held { _fd: Some(fd) }
        } else {
            TryLock::Busy
        })
    }
    fn alive(&mut self, pid: u32) -> bool {
        // Runs as root, so hidepid cannot hide a live process from this check.
        Path::new(&format!("/proc/{pid}")).exists()
    }
    fn recorded_jobs(&mut self, uid: u32, own: u32) -> usize {
        let Ok(dir) = fs::read_dir(crate::jobs::JOB_DIR) else {
            return 0;
        };
        dir.flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
            .filter(|&pid| pid != own)
            .filter_map(crate::jobs::read)
            .filter(|rec| {
                rec.caller == uid
                    && crate::jobs::start_time(&rec.pid.to_string()) == Some(rec.start)
            })
            .count()
    }
}

/// Opens (creating it 0600) `/run/safexec/cgroup.<uid>.lock` with descriptor-relative calls
/// that follow no symlink, and checks that only root can open it: the directory is a
/// root-owned 0700 directory and the file a root-owned regular file.
fn open_lock_file(uid: u32) -> io::Result<OwnedFd> {
    let dir = sys::openat(
        None,
        c"/run/safexec",
        flags::O_RDONLY | flags::O_DIRECTORY | flags::O_NOFOLLOW,
        0,
    )?;
    let st = sys::fstat(dir.as_fd())?;
    if st.uid != 0 || !st.is_dir() || st.mode & 0o077 != 0 {
        return Err(io::Error::other(format!(
            "{LOCK_DIR} is not a root-only directory"
        )));
    }
    let name = CString::new(format!("cgroup.{uid}.lock")).map_err(io::Error::other)?;
    let fd = sys::openat(
        Some(dir.as_fd()),
        &name,
        flags::O_RDWR | flags::O_CREAT | flags::O_NOFOLLOW,
        0o600,
    )?;
    let st = sys::fstat(fd.as_fd())?;
    if st.uid != 0 || !st.is_file() || st.mode & 0o077 != 0 {
        return Err(io::Error::other(format!(
            "{LOCK_DIR}/cgroup.{uid}.lock is not a root-only file"
        )));
    }
    Ok(fd)
}

/// Takes caller `uid`'s placement lock, waiting at most `wait`.
fn lock_caller(fs: &mut dyn CgroupFs, uid: u32, wait: Duration) -> Result<TryLock, String> {
    let deadline = Instant::now() + wait;
    loop {
        match fs.try_lock_caller(uid) {
            Ok(TryLock::Busy) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Ok(TryLock::Busy) => {
                return Err(format!(
                    "cannot lock {LOCK_DIR}/cgroup.{uid}.lock: another run of this caller has \
                     held it for {} s",
                    wait.as_secs_f32()
                ))
            }
            Ok(held) => return Ok(held),
            Err(e) => return Err(format!("cannot lock {LOCK_DIR}/cgroup.{uid}.lock: {e}")),
        }
    }
}

/// Finds the hierarchies to use on this host for `cfg`. A v1 hierarchy whose controllers have
/// nothing configured is left out, and so is a hybrid host's v2 tree when it offers none of
/// the controllers: joining those would cost a mkdir, writes and an rmdir per job and limit
/// nothing. `None` lists every hierarchy (for `--kill`, which must find any job's groups).
pub(crate) fn discover(cfg: Option<&Config>) -> Vec<Hier> {
    let all = vec![Ctl::Memory, Ctl::Pids, Ctl::Cpu];
    let wanted = |ctls: &[Ctl]| -> Vec<Ctl> {
        ctls.iter()
            .copied()
            .filter(|c| cfg.is_none_or(|cfg| c.wanted(cfg)))
            .collect()
    };
    if hierarchies::is_cgroup2_unified_mode() {
        return vec![Hier {
            mount: PathBuf::from(hierarchies::UNIFIED_MOUNTPOINT),
            version: Version::V2,
            ctls: wanted(&all),
        }];
    }
    let v1 = hierarchies::V1::new();
    let mut out: Vec<Hier> = Vec::new();
    for (ctl, c) in [
        (Ctl::Memory, Controllers::Mem),
        (Ctl::Pids, Controllers::Pids),
        (Ctl::Cpu, Controllers::Cpu),
    ] {
        let Some(mount) = v1.get_mount_point(c) else {
            continue;
        };
        match out.iter_mut().find(|h| h.mount == mount) {
            Some(h) => h.ctls.push(ctl),
            None => out.push(Hier {
                mount,
                version: Version::V1,
                ctls: vec![ctl],
            }),
        }
    }
    for h in &mut out {
        h.ctls = wanted(&h.ctls);
    }
    out.retain(|h| !h.ctls.is_empty());
    // A hybrid host's v2 tree normally has none of these controllers (they are bound to v1).
    if let Some(mount) = fs::read_to_string("/proc/self/mountinfo")
        .ok()
        .and_then(|text| cgroup2_mount(&text))
    {
        let offered =
            words(&fs::read_to_string(mount.join("cgroup.controllers")).unwrap_or_default());
        if cfg.is_none() || all.iter().any(|c| offered.contains(c.name())) {
            out.push(Hier {
                mount,
                version: Version::V2,
                ctls: wanted(&all),
            });
        }
    }
    out
}

/// The first cgroup2 mount point in a mountinfo text (cgroups-rs only lists v1 mounts).
pub(crate) fn cgroup2_mount(mountinfo: &str) -> Option<PathBuf> {
    mountinfo.lines().find_map(|line| {
        let (left, right) = line.split_once(" - ")?;
        if right.split(' ').next()? != "cgroup2" {
            return None;
        }
        let mount = left.split(' ').nth(4)?;
        // mountinfo escapes blanks as \040; such a mount point is not worth supporting.
        (!mount.contains('\\') && mount.starts_with('/')).then(|| PathBuf::from(mount))
    })
}

fn job_name(pid: u32) -> String {
    format!("nppp.{pid}")
}

fn caller_name(uid: u32) -> String {
    format!("caller.{uid}")
}

/// The pid in a job group's name, if the name is exactly `nppp.<digits>`.
fn job_pid(name: &str) -> Option<u32> {
    let digits = name.strip_prefix("nppp.")?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

fn has_members(fs: &mut dyn CgroupFs, dir: &Path, version: Version) -> io::Result<bool> {
    match version {
        Version::V2 => {
            let events = fs.read(&dir.join("cgroup.events"))?;
            Ok(!events.lines().any(|l| l.trim() == "populated 0"))
        }
        Version::V1 => Ok(!fs.read(&dir.join("cgroup.procs"))?.trim().is_empty()),
    }
}

fn words(text: &str) -> BTreeSet<String> {
    text.split_whitespace().map(str::to_string).collect()
}

/// Creates the parent path below the mount (the configured parent, then the caller's own
/// level) and, on v2, enables the wanted controllers on each level below the root. Returns
/// the controllers the job groups will have. The root's own `cgroup.subtree_control` is never
/// written (spec §7.1-F): what the root does not delegate, the job does not get.
fn ensure_parent(fs: &mut dyn CgroupFs, h: &Hier, parent_rel: &Path) -> Result<Vec<Ctl>, String> {
    let mut dir = h.mount.clone();
    for component in parent_rel.iter() {
        dir.push(component);
        match fs.mkdir(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(format!("cannot create {}: {e}", dir.display())),
        }
        if h.version == Version::V2 {
            let available = words(&fs.read(&dir.join("cgroup.controllers")).unwrap_or_default());
            let enabled = words(
                &fs.read(&dir.join("cgroup.subtree_control"))
                    .unwrap_or_default(),
            );
            for ctl in &h.ctls {
                if available.contains(ctl.name()) && !enabled.contains(ctl.name()) {
                    // Refusals (e.g. EBUSY when the level has member processes) only mean the
                    // controller stays off; the re-read below is what counts.
                    let _ = fs.write_once(
                        &dir.join("cgroup.subtree_control"),
                        format!("+{}\n", ctl.name()).as_bytes(),
                    );
                }
            }
        }
    }
    Ok(match h.version {
        Version::V1 => h.ctls.clone(),
        Version::V2 => {
            let enabled = words(
                &fs.read(&dir.join("cgroup.subtree_control"))
                    .unwrap_or_default(),
            );
            h.ctls
                .iter()
                .copied()
                .filter(|c| enabled.contains(c.name()))
                .collect()
        }
    })
}

/// Removes empty job groups whose process is gone; returns the removed paths and the names of
/// the groups that remain (the caller's running jobs). Runs under the caller's lock, so it
/// cannot remove the group another run has created but not yet joined (spec §7.2-2).
fn sweep(
    fs: &mut dyn CgroupFs,
    parent: &Path,
    version: Version,
    own: u32,
) -> (Vec<PathBuf>, usize) {
    let mut removed = Vec::new();
    let mut running = 0;
    for name in fs.subdirs(parent).unwrap_or_default() {
        let Some(pid) = job_pid(&name) else { continue };
        if pid == own {
            continue;
        }
        let dir = parent.join(&name);
        if fs.alive(pid) || has_members(fs, &dir, version).unwrap_or(true) {
            running += 1;
            continue;
        }
        if fs.rmdir(&dir).is_ok() {
            removed.push(dir);
        } else {
            running += 1;
        }
    }
    (removed, running)
}

/// How a written value must read back.
#[derive(Debug, Clone, Copy)]
enum Expect<'a> {
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
fn set_verified(
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
fn apply_caller_limits(
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
fn apply_limits(
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

/// A hierarchy whose per-caller parent is ready.
struct Prepared<'h> {
    hier: &'h Hier,
    caller_dir: PathBuf,
    ctls: Vec<Ctl>,
}

/// Phase 1 in one hierarchy: the configured parent and the caller's parent exist with the
/// caller's limits, and the caller's stale groups are gone. Returns how many of the caller's
/// jobs are still running there.
fn prepare_one<'h>(
    fs: &mut dyn CgroupFs,
    h: &'h Hier,
    cfg: &Config,
    caller: u32,
    pid: u32,
    notes: &mut Vec<String>,
) -> Result<(Prepared<'h>, usize), String> {
    let rel = Path::new(&cfg.cgroup_parent).join(caller_name(caller));
    let ctls = ensure_parent(fs, h, &rel)?;
    let caller_dir = h.mount.join(&rel);
    apply_caller_limits(fs, &caller_dir, h.version, &ctls, &cfg.caller_limits)?;
    let (removed, running) = sweep(fs, &caller_dir, h.version, pid);
    for dir in removed {
        notes.push(format!("removed empty stale cgroup {}", dir.display()));
    }
    Ok((
        Prepared {
            hier: h,
            caller_dir,
            ctls,
        },
        running,
    ))
}

/// Phase 2 in one hierarchy: creates, limits and joins the job group.
fn join_one(
    fs: &mut dyn CgroupFs,
    p: &Prepared<'_>,
    limits: &Limits,
    pid: u32,
) -> Result<PathBuf, String> {
    let job = p.caller_dir.join(job_name(pid));
    if fs.exists(&job) {
        // Left by an earlier process with our (reused) pid. Joining it would inherit whatever
        // that job left running and whatever limits it had.
        if has_members(fs, &job, p.hier.version).unwrap_or(true) {
            return Err(format!("{} exists and is not empty", job.display()));
        }
        fs.rmdir(&job)
            .map_err(|e| format!("cannot remove stale {}: {e}", job.display()))?;
    }
    fs.mkdir(&job)
        .map_err(|e| format!("cannot create {}: {e}", job.display()))?;
    let joined = (|| {
        for &ctl in &p.ctls {
            apply_limits(fs, &job, p.hier.version, ctl, limits)?;
        }
        join_verified(fs, &job, p.hier.version, pid)
    })();
    match joined {
        Ok(()) => Ok(job),
        Err(e) => {
            // Not joined, so the group is empty and can go now instead of at the next sweep.
            let _ = fs.rmdir(&job);
            Err(e)
        }
    }
}

/// Moves the process in and checks that it is listed in `cgroup.procs`.
fn join_verified(
    fs: &mut dyn CgroupFs,
    job: &Path,
    version: Version,
    pid: u32,
) -> Result<(), String> {
    let procs = job.join("cgroup.procs");
    fs.apply(job, version, Op::AddProc(pid))
        .map_err(|e| format!("cannot move to {}: {e}", job.display()))?;
    let members = fs
        .read(&procs)
        .map_err(|e| format!("cannot read {}: {e}", procs.display()))?;
    let me = pid.to_string();
    if members.split_whitespace().any(|m| m == me) {
        Ok(())
    } else {
        Err(format!(
            "pid {pid} is not listed in {} after the move",
            procs.display()
        ))
    }
}

/// The refusal when a caller already runs `caller_jobs_max` jobs.
fn too_many_jobs(running: usize, max: u32) -> String {
    format!(
        "too many jobs: this caller already has {running} running (caller_jobs_max = {max}); \
         try again when one has finished"
    )
}

/// Creates `<parent>/caller.<uid>/nppp.<pid>` in every usable hierarchy (the caller is the
/// real uid), writes the configured limits (one write each, read back and verified) and moves
/// the calling process in. Refuses the job when the caller already runs `caller_jobs_max`
/// jobs. Runs as root.
///
/// With [`Detach::Auto`] a hierarchy that cannot be used is noted and skipped; the limits it
/// would have enforced are left to [`super::lower_rlimits`]. With [`Detach::Required`] any
/// configured limit that no cgroup enforces is an error.
pub fn place_in_cgroup(cfg: &Config, pid: u32, detach: Detach) -> Result<Placement, String> {
    let caller = sys::getuid().0;
    place_with(
        &mut RealFs,
        &discover(Some(cfg)),
        cfg,
        caller,
        pid,
        detach,
        LOCK_WAIT,
    )
}

pub(crate) fn place_with(
    fs: &mut dyn CgroupFs,
    hiers: &[Hier],
    cfg: &Config,
    caller: u32,
    pid: u32,
    detach: Detach,
    wait: Duration,
) -> Result<Placement, String> {
    let mut placement = Placement::default();
    // Held until placement returns: sweep, count, create and join are one step for other runs
    // of this caller.
    let _lock = lock_caller(fs, caller, wait)?;
    let mut prepared = Vec::new();
    let mut running = None;
    for h in hiers {
        match prepare_one(fs, h, cfg, caller, pid, &mut placement.notes) {
            Ok((p, n)) => {
                prepared.push(p);
                running = Some(running.unwrap_or(0).max(n));
            }
            Err(e) => placement.notes.push(format!(
                "cgroup hierarchy {} not used: {e}",
                h.mount.display()
            )),
        }
    }
    // Without any cgroup the root-owned job records are what is left to count.
    let running = running.unwrap_or_else(|| fs.recorded_jobs(caller, pid));
    let max = cfg.caller_limits.jobs_max;
    if running >= max as usize {
        return Err(too_many_jobs(running, max));
    }
    let mut active: BTreeSet<Ctl> = BTreeSet::new();
    for p in &prepared {
        match join_one(fs, p, &cfg.limits, pid) {
            Ok(job) => {
                placement.groups.push(job);
                active.extend(p.ctls.iter().copied());
            }
            Err(e) => placement.notes.push(format!(
                "cgroup hierarchy {} not used: {e}",
                p.hier.mount.display()
            )),
        }
    }
    let limits = &cfg.limits;
    placement.enforced = Enforced {
        memory: limits.memory_max.is_none() || active.contains(&Ctl::Memory),
        pids: limits.pids_max.is_none() || active.contains(&Ctl::Pids),
        cpu: (limits.cpu_weight.is_none() && limits.cpu_quota_percent.is_none())
            || active.contains(&Ctl::Cpu),
    };
    if detach == Detach::Required {
        let e = placement.enforced;
        if hiers.is_empty() {
            return Err("cgroup v2 requested but not available".to_string());
        }
        if placement.groups.is_empty() || !(e.memory && e.pids && e.cpu) {
            let mut why = placement.notes.join("; ");
            if why.is_empty() {
                why = format!("limits not enforced by a cgroup: {e:?}");
            }
            return Err(format!("cgroup v2 requested but join failed: {why}"));
        }
    }
    Ok(placement)
}

/// The job groups of job `pid` in one hierarchy: `<parent>/caller.<uid>/nppp.<pid>` of the
/// caller its root-owned record names; without a record, the `caller.*/nppp.<pid>` groups
/// that list `pid` as a member (a group of that name under another caller belongs to an
/// earlier job with the same pid and is not this job's).
fn job_groups(parent: &Path, pid: u32, caller: Option<u32>) -> Vec<PathBuf> {
    if let Some(uid) = caller {
        let job = parent.join(caller_name(uid)).join(job_name(pid));
        return if job.is_dir() { vec![job] } else { Vec::new() };
    }
    let Ok(dir) = fs::read_dir(parent) else {
        return Vec::new();
    };
    let me = pid.to_string();
    dir.flatten()
        .filter(|e| {
            e.file_name()
                .to_str()
                .and_then(|n| n.strip_prefix("caller."))
                .is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
        })
        .map(|e| e.path().join(job_name(pid)))
        .filter(|job| {
            fs::read_to_string(job.join("cgroup.procs"))
                .is_ok_and(|t| t.split_whitespace().any(|m| m == me))
        })
        .collect()
}

/// Signals every process of job `pid`'s groups except `pid` itself, which the caller signals
/// through its own pidfd after checking the job record. Each member is pinned with a pidfd and
/// then confirmed to still be listed in the group, so a pid reused between the listing and the
/// signal is never hit. Returns how many processes were signalled. Runs as root.
pub fn kill_job_cgroup(cfg: &Config, pid: u32, signal: i32) -> Result<usize, String> {
    let mut signalled = BTreeSet::new();
    // The record `--kill` has just checked names the caller, and so the caller's parent.
    let caller = crate::jobs::read(pid).map(|r| r.caller);
    for h in discover(None) {
        for job in job_groups(&h.mount.join(&cfg.cgroup_parent), pid, caller) {
            let procs = job.join("cgroup.procs");
            if signal == sys::SIGKILL && h.version == Version::V2 {
                // cgroup.kill (Linux 5.14+) kills every member atomically, including processes
                // forked while it runs, which a walk over cgroup.procs can miss.
                let members = fs::read_to_string(&procs).unwrap_or_default();
                if RealFs.write_once(&job.join("cgroup.kill"), b"1\n").is_ok() {
                    signalled.extend(
                        members
                            .split_whitespace()
                            .filter_map(|m| m.parse::<u32>().ok()),
                    );
                    continue;
                }
            }
            let Ok(text) = fs::read_to_string(&procs) else {
                continue;
            };
            for member in text
                .split_whitespace()
                .filter_map(|m| m.parse::<u32>().ok())
            {
                if member == pid || signalled.contains(&member) {
                    continue;
                }
                let Ok(fd) = sys::pidfd_open(member as i32) else {
                    continue;
                };
                let still = fs::read_to_string(&procs)
                    .map(|t| t.split_whitespace().any(|m| m == member.to_string()))
                    .unwrap_or(false);
                if still && sys::pidfd_send_signal(fd.as_fd(), signal).is_ok() {
                    signalled.insert(member);
                }
            }
        }
    }
    Ok(signalled.len())
}

#[cfg(test)]
#[path = "cgroup_tests.rs"]
mod tests;
