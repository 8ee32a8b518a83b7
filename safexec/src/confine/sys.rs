//! The confinement code's thin system-call layer: every `unsafe` of `confine/` is here, one small
//! function per call, each returning `io::Result`.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use super::caps::{CapMasks, CapSys};

fn cvt(rc: libc::c_int) -> io::Result<libc::c_int> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

fn prctl2(option: libc::c_int, arg: libc::c_ulong) -> io::Result<libc::c_int> {
    // SAFETY: every prctl option used here takes plain integer arguments and no pointers; the
    // unused trailing arguments are zero as the kernel requires.
    cvt(unsafe {
        libc::prctl(
            option,
            arg,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        )
    })
}

/// The capability operations of the real kernel.
pub(crate) struct RealCaps;

impl CapSys for RealCaps {
    fn last_cap(&mut self) -> io::Result<u32> {
        let text = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")?;
        text.trim()
            .parse()
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "bad cap_last_cap"))
    }

    fn clear_ambient(&mut self) -> io::Result<()> {
        caps::clear(None, caps::CapSet::Ambient).map_err(io::Error::other)
    }

    fn clear_inheritable(&mut self) -> io::Result<()> {
        caps::clear(None, caps::CapSet::Inheritable).map_err(io::Error::other)
    }

    fn securebits(&mut self) -> io::Result<u32> {
        prctl2(libc::PR_GET_SECUREBITS, 0).map(|v| v as u32)
    }

    fn set_securebits(&mut self, bits: u32) -> io::Result<()> {
        prctl2(libc::PR_SET_SECUREBITS, libc::c_ulong::from(bits)).map(drop)
    }

    fn bounding_drop(&mut self, cap: u32) -> io::Result<()> {
        prctl2(libc::PR_CAPBSET_DROP, libc::c_ulong::from(cap)).map(drop)
    }

    fn bounding_has(&mut self, cap: u32) -> io::Result<bool> {
        prctl2(libc::PR_CAPBSET_READ, libc::c_ulong::from(cap)).map(|v| v == 1)
    }

    fn masks(&mut self) -> io::Result<CapMasks> {
        // capget through the caps crate for the sets it knows, and /proc/self/status for every
        // bit the kernel has (the crate cannot name capabilities newer than itself).
        let mut m = CapMasks::from_status(&std::fs::read_to_string("/proc/self/status")?)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no Cap lines in status"))?;
        for (set, mask) in [
            (caps::CapSet::Permitted, &mut m.permitted),
            (caps::CapSet::Effective, &mut m.effective),
            (caps::CapSet::Inheritable, &mut m.inheritable),
        ] {
            for cap in caps::read(None, set).map_err(io::Error::other)? {
                *mask |= cap.bitmask();
            }
        }
        Ok(m)
    }
}

/// Takes an exclusive `flock` on an open file, waiting for it; released when the file closes.
pub(crate) fn flock_exclusive(file: &std::fs::File) -> io::Result<()> {
    loop {
        // SAFETY: flock takes a descriptor that `file` keeps open for the call, and an integer.
        match cvt(unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) }) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            r => return r.map(drop),
        }
    }
}

/// `pidfd_open(pid, 0)`: a descriptor that keeps naming this process even if the pid is reused.
pub(crate) fn pidfd_open(pid: u32) -> io::Result<OwnedFd> {
    let pid = libc::pid_t::try_from(pid).map_err(|_| io::Error::from_raw_os_error(libc::ESRCH))?;
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0 as libc::c_uint) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    let fd = libc::c_int::try_from(fd).map_err(|_| io::Error::from_raw_os_error(libc::EBADF))?;
    // SAFETY: the kernel just returned this descriptor to us, so nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `pidfd_send_signal(fd, sig, NULL, 0)`.
pub(crate) fn pidfd_send_signal(fd: &OwnedFd, sig: libc::c_int) -> io::Result<()> {
    // SAFETY: a valid pidfd, a signal number, a null siginfo (the kernel fills in the
    // kill()-like default) and zero flags.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            fd.as_raw_fd(),
            sig,
            std::ptr::null::<libc::siginfo_t>(),
            0 as libc::c_uint,
        )
    };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// A resource limit pair; `u64::MAX` is `RLIM_INFINITY`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Rlimit {
    /// Soft limit.
    pub soft: u64,
    /// Hard limit.
    pub hard: u64,
}

/// The type of rlimit resource numbers: glibc declares an enum, musl a plain int.
#[cfg(target_env = "gnu")]
pub(crate) type Resource = libc::__rlimit_resource_t;
/// The type of rlimit resource numbers: glibc declares an enum, musl a plain int.
#[cfg(not(target_env = "gnu"))]
pub(crate) type Resource = libc::c_int;

/// `getrlimit(resource)`.
pub(crate) fn getrlimit(resource: Resource) -> io::Result<Rlimit> {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `r` is a valid, writable rlimit for the duration of the call.
    cvt(unsafe { libc::getrlimit(resource, &mut r) })?;
    Ok(Rlimit {
        soft: r.rlim_cur,
        hard: r.rlim_max,
    })
}

/// `setrlimit(resource, soft, hard)`.
pub(crate) fn setrlimit(resource: Resource, value: Rlimit) -> io::Result<()> {
    let r = libc::rlimit {
        rlim_cur: value.soft,
        rlim_max: value.hard,
    };
    // SAFETY: `r` is a valid rlimit that the kernel only reads.
    cvt(unsafe { libc::setrlimit(resource, &r) }).map(drop)
}

/// The calling process's nice value.
pub(crate) fn getnice() -> io::Result<i32> {
    // getpriority may legitimately return -1, so errno is cleared first and checked after.
    // SAFETY: __errno_location returns this thread's errno slot, valid for the thread's life.
    unsafe { *libc::__errno_location() = 0 };
    // SAFETY: plain integer arguments; `who` 0 is the calling process.
    let v = unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) };
    let err = io::Error::last_os_error();
    if v == -1 && err.raw_os_error() != Some(0) {
        return Err(err);
    }
    Ok(v)
}

/// Sets the calling process's nice value.
pub(crate) fn setnice(value: i32) -> io::Result<()> {
    // SAFETY: plain integer arguments; `who` 0 is the calling process.
    cvt(unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, value) }).map(drop)
}
