//! The thin system layer: the only module that calls libc or contains `unsafe`.
//!
//! Every function is a small typed wrapper returning `io::Result`. The privilege steps are also
//! exposed through the [`Sys`] trait so the drop pipeline can be unit-tested with a recording
//! double, without root (the youki `Syscall` pattern).

use std::ffi::{CStr, CString, OsString};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStringExt;

/// A user id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Uid(pub u32);

/// A group id. `repr(transparent)` because a `&[Gid]` is passed to `setgroups` as `*const gid_t`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(transparent)]
pub struct Gid(pub u32);

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

/// Converts a `-1` return into the thread's errno.
fn cvt(ret: libc::c_long) -> io::Result<libc::c_long> {
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

fn cvt_i(ret: libc::c_int) -> io::Result<libc::c_int> {
    cvt(ret as libc::c_long).map(|r| r as libc::c_int)
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
        // SAFETY: Gid is repr(transparent) over u32 == gid_t, so the slice is a valid gid_t
        // array of `groups.len()` elements; the kernel only reads it.
        cvt_i(unsafe { libc::setgroups(groups.len(), groups.as_ptr().cast()) }).map(drop)
    }

    fn setresgid(&mut self, gid: Gid) -> io::Result<()> {
        // SAFETY: plain syscall with integer arguments.
        cvt_i(unsafe { libc::setresgid(gid.0, gid.0, gid.0) }).map(drop)
    }

    fn setresuid(&mut self, uid: Uid) -> io::Result<()> {
        // SAFETY: plain syscall with integer arguments.
        cvt_i(unsafe { libc::setresuid(uid.0, uid.0, uid.0) }).map(drop)
    }

    fn getresuid(&mut self) -> io::Result<[Uid; 3]> {
        let (mut r, mut e, mut s) = (0, 0, 0);
        // SAFETY: the three pointers are valid, writable u32 locations on the stack.
        cvt_i(unsafe { libc::getresuid(&mut r, &mut e, &mut s) })?;
        Ok([Uid(r), Uid(e), Uid(s)])
    }

    fn getresgid(&mut self) -> io::Result<[Gid; 3]> {
        let (mut r, mut e, mut s) = (0, 0, 0);
        // SAFETY: the three pointers are valid, writable u32 locations on the stack.
        cvt_i(unsafe { libc::getresgid(&mut r, &mut e, &mut s) })?;
        Ok([Gid(r), Gid(e), Gid(s)])
    }

    fn getgroups(&mut self) -> io::Result<Vec<Gid>> {
        // SAFETY: size 0 with a null pointer only asks for the count.
        let n = cvt_i(unsafe { libc::getgroups(0, std::ptr::null_mut()) })?;
        let mut buf = vec![0 as libc::gid_t; n as usize];
        // SAFETY: buf has room for exactly n gid_t values.
        let m = cvt_i(unsafe { libc::getgroups(n, buf.as_mut_ptr()) })?;
        buf.truncate(m as usize);
        Ok(buf.into_iter().map(Gid).collect())
    }

    fn regain_root_fails(&mut self) -> bool {
        // SAFETY: plain syscall; success is exactly what we test for.
        unsafe { libc::setuid(0) != 0 }
    }

    fn set_no_new_privs(&mut self) -> io::Result<()> {
        // SAFETY: PR_SET_NO_NEW_PRIVS takes integer arguments only.
        cvt_i(unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) }).map(drop)
    }

    fn reset_signals(&mut self, ignore_hup: bool) -> io::Result<()> {
        // The raw rt_sigaction syscall, not libc's sigaction: glibc refuses its reserved
        // signals 32 and 33 (EINVAL), but an ignored disposition of those is inherited across
        // exec just the same, so they must be reset too.
        #[repr(C)]
        struct KernelSigaction {
            handler: usize,
            flags: libc::c_ulong,
            restorer: usize,
            mask: u64,
        }
        for sig in 1..=64 {
            if sig == libc::SIGKILL || sig == libc::SIGSTOP {
                continue;
            }
            let handler = if ignore_hup && sig == libc::SIGHUP {
                libc::SIG_IGN
            } else {
                libc::SIG_DFL
            };
            let sa = KernelSigaction {
                handler,
                flags: 0,
                restorer: 0,
                mask: 0,
            };
            // SAFETY: `sa` matches the kernel's struct sigaction on x86_64 and aarch64
            // (handler, flags, restorer, 64-bit mask) and outlives the call; SIG_DFL/SIG_IGN
            // install no code; the old action is not requested.
            cvt(unsafe {
                libc::syscall(
                    libc::SYS_rt_sigaction,
                    sig,
                    &sa as *const KernelSigaction,
                    std::ptr::null_mut::<KernelSigaction>(),
                    8usize,
                )
            })?;
        }
        // SAFETY: set is a valid, initialised sigset_t on the stack.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            cvt_i(libc::sigprocmask(
                libc::SIG_SETMASK,
                &set,
                std::ptr::null_mut(),
            ))?;
        }
        Ok(())
    }

    fn close_fds_from_3(&mut self, keep: RawFd) -> io::Result<()> {
        let keep = keep as libc::c_uint;
        if keep > 3 {
            close_range(3, keep - 1)?;
        }
        close_range(keep.max(2) + 1, libc::c_uint::MAX)
    }

    fn execveat(&mut self, fd: RawFd, argv: &[CString], envp: &[CString]) -> io::Error {
        let mut av: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
        av.push(std::ptr::null());
        let mut ev: Vec<*const libc::c_char> = envp.iter().map(|e| e.as_ptr()).collect();
        ev.push(std::ptr::null());
        // SAFETY: av and ev are NULL-terminated arrays of pointers into CStrings that outlive
        // the call; the empty path with AT_EMPTY_PATH executes `fd` itself.
        unsafe {
            libc::syscall(
                libc::SYS_execveat,
                fd,
                c"".as_ptr(),
                av.as_ptr(),
                ev.as_ptr(),
                libc::AT_EMPTY_PATH,
            );
        }
        io::Error::last_os_error()
    }
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
            // SAFETY: as above; the read_dir handle is already closed.
            unsafe { libc::close(fd as libc::c_int) };
        }
    }
    Ok(())
}

