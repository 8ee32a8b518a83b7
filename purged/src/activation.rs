//! systemd socket activation: the listening sockets passed as `LISTEN_FDS` (sd_listen_fds(3)).
//!
//! systemd (or a test harness doing what it does) leaves the sockets open at fds 3.. and sets
//! `LISTEN_PID` to our pid, `LISTEN_FDS` to their count and `LISTEN_FDNAMES` to their
//! `FileDescriptorName=`s. The sockets are checked (a stream socket, already listening, of the
//! expected family) before use, and the variables are removed so a child never sees them.
#![allow(unsafe_code)]

use std::os::fd::{FromRawFd, OwnedFd};

use rustix::net::{sockopt, AddressFamily, SocketType};

use crate::error::Error;

/// First passed descriptor (`SD_LISTEN_FDS_START`).
const FIRST_FD: i32 = 3;
/// More sockets than this is a misconfigured unit, not something to serve.
const MAX_FDS: usize = 16;

/// One listening socket taken from the environment.
#[derive(Debug)]
pub struct Passed {
    /// The socket.
    pub fd: OwnedFd,
    /// Whether it is a Unix socket (else TCP over IPv4/IPv6).
    pub unix: bool,
}

/// Takes the passed sockets; none when `LISTEN_PID` is not ours or unset.
pub fn take() -> Result<Vec<Passed>, Error> {
    let pid = std::env::var("LISTEN_PID").ok();
    let count = std::env::var("LISTEN_FDS").ok();
    let names = std::env::var("LISTEN_FDNAMES").ok();
    // main calls this before the runtime starts any thread, so changing the environment
    // cannot race a reader; children (a preload) must not see sockets that are not theirs.
    for v in ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"] {
        std::env::remove_var(v);
    }
    let (Some(pid), Some(count)) = (pid, count) else {
        return Ok(Vec::new());
    };
    if pid.parse::<u32>().ok() != Some(std::process::id()) {
        return Ok(Vec::new());
    }
    let n: usize = count
        .parse()
        .map_err(|_| Error::Setup(format!("LISTEN_FDS is not a number: {count:?}")))?;
    if n > MAX_FDS {
        return Err(Error::Setup(format!("LISTEN_FDS={n}: too many sockets")));
    }
    let names: Vec<String> = names
        .map(|s| s.split(':').map(str::to_owned).collect())
        .unwrap_or_default();
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let raw = FIRST_FD + i as i32;
        // SAFETY: systemd's contract (sd_listen_fds(3)) hands fds 3..3+LISTEN_FDS to the process
        // named by LISTEN_PID, which we checked is us; nothing else in this process has claimed
        // them (this runs once, first thing in main), so taking ownership here is unique.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let name = names.get(i).cloned().unwrap_or_else(|| "unknown".into());
        let kind = sockopt::socket_type(&fd)
            .map_err(|e| Error::Setup(format!("passed fd {raw} ({name}) is not a socket: {e}")))?;
        if kind != SocketType::STREAM {
            return Err(Error::Setup(format!(
                "passed fd {raw} ({name}) is not a stream socket"
            )));
        }
        if !sockopt::socket_acceptconn(&fd).unwrap_or(false) {
            return Err(Error::Setup(format!(
                "passed fd {raw} ({name}) is not listening"
            )));
        }
        let family = rustix::net::getsockname(&fd)
            .map_err(|e| Error::Setup(format!("passed fd {raw} ({name}): {e}")))?
            .address_family();
        let unix = family == AddressFamily::UNIX;
        if !unix && family != AddressFamily::INET && family != AddressFamily::INET6 {
            return Err(Error::Setup(format!(
                "passed fd {raw} ({name}) is neither a Unix nor a TCP socket"
            )));
        }
        rustix::io::fcntl_setfd(&fd, rustix::io::FdFlags::CLOEXEC)
            .map_err(|e| Error::Setup(format!("passed fd {raw}: {e}")))?;
        out.push(Passed { fd, unix });
    }
    Ok(out)
}
