//! The thin system layer: the only module that calls libc or contains `unsafe`.
//!
//! Calls go through `nix`'s safe wrappers wherever it has them; raw `libc` remains only for
//! what nix 0.25 (the version `cgroups-rs` pins, kept single in the tree) lacks: `prctl`,
//! `pidfd_open`, `pidfd_send_signal`, `close_range`, `rt_sigaction` for the glibc-reserved
//! signals, `getpriority`/`setpriority`, and adopting a returned descriptor as an `OwnedFd`.
//! Every function is a small typed wrapper returning `io::Result`. The privilege steps are also
//! exposed through the [`Sys`] trait so the drop pipeline can be unit-tested with a recording
//! double, without root (the youki `Syscall` pattern).
#![allow(unsafe_code)]

mod fs;
mod process;

pub use fs::*;
pub use process::*;

use std::ffi::CString;
use std::io;
use std::os::fd::RawFd;

use nix::fcntl::AtFlags;
use nix::sys::signal::{SigSet, SigmaskHow};
use nix::unistd;

/// A user id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Uid(pub u32);

/// A group id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gid(pub u32);

impl From<Uid> for unistd::Uid {
    fn from(u: Uid) -> Self {
        unistd::Uid::from_raw(u.0)
    }
}

impl From<Gid> for unistd::Gid {
    fn from(g: Gid) -> Self {
        unistd::Gid::from_raw(g.0)
    }
}

/// The part of `struct stat` the trust checks need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Full `st_mode` (type and permission bits).
    pub mode: u32,
}

impl Stat {
    /// A directory.
    pub fn is_dir(&self) -> bool {
        self.mode & libc::S_IFMT == libc::S_IFDIR
    }
    /// A regular file.
    pub fn is_file(&self) -> bool {
        self.mode & libc::S_IFMT == libc::S_IFREG
    }
    /// A symbolic link.
    pub fn is_symlink(&self) -> bool {
        self.mode & libc::S_IFMT == libc::S_IFLNK
    }
}

/// nix errors are errnos; callers see `io::Error` only.
pub(crate) fn nx<T>(r: nix::Result<T>) -> io::Result<T> {
    r.map_err(io::Error::from)
}

