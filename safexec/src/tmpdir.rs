//! The private per-job directory: every setuid job's working directory, and what wget's
//! `-P /tmp` becomes.
//!
//! The base `/run/safexec-jobs` lives in a directory only root can create entries in (`/run`),
//! so no other account can create it first (a squatted `/tmp/nppp-cache` once disabled the
//! private directory, issue 15 class 5). It is root-owned 0711: job users may traverse it, not
//! list it or create in it. Each job gets `job.<pid>.<starttime>`, freshly created, empty, 0700,
//! owned by the job user. Everything is created as root with `*at()` calls on verified
//! directory descriptors and `O_NOFOLLOW`. When any of this fails the job is refused: there is
//! no fallback to a shared or caller-chosen directory.
#![forbid(unsafe_code)]

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use crate::sys::{self, flags, Gid, Uid};

/// Parent of the per-job directories.
pub const BASE: &str = "/run/safexec-jobs";

/// A job's private directory.
#[derive(Debug)]
pub struct JobDir {
    /// Its path (what `-P /tmp` is rewritten to).
    pub path: String,
    /// The directory itself, opened right after it was created: the job's cwd is set from
    /// this descriptor, never from the path.
    pub fd: OwnedFd,
}

fn io_err(what: &str, e: impl std::fmt::Display) -> String {
    format!("{what}: {e}")
}

fn open_base(create: bool) -> Result<OwnedFd, String> {
    let run = sys::openat(
        None,
        c"/run",
        flags::O_PATH | flags::O_DIRECTORY | flags::O_NOFOLLOW,
        0,
    )
    .map_err(|e| io_err("/run", e))?;
    let rst = sys::fstat(run.as_fd()).map_err(|e| io_err("/run", e))?;
    if rst.uid != 0 || rst.mode & 0o022 != 0 {
        return Err("/run is not root-owned or is writable by others".to_string());
    }
    if create {
        match sys::mkdirat(run.as_fd(), c"safexec-jobs", 0o711) {
            Err(e) if e.raw_os_error() != Some(flags::EEXIST) => return Err(io_err(BASE, e)),
            _ => {}
        }
    }
    let base = sys::openat(
        Some(run.as_fd()),
        c"safexec-jobs",
        flags::O_RDONLY | flags::O_DIRECTORY | flags::O_NOFOLLOW,
        0,
    )
    .map_err(|e| io_err(BASE, e))?;
    let bst = sys::fstat(base.as_fd()).map_err(|e| io_err(BASE, e))?;
    if bst.uid != 0 || !bst.is_dir() {
        return Err(format!("{BASE} is not a root-owned directory"));
    }
    if bst.mode & 0o7777 != 0o711 {
        sys::fchmod(base.as_fd(), 0o711).map_err(|e| io_err(BASE, e))?;
    }
    Ok(base)
}

/// Creates the job's directory, owned by `uid:gid`; `Err` is the reason, for a fatal message.
pub fn prepare(pid: u32, start: u64, uid: Uid, gid: Gid) -> Result<JobDir, String> {
    let base = open_base(true)?;
    let name = format!("job.{pid}.{start}");
    let path = format!("{BASE}/{name}");
    let cname = CString::new(name).map_err(|_| "bad name".to_string())?;
    // mkdirat fails on an existing name: the directory is always fresh and empty.
    sys::mkdirat(base.as_fd(), &cname, 0o700).map_err(|e| io_err(&path, e))?;
    let job = sys::openat(
        Some(base.as_fd()),
        &cname,
        flags::O_RDONLY | flags::O_DIRECTORY | flags::O_NOFOLLOW,
        0,
    )
    .map_err(|e| io_err(&path, e))?;
    sys::fchown(job.as_fd(), uid, gid).map_err(|e| io_err(&path, e))?;
    sys::fchmod(job.as_fd(), 0o700).map_err(|e| io_err(&path, e))?;
    Ok(JobDir { path, fd: job })
}

/// Cleans up job directories whose process is gone (pid dead or reused). As root, only empty
/// ones are removed (`rmdir` through the verified directory descriptor); the names of the
/// others are returned, and [`remove_stale`] empties them after the drop with the job user's
/// rights, so the next job's `rmdir` finishes them. Listing needs root: the base is 0711.
pub fn stale_job_dirs() -> Vec<String> {
    let Ok(base) = open_base(false) else {
        return Vec::new();
    };
    // Listing through the descriptor: the directory checked above is the one read.
    let Ok(entries) = std::fs::read_dir(format!("/proc/self/fd/{}", base.as_raw_fd())) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|name| {
            let mut parts = name.strip_prefix("job.").unwrap_or("").splitn(2, '.');
            let (Some(pid), Some(start)) = (parts.next(), parts.next()) else {
                return false;
            };
            let (Ok(_), Ok(start)) = (pid.parse::<u32>(), start.parse::<u64>()) else {
                return false;
            };
            crate::jobs::start_time(pid) != Some(start)
        })
        .filter(|name| {
            let gone =
                CString::new(name.as_str()).is_ok_and(|c| sys::rmdirat(base.as_fd(), &c).is_ok());
            !gone
        })
        .collect()
}

/// Empties the given stale job directories with the current (dropped) ids; directories of
/// other users simply fail to open. Symlinks are removed, never followed (`remove_dir_all`
/// and `remove_file` do not follow them).
pub fn remove_stale(names: &[String]) {
    for name in names {
        let Ok(entries) = std::fs::read_dir(format!("{BASE}/{name}")) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            let _ = match e.file_type() {
                Ok(t) if t.is_dir() => std::fs::remove_dir_all(&p),
                _ => std::fs::remove_file(&p),
            };
        }
    }
}
