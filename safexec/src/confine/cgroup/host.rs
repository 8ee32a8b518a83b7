//! The host side of cgroup placement: the real cgroup file systems (writes through
//! cgroups-rs's controllers), the root-only lock file, discovery of the hierarchies, and
//! `--kill`'s walk over a job's groups.
#![forbid(unsafe_code)]

use std::collections::BTreeSet;
use std::ffi::CString;
use std::fs::{self, File};
use std::io::{self, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use cgroups_rs::cpu::CpuController;
use cgroups_rs::hierarchies;
use cgroups_rs::memory::MemController;
use cgroups_rs::pid::PidController;
use cgroups_rs::{CgroupPid, Controller, Controllers, MaxValue};

use super::{caller_name, job_name, words, CgroupFs, Ctl, Hier, Op, TryLock, Version};
use crate::config::Config;
use crate::sys::{self, flags};

/// cgroups-rs reports errors as its own type with the `io::Error` as the source.
fn crate_error(e: cgroups_rs::error::Error) -> io::Error {
    use std::error::Error as _;
    match e.source().and_then(|s| s.downcast_ref::<io::Error>()) {
        Some(io) => io::Error::new(io.kind(), io.to_string()),
        None => io::Error::other(e.to_string()),
    }
}

/// The real cgroup file systems.
pub(crate) struct RealFs;

/// Where the placement locks live: root's own 0700 directory, created by the job record.
pub(crate) const LOCK_DIR: &str = "/run/safexec";

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
