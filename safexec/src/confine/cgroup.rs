//! cgroup placement: every job in its own group `<parent>/nppp.<pid>` with the configured
//! limits, on cgroup v1, v2 and hybrid hosts.
//!
//! cgroups-rs 0.3 finds the hierarchies (is the host unified? where is each v1 controller
//! mounted?). Creating groups, writing limits and joining are done here instead, because its
//! v2 `Cgroup::new` writes `+controller` into the *root* `cgroup.subtree_control`, its v1
//! `create` panics on a bad path and ignores mkdir errors (so an existing, populated group of
//! a reused PID would be joined), and its limit setters write without the newline and never
//! read back. Every file access goes through [`CgroupFs`], so the rules are unit-tested against
//! an in-memory cgroupfs.
#![forbid(unsafe_code)]

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use cgroups_rs::hierarchies;
use cgroups_rs::Controllers;

use crate::config::{Config, Limits};
use crate::sys;

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
    /// Names of the subdirectories.
    fn subdirs(&mut self, p: &Path) -> io::Result<Vec<String>>;
    /// An exclusive lock on a directory, held until the returned value is dropped.
    fn lock(&mut self, p: &Path) -> io::Result<Option<File>>;
    /// Whether a process with this pid exists.
    fn alive(&mut self, pid: u32) -> bool;
}

/// The real cgroup file systems.
pub(crate) struct RealFs;

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
    fn lock(&mut self, p: &Path) -> io::Result<Option<File>> {
        let dir = File::open(p)?;
        while !sys::try_flock_exclusive(std::os::fd::AsFd::as_fd(&dir))? {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        Ok(Some(dir))
    }
    fn alive(&mut self, pid: u32) -> bool {
        // Runs as root, so hidepid cannot hide a live process from this check.
        Path::new(&format!("/proc/{pid}")).exists()
    }
}