/// Converts a `-1` return of a raw call into the thread's errno.
fn cvt(ret: libc::c_long) -> io::Result<libc::c_long> {
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// The privilege steps of the drop pipeline, behind a trait so a recording double can assert
/// the exact call sequence without root.
pub trait Sys {
    /// `setgroups(2)` with exactly these supplementary groups.
    fn setgroups(&mut self, groups: &[Gid]) -> io::Result<()>;
    /// `setresgid(g, g, g)`.
    fn setresgid(&mut self, gid: Gid) -> io::Result<()>;
    /// `setresuid(u, u, u)`.
    fn setresuid(&mut self, uid: Uid) -> io::Result<()>;
    /// Real, effective and saved user ids.
    fn getresuid(&mut self) -> io::Result<[Uid; 3]>;
    /// Real, effective and saved group ids.
    fn getresgid(&mut self) -> io::Result<[Gid; 3]>;
    /// Supplementary groups.
    fn getgroups(&mut self) -> io::Result<Vec<Gid>>;
    /// Tries `setuid(0)`; returns true when it failed, as it must after a drop.
    fn regain_root_fails(&mut self) -> bool;
    /// `prctl(PR_SET_NO_NEW_PRIVS, 1)`.
    fn set_no_new_privs(&mut self) -> io::Result<()>;
    /// Every catchable signal back to SIG_DFL (SIGHUP to SIG_IGN when `ignore_hup`), mask empty.
    fn reset_signals(&mut self, ignore_hup: bool) -> io::Result<()>;
    /// Closes every fd >= 3 except `keep` (the tool's descriptor, itself close-on-exec).
    fn close_fds_from_3(&mut self, keep: RawFd) -> io::Result<()>;
    /// `execveat(fd, "", argv, envp, AT_EMPTY_PATH)`; returns only on failure.
    fn execveat(&mut self, fd: RawFd, argv: &[CString], envp: &[CString]) -> io::Error;
}

/// The real implementation of [`Sys`].
#[derive(Debug, Default)]
pub struct Linux;

impl Sys for Linux {
    fn setgroups(&mut self, groups: &[Gid]) -> io::Result<()> {
        let groups: Vec<unistd::Gid> = groups.iter().map(|&g| g.into()).collect();
        nx(unistd::setgroups(&groups))
    }

    fn setresgid(&mut self, gid: Gid) -> io::Result<()> {
        let g = gid.into();
        nx(unistd::setresgid(g, g, g))
    }

    fn setresuid(&mut self, uid: Uid) -> io::Result<()> {
        let u = uid.into();
        nx(unistd::setresuid(u, u, u))
    }

    fn getresuid(&mut self) -> io::Result<[Uid; 3]> {
        let r = nx(unistd::getresuid())?;
        Ok([r.real, r.effective, r.saved].map(|u| Uid(u.as_raw())))
    }

    fn getresgid(&mut self) -> io::Result<[Gid; 3]> {
        let r = nx(unistd::getresgid())?;
        Ok([r.real, r.effective, r.saved].map(|g| Gid(g.as_raw())))
    }

    fn getgroups(&mut self) -> io::Result<Vec<Gid>> {
        Ok(nx(unistd::getgroups())?
            .into_iter()
            .map(|g| Gid(g.as_raw()))
            .collect())
    }

    fn regain_root_fails(&mut self) -> bool {
        unistd::setuid(unistd::Uid::from_raw(0)).is_err()
    }

    fn set_no_new_privs(&mut self) -> io::Result<()> {
        prctl(libc::PR_SET_NO_NEW_PRIVS, 1).map(drop)
    }

    fn reset_signals(&mut self, ignore_hup: bool) -> io::Result<()> {
        for sig in 1..=64 {
            if sig == libc::SIGKILL || sig == libc::SIGSTOP {
                continue;
            }
            reset_disposition(sig, ignore_hup && sig == libc::SIGHUP)?;
        }
        nx(nix::sys::signal::sigprocmask(
            SigmaskHow::SIG_SETMASK,
            Some(&SigSet::empty()),
            None,
        ))
    }

    fn close_fds_from_3(&mut self, keep: RawFd) -> io::Result<()> {
        let keep = keep as libc::c_uint;
        if keep > 3 {
            close_range(3, keep - 1)?;
        }
        close_range(keep.max(2) + 1, libc::c_uint::MAX)
    }

    fn execveat(&mut self, fd: RawFd, argv: &[CString], envp: &[CString]) -> io::Error {
        // The empty path with AT_EMPTY_PATH executes `fd` itself: the pinned inode, never a
        // path resolved again.
        match unistd::execveat(fd, c"", argv, envp, AtFlags::AT_EMPTY_PATH) {
            Err(e) => e.into(),
            Ok(never) => match never {},
        }
    }
}

/// Sets one signal's disposition to SIG_DFL (or SIG_IGN) with the raw `rt_sigaction`
/// syscall: glibc's `sigaction` (and so nix's) refuses its reserved signals 32 and 33
/// (EINVAL), but an ignored disposition of those is inherited across exec just the same.
fn reset_disposition(sig: libc::c_int, ignore: bool) -> io::Result<()> {
    #[repr(C)]
    struct KernelSigaction {
        handler: usize,
        flags: libc::c_ulong,
        restorer: usize,
        mask: u64,
    }
    let sa = KernelSigaction {
        handler: if ignore { libc::SIG_IGN } else { libc::SIG_DFL },
        flags: 0,
        restorer: 0,
        mask: 0,
    };
    // SAFETY: `sa` matches the kernel's struct sigaction on x86_64 and aarch64 (handler,
    // flags, restorer, 64-bit mask) and outlives the call; SIG_DFL/SIG_IGN install no code;
    // the old action is not requested.
    cvt(unsafe {
        libc::syscall(
            libc::SYS_rt_sigaction,
            sig,
            &sa as *const KernelSigaction,
            std::ptr::null_mut::<KernelSigaction>(),
            8usize,
        )
    })
    .map(drop)
}

/// `close_range(first, last, 0)`, with a `/proc/self/fd` walk when the kernel lacks it.
fn close_range(first: libc::c_uint, last: libc::c_uint) -> io::Result<()> {
    if first > last {
        return Ok(());
    }
    // SAFETY: closing descriptors has no memory-safety impact; nothing in this single-threaded
    // process uses them afterwards (callers only keep fds outside the range).
    let r = unsafe { libc::syscall(libc::SYS_close_range, first, last, 0) };
    if r == 0 {
        return Ok(());
    }
    let err = io::Error::last_os_error();
    if err.raw_os_error() != Some(libc::ENOSYS) {
        return Err(err);
    }
    let fds: Vec<libc::c_uint> = std::fs::read_dir("/proc/self/fd")?
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect();
    for fd in fds {
        if fd >= first && fd <= last {
            let _ = unistd::close(fd as RawFd);
        }
    }
    Ok(())
}

/// SIGTERM's number.
pub const SIGTERM: i32 = libc::SIGTERM;
/// SIGKILL's number.
pub const SIGKILL: i32 = libc::SIGKILL;

/// Flags for the directory walk and the tool descriptor.
pub mod flags {
    /// Path-only descriptor.
    pub const O_PATH: i32 = libc::O_PATH;
    /// Do not follow a final symlink.
    pub const O_NOFOLLOW: i32 = libc::O_NOFOLLOW;
    /// Must be a directory.
    pub const O_DIRECTORY: i32 = libc::O_DIRECTORY;
    /// Read only.
    pub const O_RDONLY: i32 = libc::O_RDONLY;
    /// Write only.
    pub const O_WRONLY: i32 = libc::O_WRONLY;
    /// Read and write.
    pub const O_RDWR: i32 = libc::O_RDWR;
    /// Create.
    pub const O_CREAT: i32 = libc::O_CREAT;
    /// Fail if it exists.
    pub const O_EXCL: i32 = libc::O_EXCL;
    /// errno: exists.
    pub const EEXIST: i32 = libc::EEXIST;
    /// errno: no such entry.
    pub const ENOENT: i32 = libc::ENOENT;
    /// errno: no such process.
    pub const ESRCH: i32 = libc::ESRCH;
    /// errno: operation not permitted.
    pub const EPERM: i32 = libc::EPERM;
    /// errno: try again (a lock is held).
    pub const EWOULDBLOCK: i32 = libc::EWOULDBLOCK;
}
