//! Process state: ids, prctl, rlimits, priority, pidfds.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::sys::resource::{self, Resource};
use nix::unistd;

use super::{cvt, nx, Gid, Uid};

/// Effective user id.
pub fn geteuid() -> Uid {
    Uid(unistd::geteuid().as_raw())
}

/// Real user id.
pub fn getuid() -> Uid {
    Uid(unistd::getuid().as_raw())
}

/// Real group id.
pub fn getgid() -> Gid {
    Gid(unistd::getgid().as_raw())
}

/// Effective group id.
pub fn getegid() -> Gid {
    Gid(unistd::getegid().as_raw())
}

/// Our own pid.
pub fn getpid() -> u32 {
    unistd::getpid().as_raw() as u32
}

/// `setfsgid(gid)` then `setfsuid(uid)`: file access as that identity while the real,
/// effective and saved ids stay. Returns the previous file-system ids; the calls cannot
/// report failure, so callers compare [`fs_ids`] afterwards.
pub fn set_fs_ids(uid: Uid, gid: Gid) -> (Uid, Gid) {
    let g = unistd::setfsgid(gid.into());
    let u = unistd::setfsuid(uid.into());
    (Uid(u.as_raw()), Gid(g.as_raw()))
}

/// The current file-system uid and gid (an invalid id changes nothing and returns them).
pub fn fs_ids() -> (Uid, Gid) {
    let u = unistd::setfsuid(unistd::Uid::from_raw(u32::MAX));
    let g = unistd::setfsgid(unistd::Gid::from_raw(u32::MAX));
    (Uid(u.as_raw()), Gid(g.as_raw()))
}

/// `prctl(option, arg, 0, 0, 0)` for the options that take one integer argument.
pub(crate) fn prctl(option: libc::c_int, arg: libc::c_ulong) -> io::Result<libc::c_int> {
    // SAFETY: every option used here (dumpable, no_new_privs, securebits, capbset) takes plain
    // integer arguments and no pointers; the unused trailing arguments are zero as the kernel
    // requires.
    let r = unsafe {
        libc::prctl(
            option,
            arg,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        )
    };
    cvt(r as libc::c_long).map(|v| v as libc::c_int)
}

/// Marks the process non-dumpable (no core, no same-uid ptrace) while it holds root.
pub fn set_dumpable(on: bool) -> io::Result<()> {
    prctl(libc::PR_SET_DUMPABLE, on as libc::c_ulong).map(drop)
}

/// Reads `PR_GET_NO_NEW_PRIVS`.
pub fn no_new_privs() -> bool {
    prctl(libc::PR_GET_NO_NEW_PRIVS, 0).is_ok_and(|v| v == 1)
}

/// `PR_GET_SECUREBITS`.
pub fn securebits() -> io::Result<u32> {
    prctl(libc::PR_GET_SECUREBITS, 0).map(|v| v as u32)
}

/// `PR_SET_SECUREBITS`.
pub fn set_securebits(bits: u32) -> io::Result<()> {
    prctl(libc::PR_SET_SECUREBITS, libc::c_ulong::from(bits)).map(drop)
}

/// `PR_CAPBSET_DROP`: removes one capability from the bounding set.
pub fn capbset_drop(cap: u32) -> io::Result<()> {
    prctl(libc::PR_CAPBSET_DROP, libc::c_ulong::from(cap)).map(drop)
}

/// `PR_CAPBSET_READ`: whether the bounding set still has the capability.
pub fn capbset_has(cap: u32) -> io::Result<bool> {
    prctl(libc::PR_CAPBSET_READ, libc::c_ulong::from(cap)).map(|v| v == 1)
}

/// A resource limit pair; `u64::MAX` is `RLIM_INFINITY`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rlimit {
    /// Soft limit.
    pub soft: u64,
    /// Hard limit.
    pub hard: u64,
}

/// The rlimits safexec sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RlimitKind {
    /// `RLIMIT_CORE`.
    Core,
    /// `RLIMIT_AS`.
    As,
    /// `RLIMIT_NPROC`.
    Nproc,
}