/// Makes sure fds 0, 1 and 2 are open, reopening closed ones on `/dev/null`, so no file the
/// wrapper opens later can land on a standard stream.
pub fn ensure_std_fds() -> io::Result<()> {
    for fd in 0..=2 {
        // SAFETY: F_GETFD only queries the descriptor flags.
        if unsafe { libc::fcntl(fd, libc::F_GETFD) } != -1 {
            continue;
        }
        // SAFETY: a valid NUL-terminated path; open returns the lowest free fd, which is `fd`
        // because all lower ones are open.
        let got = cvt_i(unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDWR) })?;
        if got != fd {
            return Err(io::Error::other("cannot reopen standard descriptors"));
        }
    }
    Ok(())
}

/// Effective user id.
pub fn geteuid() -> Uid {
    // SAFETY: always succeeds.
    Uid(unsafe { libc::geteuid() })
}

/// Real user id.
pub fn getuid() -> Uid {
    // SAFETY: always succeeds.
    Uid(unsafe { libc::getuid() })
}

/// Real group id.
pub fn getgid() -> Gid {
    // SAFETY: always succeeds.
    Gid(unsafe { libc::getgid() })
}

/// Effective group id.
pub fn getegid() -> Gid {
    // SAFETY: always succeeds.
    Gid(unsafe { libc::getegid() })
}

/// Our own pid.
pub fn getpid() -> u32 {
    // SAFETY: always succeeds.
    unsafe { libc::getpid() as u32 }
}

/// Marks the process non-dumpable (no core, no same-uid ptrace) while it holds root.
pub fn set_dumpable(on: bool) -> io::Result<()> {
    // SAFETY: integer arguments only.
    cvt_i(unsafe { libc::prctl(libc::PR_SET_DUMPABLE, on as libc::c_ulong, 0, 0, 0) }).map(drop)
}

