//! Descriptor-relative file calls, standard streams and locks.

use std::ffi::{CStr, OsString};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::fcntl::{self, FcntlArg, FlockArg, OFlag};
use nix::sys::stat::{self, Mode};
use nix::unistd::{self, AccessFlags, UnlinkatFlags};

use super::{nx, Gid, Stat, Uid};

/// Takes ownership of a descriptor a successful call just returned.
fn adopt(fd: RawFd) -> OwnedFd {
    // SAFETY: only called with a descriptor the kernel has just returned to us, which no other
    // object owns; the OwnedFd closes it exactly once.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

fn oflags(flags: libc::c_int) -> io::Result<OFlag> {
    OFlag::from_bits(flags).ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))
}

/// Makes sure fds 0, 1 and 2 are open, reopening closed ones on `/dev/null`, so no file the
/// wrapper opens later can land on a standard stream.
pub fn ensure_std_fds() -> io::Result<()> {
    for fd in 0..=2 {
        if fcntl::fcntl(fd, FcntlArg::F_GETFD).is_ok() {
            continue;
        }
        // open returns the lowest free fd, which is `fd` because all lower ones are open; it
        // stays open for the life of the process, so it is deliberately not an OwnedFd.
        let got = nx(fcntl::open(c"/dev/null", OFlag::O_RDWR, Mode::empty()))?;
        if got != fd {
            return Err(io::Error::other("cannot reopen standard descriptors"));
        }
    }
    Ok(())
}

/// Is this fd a terminal?
pub fn isatty(fd: RawFd) -> bool {
    unistd::isatty(fd).unwrap_or(false)
}

/// `access(path, W_OK)` with the real ids.
pub fn writable(path: &CStr) -> bool {
    unistd::access(path, AccessFlags::W_OK).is_ok()
}

/// `chdir(path)`.
pub fn chdir(path: &CStr) -> io::Result<()> {
    nx(unistd::chdir(path))
}

/// `fchdir(fd)`.
pub fn fchdir(fd: BorrowedFd<'_>) -> io::Result<()> {
    nx(unistd::fchdir(fd.as_raw_fd()))
}

/// Sets the umask.
pub fn umask(mask: u32) {
    stat::umask(Mode::from_bits_truncate(mask));
}

/// `openat(dir, name, flags | O_CLOEXEC, mode)`; `dir == None` means an absolute `name`.
pub fn openat(
    dir: Option<BorrowedFd<'_>>,
    name: &CStr,
    flags: libc::c_int,
    mode: libc::mode_t,
) -> io::Result<OwnedFd> {
    let dirfd = dir.map_or(libc::AT_FDCWD, |d| d.as_raw_fd());
    let fd = nx(fcntl::openat(
        dirfd,
        name,
        oflags(flags)? | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(mode),
    ))?;
    Ok(adopt(fd))
}

/// `fstat(fd)`.
pub fn fstat(fd: BorrowedFd<'_>) -> io::Result<Stat> {
    let st = nx(stat::fstat(fd.as_raw_fd()))?;
    Ok(Stat {
        uid: st.st_uid,
        gid: st.st_gid,
        mode: st.st_mode,
    })
}

/// Reads the target of a symlink opened with `O_PATH | O_NOFOLLOW`.
pub fn readlink_fd(fd: BorrowedFd<'_>) -> io::Result<OsString> {
    // The empty path reads the link `fd` itself.
    nx(fcntl::readlinkat(fd.as_raw_fd(), c""))
}

/// `mkdirat(dir, name, mode)`.
pub fn mkdirat(dir: BorrowedFd<'_>, name: &CStr, mode: libc::mode_t) -> io::Result<()> {
    nx(stat::mkdirat(
        dir.as_raw_fd(),
        name,
        Mode::from_bits_truncate(mode),
    ))
}

/// `unlinkat(dir, name, 0)`.
pub fn unlinkat(dir: BorrowedFd<'_>, name: &CStr) -> io::Result<()> {
    nx(unistd::unlinkat(
        Some(dir.as_raw_fd()),
        name,
        UnlinkatFlags::NoRemoveDir,
    ))
}

/// `unlinkat(dir, name, AT_REMOVEDIR)`: removes an empty directory.
pub fn rmdirat(dir: BorrowedFd<'_>, name: &CStr) -> io::Result<()> {
    nx(unistd::unlinkat(
        Some(dir.as_raw_fd()),
        name,
        UnlinkatFlags::RemoveDir,
    ))
}

/// `fchown(fd, uid, gid)`.
pub fn fchown(fd: BorrowedFd<'_>, uid: Uid, gid: Gid) -> io::Result<()> {
    nx(unistd::fchown(
        fd.as_raw_fd(),
        Some(uid.into()),
        Some(gid.into()),
    ))
}

/// `fchmod(fd, mode)`.
pub fn fchmod(fd: BorrowedFd<'_>, mode: libc::mode_t) -> io::Result<()> {
    nx(stat::fchmod(fd.as_raw_fd(), Mode::from_bits_truncate(mode)))
}

/// One non-blocking attempt at an exclusive `flock`; `Ok(false)` when another holder has it.
/// The lock goes with the open file description and is released when it closes.
pub fn try_flock_exclusive(fd: BorrowedFd<'_>) -> io::Result<bool> {
    match fcntl::flock(fd.as_raw_fd(), FlockArg::LockExclusiveNonblock) {
        Ok(()) => Ok(true),
        Err(nix::errno::Errno::EWOULDBLOCK) => Ok(false),
        Err(e) => Err(e.into()),
    }
}
