//! The private per-job directory that replaces wget's `-P /tmp` in setuid mode.
//!
//! `/tmp/nppp-cache` is root-owned 0711 (others may traverse, not list or create); each job gets
//! `/tmp/nppp-cache/job.<pid>.<starttime>`, 0700, owned by the job user. Everything is created
//! as root with `*at()` calls on verified directory descriptors and `O_NOFOLLOW`, so a symlink
//! or a directory planted by another user is never followed or adopted.
#![forbid(unsafe_code)]

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd};

use crate::sys::{self, flags, Gid, Uid};

/// Parent of the per-job directories.
pub const BASE: &str = "/tmp/nppp-cache";

/// Creates the job's directory and returns its path, or a warning text for the caller.
pub fn prepare(pid: u32, start: u64, uid: Uid, gid: Gid) -> Result<String, String> {
    let unsafe_base = |why: &str| crate::msg::unsafe_fallback(BASE, why);
    let tmp = sys::openat(
        None,
        c"/tmp",
        flags::O_PATH | flags::O_DIRECTORY | flags::O_NOFOLLOW,
        0,
    )
    .map_err(|e| unsafe_base(&format!("/tmp: {e}")))?;
    let tst = sys::fstat(tmp.as_fd()).map_err(|e| unsafe_base(&e.to_string()))?;
    if tst.uid != 0 {
        return Err(unsafe_base("/tmp is not root-owned"));
    }
    match sys::mkdirat(tmp.as_fd(), c"nppp-cache", 0o711) {
        Err(e) if e.raw_os_error() != Some(flags::EEXIST) => {
            return Err(unsafe_base(&e.to_string()))
        }
        _ => {}
    }
    let base = sys::openat(
        Some(tmp.as_fd()),
        c"nppp-cache",
        flags::O_RDONLY | flags::O_DIRECTORY | flags::O_NOFOLLOW,
        0,
    )
    .map_err(|e| unsafe_base(&e.to_string()))?;
    let bst = sys::fstat(base.as_fd()).map_err(|e| unsafe_base(&e.to_string()))?;
    if bst.uid != 0 || !bst.is_dir() {
        return Err(unsafe_base("not a root-owned directory"));
    }
    if bst.mode & 0o7777 != 0o711 {
        sys::fchmod(base.as_fd(), 0o711).map_err(|e| unsafe_base(&e.to_string()))?;
    }
    let name = format!("job.{pid}.{start}");
    let path = format!("{BASE}/{name}");
    let cname = CString::new(name).map_err(|_| unsafe_base("bad name"))?;
    let fail = |why: String| crate::msg::unsafe_fallback(&path, &why);
    sys::mkdirat(base.as_fd(), &cname, 0o700).map_err(|e| fail(e.to_string()))?;
    let job = sys::openat(
        Some(base.as_fd()),
        &cname,
        flags::O_RDONLY | flags::O_DIRECTORY | flags::O_NOFOLLOW,
        0,
    )
    .map_err(|e| fail(e.to_string()))?;
    sys::fchown(job.as_fd(), uid, gid).map_err(|e| fail(e.to_string()))?;
    sys::fchmod(job.as_fd(), 0o700).map_err(|e| fail(e.to_string()))?;
    Ok(path)
}

/// Cleans up job directories whose process is gone (pid dead or reused). As root, only empty
/// ones are removed (`rmdir` through the verified directory descriptor); the names of the
/// others are returned, and [`remove_stale`] empties them after the drop with the job user's
/// rights, so the next job's `rmdir` finishes them. Listing needs root: the parent is 0711.
pub fn stale_job_dirs() -> Vec<String> {
    let Ok(base) = sys::openat(
        None,
        c"/tmp/nppp-cache",
        flags::O_RDONLY | flags::O_DIRECTORY | flags::O_NOFOLLOW,
        0,
    ) else {
        return Vec::new();
    };
    match sys::fstat(base.as_fd()) {
        Ok(st) if st.uid == 0 && st.is_dir() => {}
        _ => return Vec::new(),
    }
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
