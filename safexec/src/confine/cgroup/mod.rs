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
use std::ffi::OsStr;
use std::io;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::config::{Config, Limits};
use crate::sys;

mod host;
mod limits;

pub use host::kill_job_cgroup;
pub(crate) use host::{discover, RealFs, LOCK_DIR};
pub(crate) use limits::Op;
use limits::{apply_caller_limits, apply_limits};

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

#[cfg(test)]
mod tests;