/// Finds the hierarchies to use on this host.
pub(crate) fn discover() -> Vec<Hier> {
    let all = vec![Ctl::Memory, Ctl::Pids, Ctl::Cpu];
    if hierarchies::is_cgroup2_unified_mode() {
        return vec![Hier {
            mount: PathBuf::from(hierarchies::UNIFIED_MOUNTPOINT),
            version: Version::V2,
            ctls: all,
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
    // A hybrid host's v2 tree normally has none of these controllers (they are bound to v1),
    // but joining it gives the job a group that `cgroup.kill` and `cgroup.events` work on.
    if let Some(mount) = fs::read_to_string("/proc/self/mountinfo")
        .ok()
        .and_then(|text| cgroup2_mount(&text))
    {
        out.push(Hier {
            mount,
            version: Version::V2,
            ctls: all,
        });
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

/// Creates the parent path below the mount and, on v2, enables the wanted controllers on each
/// level below the root. Returns the controllers the job groups will have. The root's own
/// `cgroup.subtree_control` is never written (spec §7.1-F): what the root does not delegate,
/// the job does not get.
fn ensure_parent(fs: &mut dyn CgroupFs, h: &Hier, parent_rel: &str) -> Result<Vec<Ctl>, String> {
    let mut dir = h.mount.clone();
    for component in parent_rel.split('/') {
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

/// Removes empty job groups whose process is gone; returns the removed paths. Runs under the
/// parent's lock, so it cannot remove the group another run has created but not yet joined
/// (spec §7.2-2); that group's pid is alive anyway.
fn sweep(fs: &mut dyn CgroupFs, parent: &Path, version: Version, own: u32) -> Vec<PathBuf> {
    let mut removed = Vec::new();
    for name in fs.subdirs(parent).unwrap_or_default() {
        let Some(pid) = job_pid(&name) else { continue };
        let dir = parent.join(&name);
        if pid == own || fs.alive(pid) || has_members(fs, &dir, version).unwrap_or(true) {
            continue;
        }
        if fs.rmdir(&dir).is_ok() {
            removed.push(dir);
        }
    }
    removed
}

/// How a written value must read back.
#[derive(Debug, Clone, Copy)]
enum Expect<'a> {
    Same(&'a str),
    /// Memory limits read back rounded down to a page; 64 KiB is the largest page size.
    BytesRoundedDown(u64),
}

fn write_verified(
    fs: &mut dyn CgroupFs,
    dir: &Path,
    file: &str,
    value: &str,
    expect: Expect<'_>,
) -> Result<(), String> {
    let path = dir.join(file);
    let line = format!("{value}\n");
    match fs.write_once(&path, line.as_bytes()) {
        Ok(n) if n == line.len() => {}
        Ok(n) => {
            return Err(format!(
                "short write to {}: {n} of {} bytes",
                path.display(),
                line.len()
            ))
        }
        Err(e) => return Err(format!("cannot write {value:?} to {}: {e}", path.display())),
    }
    let back = fs
        .read(&path)
        .map_err(|e| format!("cannot read back {}: {e}", path.display()))?;
    let back = back.trim();
    let ok = match expect {
        Expect::Same(want) => back == want,
        Expect::BytesRoundedDown(want) => back
            .parse::<u64>()
            .is_ok_and(|got| got <= want && want - got < 64 * 1024),
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{} reads back {back:?} after writing {value:?}",
            path.display()
        ))
    }
}

/// Writes one controller's limits into a fresh job group. Returns whether the controller now
/// enforces what the config asks (true when the config asks for nothing).
fn apply_limits(
    fs: &mut dyn CgroupFs,
    dir: &Path,
    version: Version,
    ctl: Ctl,
    limits: &Limits,
) -> Result<(), String> {
    match (version, ctl) {
        (_, Ctl::Memory) => {
            let Some(bytes) = limits.memory_max else {
                return Ok(());
            };
            let value = bytes.to_string();
            let (limit, swap, swap_value) = match version {
                // memsw is memory+swap, so the same value allows no swap on top.
                Version::V1 => (
                    "memory.limit_in_bytes",
                    "memory.memsw.limit_in_bytes",
                    value.as_str(),
                ),
                Version::V2 => ("memory.max", "memory.swap.max", "0"),
            };
            write_verified(fs, dir, limit, &value, Expect::BytesRoundedDown(bytes))?;
            // Swap accounting may be compiled out or disabled; then there is no file and no
            // swap to limit through it.
            if fs.exists(&dir.join(swap)) {
                let expect = match version {
                    Version::V1 => Expect::BytesRoundedDown(bytes),
                    Version::V2 => Expect::Same("0"),
                };
                write_verified(fs, dir, swap, swap_value, expect)?;
            }
            Ok(())
        }
        (_, Ctl::Pids) => match limits.pids_max {
            Some(n) => {
                let v = n.to_string();
                write_verified(fs, dir, "pids.max", &v, Expect::Same(&v))
            }
            None => Ok(()),
        },
        (Version::V1, Ctl::Cpu) => {
            if let Some(w) = limits.cpu_weight {
                // v1 shares: 1024 is the default as 100 is the default v2 weight; the kernel's
                // minimum is 2.
                let v = (u64::from(w) * 1024 / 100).max(2).to_string();
                write_verified(fs, dir, "cpu.shares", &v, Expect::Same(&v))?;
            }
            if let Some(pct) = limits.cpu_quota_percent {
                let period = fs
                    .read(&dir.join("cpu.cfs_period_us"))
                    .ok()
                    .and_then(|p| p.trim().parse::<u64>().ok())
                    .ok_or_else(|| format!("cannot read {}/cpu.cfs_period_us", dir.display()))?;
                let v = (u64::from(pct) * period / 100).max(1000).to_string();
                write_verified(fs, dir, "cpu.cfs_quota_us", &v, Expect::Same(&v))?;
            }
            Ok(())
        }
        (Version::V2, Ctl::Cpu) => {
            if let Some(w) = limits.cpu_weight {
                let v = w.to_string();
                write_verified(fs, dir, "cpu.weight", &v, Expect::Same(&v))?;
            }
            if let Some(pct) = limits.cpu_quota_percent {
                let v = format!("{} 100000", (u64::from(pct) * 1000).max(1000));
                write_verified(fs, dir, "cpu.max", &v, Expect::Same(&v))?;
            }
            Ok(())
        }
    }
}

/// Creates, limits and joins the job group in one hierarchy. Returns the group and the
/// controllers enforcing limits there, or why this hierarchy cannot be used.
fn place_one(
    fs: &mut dyn CgroupFs,
    h: &Hier,
    cfg: &Config,
    pid: u32,
    notes: &mut Vec<String>,
) -> Result<(PathBuf, Vec<Ctl>), String> {
    let ctls = ensure_parent(fs, h, &cfg.cgroup_parent)?;
    let parent = h.mount.join(&cfg.cgroup_parent);
    // Held until this function returns: sweep, create and join are one step for other runs.
    let _lock = fs
        .lock(&parent)
        .map_err(|e| format!("cannot lock {}: {e}", parent.display()))?;
    for dir in sweep(fs, &parent, h.version, pid) {
        notes.push(format!("removed empty stale cgroup {}", dir.display()));
    }
    let job = parent.join(job_name(pid));
    if fs.exists(&job) {
        // Left by an earlier process with our (reused) pid. Joining it would inherit whatever
        // that job left running and whatever limits it had.
        if has_members(fs, &job, h.version).unwrap_or(true) {
            return Err(format!("{} exists and is not empty", job.display()));
        }
        fs.rmdir(&job)
            .map_err(|e| format!("cannot remove stale {}: {e}", job.display()))?;
    }
    fs.mkdir(&job)
        .map_err(|e| format!("cannot create {}: {e}", job.display()))?;
    let joined = (|| {
        for &ctl in &ctls {
            apply_limits(fs, &job, h.version, ctl, &cfg.limits)?;
        }
        let me = pid.to_string();
        write_verified_member(fs, &job, &me)
    })();
    match joined {
        Ok(()) => Ok((job, ctls)),
        Err(e) => {
            // Not joined, so the group is empty and can go now instead of at the next sweep.
            let _ = fs.rmdir(&job);
            Err(e)
        }
    }
}

/// Moves the process in (one write of `<pid>\n` to `cgroup.procs`) and checks it is listed.
fn write_verified_member(fs: &mut dyn CgroupFs, job: &Path, pid: &str) -> Result<(), String> {
    let procs = job.join("cgroup.procs");
    let line = format!("{pid}\n");
    match fs.write_once(&procs, line.as_bytes()) {
        Ok(n) if n == line.len() => {}
        Ok(_) => return Err(format!("short write to {}", procs.display())),
        Err(e) => return Err(format!("cannot move to {}: {e}", job.display())),
    }
    let members = fs
        .read(&procs)
        .map_err(|e| format!("cannot read {}: {e}", procs.display()))?;
    if members.split_whitespace().any(|m| m == pid) {
        Ok(())
    } else {
        Err(format!(
            "pid {pid} is not listed in {} after the move",
            procs.display()
        ))
    }
}

/// Creates `<parent>/nppp.<pid>` in every usable hierarchy, writes the configured limits (one
/// write each, read back and verified) and moves the calling process in. Runs as root.
///
/// With [`Detach::Auto`] a hierarchy that cannot be used is noted and skipped; the limits it
/// would have enforced are left to [`super::lower_rlimits`]. With [`Detach::Required`] any
/// configured limit that no cgroup enforces is an error.
pub fn place_in_cgroup(cfg: &Config, pid: u32, detach: Detach) -> Result<Placement, String> {
    place_with(&mut RealFs, &discover(), cfg, pid, detach)
}

pub(crate) fn place_with(
    fs: &mut dyn CgroupFs,
    hiers: &[Hier],
    cfg: &Config,
    pid: u32,
    detach: Detach,
) -> Result<Placement, String> {
    let mut placement = Placement::default();
    let mut active: BTreeSet<Ctl> = BTreeSet::new();
    for h in hiers {
        match place_one(fs, h, cfg, pid, &mut placement.notes) {
            Ok((job, ctls)) => {
                placement.groups.push(job);
                active.extend(ctls);
            }
            Err(e) => placement.notes.push(format!(
                "cgroup hierarchy {} not used: {e}",
                h.mount.display()
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
        if !(e.memory && e.pids && e.cpu) {
            let mut why = placement.notes.join("; ");
            if why.is_empty() {
                why = format!("limits not enforced by a cgroup: {e:?}");
            }
            return Err(format!("cgroup v2 requested but join failed: {why}"));
        }
    }
    Ok(placement)
}

/// Signals every process of job `pid`'s groups except `pid` itself, which the caller signals
/// through its own pidfd after checking the job record. Each member is pinned with a pidfd and
/// then confirmed to still be listed in the group, so a pid reused between the listing and the
/// signal is never hit. Returns how many processes were signalled. Runs as root.
pub fn kill_job_cgroup(cfg: &Config, pid: u32, signal: i32) -> Result<usize, String> {
    let mut signalled = BTreeSet::new();
    for h in discover() {
        let job = h.mount.join(&cfg.cgroup_parent).join(job_name(pid));
        let procs = job.join("cgroup.procs");
        if signal == libc::SIGKILL && h.version == Version::V2 {
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
            if still && sys::pidfd_send_signal(std::os::fd::AsFd::as_fd(&fd), signal).is_ok() {
                signalled.insert(member);
            }
        }
    }
    Ok(signalled.len())
}

#[cfg(test)]
#[path = "cgroup_tests.rs"]
mod tests;
