//! Root-owned job records under `/run/safexec/`: what `--kill` checks before signalling.
//!
//! A record `/run/safexec/<pid>` (directory 0700, file 0600, both root-owned) is written as
//! root before the tool is executed in place, so the pid is the tool's. It holds the pid, the
//! process start time from `/proc/<pid>/stat` (which tells a recycled pid apart), the caller's
//! real uid (who may stop it) and the job's uid. Everything is created with `*at()` calls on a
//! verified directory descriptor, never following symlinks.
#![forbid(unsafe_code)]

use std::ffi::CString;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};

use crate::sys::{self, flags};

/// Directory of the records.
pub const JOB_DIR: &str = "/run/safexec";

/// One job record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record {
    /// The job's (and tool's) pid.
    pub pid: u32,
    /// Start time in clock ticks since boot (field 22 of `/proc/<pid>/stat`).
    pub start: u64,
    /// Real uid of the caller that started it.
    pub caller: u32,
    /// uid the job runs as.
    pub user: u32,
}

impl Record {
    /// The file contents.
    pub fn render(&self) -> String {
        format!(
            "pid={}\nstart={}\ncaller={}\nuser={}\n",
            self.pid, self.start, self.caller, self.user
        )
    }

    /// Parses file contents; `None` on anything unexpected.
    pub fn parse(text: &str) -> Option<Record> {
        let mut pid = None;
        let mut start = None;
        let mut caller = None;
        let mut user = None;
        for line in text.lines() {
            let (k, v) = line.split_once('=')?;
            match k {
                "pid" => pid = Some(v.parse().ok()?),
                "start" => start = Some(v.parse().ok()?),
                "caller" => caller = Some(v.parse().ok()?),
                "user" => user = Some(v.parse().ok()?),
                _ => return None,
            }
        }
        Some(Record {
            pid: pid?,
            start: start?,
            caller: caller?,
            user: user?,
        })
    }
}

/// Start time of a process from the text of `/proc/<pid>/stat`. The command name may contain
/// spaces and parentheses, so fields are counted after the *last* `)`.
pub fn parse_start_time(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    // After ")": field 3 (state) is the first; starttime is field 22.
    rest.split_ascii_whitespace().nth(19)?.parse().ok()
}

/// Start time of `pid` (`"self"` for ourselves).
pub fn start_time(pid: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_start_time(&text)
}

fn open_dir(create: bool) -> io::Result<OwnedFd> {
    let run = sys::openat(
        None,
        c"/run",
        flags::O_PATH | flags::O_DIRECTORY | flags::O_NOFOLLOW,
        0,
    )?;
    if create {
        match sys::mkdirat(run.as_fd(), c"safexec", 0o700) {
            Err(e) if e.raw_os_error() != Some(flags::EEXIST) => return Err(e),
            _ => {}
        }
    }
    let dir = sys::openat(
        Some(run.as_fd()),
        c"safexec",
        flags::O_RDONLY | flags::O_DIRECTORY | flags::O_NOFOLLOW,
        0,
    )?;
    let st = sys::fstat(dir.as_fd())?;
    if st.uid != 0 || !st.is_dir() {
        return Err(io::Error::other(
            "/run/safexec is not a root-owned directory",
        ));
    }
    if st.mode & 0o077 != 0 {
        sys::fchmod(dir.as_fd(), 0o700)?;
    }
    Ok(dir)
}

fn name(pid: u32) -> CString {
    CString::new(pid.to_string()).unwrap_or_default()
}

/// Writes the record for `rec.pid` (as root), replacing a stale one, and removes records of
/// processes that are gone.
pub fn write(rec: &Record) -> io::Result<()> {
    let dir = open_dir(true)?;
    sweep(&dir);
    let n = name(rec.pid);
    match sys::unlinkat(dir.as_fd(), &n) {
        Err(e) if e.raw_os_error() != Some(flags::ENOENT) => return Err(e),
        _ => {}
    }
    let fd = sys::openat(
        Some(dir.as_fd()),
        &n,
        flags::O_WRONLY | flags::O_CREAT | flags::O_EXCL | flags::O_NOFOLLOW,
        0o600,
    )?;
    sys::fchmod(fd.as_fd(), 0o600)?;
    let mut f = std::fs::File::from(fd);
    f.write_all(rec.render().as_bytes())
}

/// Reads the record of `pid` (as root); `None` if there is none or it is malformed.
pub fn read(pid: u32) -> Option<Record> {
    let dir = open_dir(false).ok()?;
    let fd = sys::openat(
        Some(dir.as_fd()),
        &name(pid),
        flags::O_RDONLY | flags::O_NOFOLLOW,
        0,
    )
    .ok()?;
    let st = sys::fstat(fd.as_fd()).ok()?;
    if st.uid != 0 || !st.is_file() {
        return None;
    }
    let mut text = String::new();
    std::fs::File::from(fd)
        .take(4096)
        .read_to_string(&mut text)
        .ok()?;
    Record::parse(&text).filter(|r| r.pid == pid)
}

/// Removes records whose process is gone or whose pid now belongs to another process.
fn sweep(dir: &OwnedFd) {
    let Ok(entries) = std::fs::read_dir(JOB_DIR) else {
        return;
    };
    for e in entries.flatten() {
        let file_name = e.file_name();
        let Some(pid) = file_name.to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Some(rec) = read(pid) else {
            continue;
        };
        if start_time(&pid.to_string()) != Some(rec.start) {
            let _ = sys::unlinkat(dir.as_fd(), &name(pid));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_roundtrip_and_rejects_junk() {
        let r = Record {
            pid: 42,
            start: 123456,
            caller: 1000,
            user: 65534,
        };
        assert_eq!(Record::parse(&r.render()), Some(r));
        assert_eq!(Record::parse("pid=1\nstart=2\ncaller=3\n"), None);
        assert_eq!(Record::parse("pid=1\nstart=x\ncaller=3\nuser=4\n"), None);
        assert_eq!(
            Record::parse("pid=1\nstart=2\ncaller=3\nuser=4\nextra=1\n"),
            None
        );
    }

    #[test]
    fn start_time_survives_hostile_comm() {
        let stat = "77 (a) b) (c d) S 1 77 77 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 987654 1000 10 18446744073709551615";
        assert_eq!(parse_start_time(stat), Some(987654));
        assert!(start_time("self").is_some());
    }
}