impl RlimitKind {
    fn resource(self) -> Resource {
        match self {
            RlimitKind::Core => Resource::RLIMIT_CORE,
            RlimitKind::As => Resource::RLIMIT_AS,
            RlimitKind::Nproc => Resource::RLIMIT_NPROC,
        }
    }
}

/// `getrlimit(kind)`.
pub fn getrlimit(kind: RlimitKind) -> io::Result<Rlimit> {
    let (soft, hard) = nx(resource::getrlimit(kind.resource()))?;
    Ok(Rlimit { soft, hard })
}

/// `setrlimit(kind, soft, hard)`.
pub fn setrlimit(kind: RlimitKind, value: Rlimit) -> io::Result<()> {
    nx(resource::setrlimit(kind.resource(), value.soft, value.hard))
}

/// Sets RLIMIT_CORE to 0 (soft and hard): lowering is always allowed.
pub fn no_core_dumps() -> io::Result<()> {
    setrlimit(RlimitKind::Core, Rlimit { soft: 0, hard: 0 })
}

/// The calling process's nice value.
pub fn getnice() -> io::Result<i32> {
    // getpriority may legitimately return -1, so errno is cleared first and checked after.
    nix::errno::Errno::clear();
    // SAFETY: plain integer arguments; `who` 0 is the calling process.
    let v = unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) };
    let err = io::Error::last_os_error();
    if v == -1 && err.raw_os_error() != Some(0) {
        return Err(err);
    }
    Ok(v)
}

/// Sets the calling process's nice value (raising it needs no privilege).
pub fn setnice(value: i32) -> io::Result<()> {
    // SAFETY: plain integer arguments; `who` 0 is the calling process.
    cvt(unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, value) } as libc::c_long).map(drop)
}

/// Adds `inc` to the nice value (what `nice` without options does with 10).
pub fn nice(inc: i32) -> io::Result<()> {
    setnice((getnice()? + inc).min(19))
}

/// `pidfd_open(pid, 0)`: a descriptor that keeps naming this process even if the pid is reused.
pub fn pidfd_open(pid: i32) -> io::Result<OwnedFd> {
    if pid <= 0 {
        return Err(io::Error::from_raw_os_error(libc::ESRCH));
    }
    // SAFETY: integer arguments; a non-negative return is a new descriptor.
    let fd = cvt(unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0 as libc::c_uint) })?;
    let fd = RawFd::try_from(fd).map_err(|_| io::Error::from_raw_os_error(libc::EBADF))?;
    // SAFETY: the kernel just returned this descriptor to us, so nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `pidfd_send_signal(fd, sig, NULL, 0)`; signal 0 only checks that the process is alive.
pub fn pidfd_send_signal(fd: BorrowedFd<'_>, sig: i32) -> io::Result<()> {
    // SAFETY: a live pidfd, a signal number, a null siginfo (the kernel fills in the
    // kill()-like default) and zero flags.
    cvt(unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            fd.as_raw_fd(),
            sig,
            std::ptr::null::<libc::siginfo_t>(),
            0 as libc::c_uint,
        )
    })
    .map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fs_ids_switch_and_restore() {
        let (u0, g0) = fs_ids();
        let prev = set_fs_ids(Uid(65534), Gid(65534));
        assert_eq!(prev, (u0, g0));
        // Needs root (as the setuid binary has it): unprivileged, the kernel would keep the ids.
        assert_eq!(fs_ids(), (Uid(65534), Gid(65534)));
        set_fs_ids(u0, g0);
        assert_eq!(fs_ids(), (u0, g0));
    }

    #[test]
    fn pidfd_of_self_is_alive_and_bad_pids_are_refused() {
        let fd = pidfd_open(getpid() as i32).unwrap();
        pidfd_send_signal(std::os::fd::AsFd::as_fd(&fd), 0).unwrap();
        assert!(pidfd_open(0).is_err());
        assert!(pidfd_open(-1).is_err());
    }
}
