//! The private per-job directory that replaces wget's `-P /tmp` in setuid mode.
//!
//! `/tmp/nppp-cache` is root-owned 0711 (others may traverse, not list or create); each job gets
//! `/tmp/nppp-cache/job.<pid>.<starttime>`, 0700, owned by the job user. Everything is created
//! as root with `*at()` calls on verified directory descriptors and `O_NOFOLLOW`, so a symlink
//! or a directory planted by another user is never followed or adopted.
#![forbid(unsafe_code)]

use std::ffi::CString;
use std::os::fd::AsFd;

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