/// Reads `PR_GET_NO_NEW_PRIVS`.
pub fn no_new_privs() -> bool {
    // SAFETY: integer arguments only.
    unsafe { libc::prctl(libc::PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 1 }
}

/// Sets RLIMIT_CORE to 0 (soft and hard): lowering is always allowed.
pub fn no_core_dumps() -> io::Result<()> {
    let lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: lim is a valid rlimit.
    cvt_i(unsafe { libc::setrlimit(libc::RLIMIT_CORE, &lim) }).map(drop)
}

/// Sets the umask.
pub fn umask(mask: u32) {
    // SAFETY: always succeeds.
    unsafe { libc::umask(mask) };
}

/// Adds `inc` to the nice value (what `nice` without options does with 10).
pub fn nice(inc: i32) -> io::Result<()> {
    // SAFETY: errno is cleared first because -1 is a valid return of nice(2).
    unsafe {
        *libc::__errno_location() = 0;
        if libc::nice(inc) == -1 && *libc::__errno_location() != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Is this fd a terminal?
pub fn isatty(fd: RawFd) -> bool {
    // SAFETY: isatty only queries the descriptor.
    unsafe { libc::isatty(fd) == 1 }
}

/// `access(path, W_OK)` with the real ids.
pub fn writable(path: &CStr) -> bool {
    // SAFETY: path is NUL-terminated.
    unsafe { libc::access(path.as_ptr(), libc::W_OK) == 0 }
}

/// `chdir(path)`.
pub fn chdir(path: &CStr) -> io::Result<()> {
    // SAFETY: path is NUL-terminated.
    cvt_i(unsafe { libc::chdir(path.as_ptr()) }).map(drop)
}

/// `openat(dir, name, flags | O_CLOEXEC, mode)`; `dir == None` means an absolute `name`.
pub fn openat(
    dir: Option<BorrowedFd<'_>>,
    name: &CStr,
    flags: libc::c_int,
    mode: libc::mode_t,
) -> io::Result<OwnedFd> {
    let dirfd = dir.map_or(libc::AT_FDCWD, |d| d.as_raw_fd());
    // SAFETY: name is NUL-terminated and dirfd is a live descriptor or AT_FDCWD.
    let fd = cvt_i(unsafe {
        libc::openat(
            dirfd,
            name.as_ptr(),
            flags | libc::O_CLOEXEC,
            mode as libc::c_uint,
        )
    })?;
    // SAFETY: fd was just returned by openat and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `fstat(fd)`.
pub fn fstat(fd: BorrowedFd<'_>) -> io::Result<Stat> {
    // SAFETY: st is written completely by a successful fstat before it is read.
    unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        cvt_i(libc::fstat(fd.as_raw_fd(), &mut st))?;
        Ok(Stat {
            uid: st.st_uid,
            gid: st.st_gid,
            mode: st.st_mode,
        })
    }
}

/// Reads the target of a symlink opened with `O_PATH | O_NOFOLLOW`.
pub fn readlink_fd(fd: BorrowedFd<'_>) -> io::Result<OsString> {
    let mut buf = vec![0u8; libc::PATH_MAX as usize];
    // SAFETY: buf is writable for buf.len() bytes; the empty path reads the link `fd` itself.
    let n = cvt(unsafe {
        libc::readlinkat(
            fd.as_raw_fd(),
            c"".as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    } as libc::c_long)?;
    buf.truncate(n as usize);
    Ok(OsString::from_vec(buf))
}

/// `mkdirat(dir, name, mode)`.
pub fn mkdirat(dir: BorrowedFd<'_>, name: &CStr, mode: libc::mode_t) -> io::Result<()> {
    // SAFETY: name is NUL-terminated; dir is a live descriptor.
    cvt_i(unsafe { libc::mkdirat(dir.as_raw_fd(), name.as_ptr(), mode) }).map(drop)
}

/// `unlinkat(dir, name, 0)`.
pub fn unlinkat(dir: BorrowedFd<'_>, name: &CStr) -> io::Result<()> {
    // SAFETY: name is NUL-terminated; dir is a live descriptor.
    cvt_i(unsafe { libc::unlinkat(dir.as_raw_fd(), name.as_ptr(), 0) }).map(drop)
}

/// `unlinkat(dir, name, AT_REMOVEDIR)`: removes an empty directory.
pub fn rmdirat(dir: BorrowedFd<'_>, name: &CStr) -> io::Result<()> {
    // SAFETY: name is NUL-terminated; dir is a live descriptor.
    cvt_i(unsafe { libc::unlinkat(dir.as_raw_fd(), name.as_ptr(), libc::AT_REMOVEDIR) }).map(drop)
}

/// `fchown(fd, uid, gid)`.
pub fn fchown(fd: BorrowedFd<'_>, uid: Uid, gid: Gid) -> io::Result<()> {
    // SAFETY: integer arguments on a live descriptor.
    cvt_i(unsafe { libc::fchown(fd.as_raw_fd(), uid.0, gid.0) }).map(drop)
}

/// `fchmod(fd, mode)`.
pub fn fchmod(fd: BorrowedFd<'_>, mode: libc::mode_t) -> io::Result<()> {
    // SAFETY: integer arguments on a live descriptor.
    cvt_i(unsafe { libc::fchmod(fd.as_raw_fd(), mode) }).map(drop)
}

/// `pidfd_open(pid, 0)`.
pub fn pidfd_open(pid: i32) -> io::Result<OwnedFd> {
    // SAFETY: integer arguments; a non-negative return is a new descriptor we own.
    let fd = cvt(unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) })?;
    // SAFETY: fd was just returned by the kernel and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// `pidfd_send_signal(fd, sig, NULL, 0)`; signal 0 only checks that the process is alive.
pub fn pidfd_send_signal(fd: BorrowedFd<'_>, sig: i32) -> io::Result<()> {
    // SAFETY: a null siginfo is allowed and means "as kill(2)".
    cvt(unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            fd.as_raw_fd(),
            sig,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    })
    .map(drop)
}

/// SIGTERM's number.
pub const SIGTERM: i32 = libc::SIGTERM;

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
}
