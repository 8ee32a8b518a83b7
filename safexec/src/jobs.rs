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
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

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

/// The temporary name a record is written under before it is renamed into place.
fn temp_name(pid: u32) -> CString {
    CString::new(format!(".{pid}.tmp")).unwrap_or_default()
}

/// Writes the record for `rec.pid` (as root), replacing a stale one, and removes records of
/// processes that are gone.
///
/// The record is written under a temporary name and renamed into place, so `<pid>` is either
/// absent or complete; on any error the temporary file is removed (issue 15 class 6: a write
/// failing under the caller's `RLIMIT_FSIZE` once left an empty record behind for good). If
/// the process dies mid-write, the next job's sweep removes the leftover.
pub fn write(rec: &Record) -> io::Result<()> {
    let dir = open_dir(true)?;
    sweep(&dir);
    let tmp = temp_name(rec.pid);
    match sys::unlinkat(dir.as_fd(), &tmp) {
        Err(e) if e.raw_os_error() != Some(flags::ENOENT) => return Err(e),
        _ => {}
    }
    let fd = sys::openat(
        Some(dir.as_fd()),
        &tmp,
        flags::O_WRONLY | flags::O_CREAT | flags::O_EXCL | flags::O_NOFOLLOW,
        0o600,
    )?;
    let written = sys::fchmod(fd.as_fd(), 0o600).and_then(|()| {
        let mut f = std::fs::File::from(fd);
        f.write_all(rec.render().as_bytes())
    });
    let renamed = written.and_then(|()| {
        nix::fcntl::renameat(
            Some(dir.as_raw_fd()),
            tmp.as_c_str(),
            Some(dir.as_raw_fd()),
            name(rec.pid).as_c_str(),
        )
        .map_err(io::Error::from)
    });
    if renamed.is_err() {
        let _ = sys::unlinkat(dir.as_fd(), &tmp);
    }
    renamed
}

/// Reads the record of `pid` (as root); `None` if there is none or it is malformed.
pub fn read(pid: u32) -> Option<Record> {
    let dir = open_dir(false).ok()?;
    read_in(&dir, pid)
}

fn read_in(dir: &OwnedFd, pid: u32) -> Option<Record> {
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

/// What the sweep does with one directory entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sweep {
    Keep,
    Remove,
}

/// The sweep's decision for the entry `file_name`, given the start time of the live process
/// with that pid (`None`: no such process) and the parsed record (`None`: unparsable).
/// Records are kept only while the process they describe runs; a temporary or unparsable file
/// is kept only while its pid is alive (it may be a write in progress). Names of no known
/// shape are left alone.
fn sweep_decision(
    file_name: &str,
    live_start: Option<u64>,
    record: Option<&Record>,
) -> (Option<u32>, Sweep) {
    let (pid, is_temp) = match file_name.parse::<u32>() {
        Ok(pid) => (pid, false),
        Err(_) => match file_name
            .strip_prefix('.')
            .and_then(|r| r.strip_suffix(".tmp"))
            .and_then(|p| p.parse::<u32>().ok())
        {
            Some(pid) => (pid, true),
            None => return (None, Sweep::Keep),
        },
    };
    let decision = match (live_start, record, is_temp) {
        (None, _, _) => Sweep::Remove,
        (Some(_), _, true) | (Some(_), None, false) => Sweep::Keep,
        (Some(start), Some(rec), false) if rec.start == start => Sweep::Keep,
        (Some(_), Some(_), false) => Sweep::Remove,
    };
    (Some(pid), decision)
}

/// Removes records whose process is gone or whose pid now belongs to another process, and
/// leftovers (temporary or unparsable files) of processes that are gone.
fn sweep(dir: &OwnedFd) {
    // Listing through the descriptor: the directory checked by `open_dir` is the one read.
    let Ok(entries) = std::fs::read_dir(format!("/proc/self/fd/{}", dir.as_raw_fd())) else {
        return;
    };
    for e in entries.flatten() {
        let Some(file_name) = e.file_name().to_str().map(str::to_string) else {
            continue;
        };
        let pid = file_name
            .trim_start_matches('.')
            .trim_end_matches(".tmp")
            .to_string();
        let live = start_time(&pid);
        let record = pid.parse::<u32>().ok().and_then(|p| read_in(dir, p));
        if let (Some(_), Sweep::Remove) = sweep_decision(&file_name, live, record.as_ref()) {
            if let Ok(c) = CString::new(file_name) {
                let _ = sys::unlinkat(dir.as_fd(), &c);
            }
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
    fn sweep_removes_leftovers_of_dead_pids_only() {
        let rec = Record {
            pid: 42,
            start: 7,
            caller: 1000,
            user: 65534,
        };
        let d = |n: &str, live: Option<u64>, r: Option<&Record>| sweep_decision(n, live, r).1;
        // A live job's record stays; a recycled pid's or a dead pid's goes.
        assert_eq!(d("42", Some(7), Some(&rec)), Sweep::Keep);
        assert_eq!(d("42", Some(8), Some(&rec)), Sweep::Remove);
        assert_eq!(d("42", None, Some(&rec)), Sweep::Remove);
        // Unparsable (e.g. empty) records and temp files: kept while alive, removed when dead.
        assert_eq!(d("42", Some(7), None), Sweep::Keep);
        assert_eq!(d("42", None, None), Sweep::Remove);
        assert_eq!(d(".42.tmp", Some(7), None), Sweep::Keep);
        assert_eq!(d(".42.tmp", None, None), Sweep::Remove);
        // Foreign names are never touched.
        assert_eq!(sweep_decision("lock", None, None), (None, Sweep::Keep));
        assert_eq!(sweep_decision(".x.tmp", None, None), (None, Sweep::Keep));
        assert_eq!(sweep_decision("42x", None, None), (None, Sweep::Keep));
    }

    #[test]
    fn start_time_survives_hostile_comm() {
        let stat = "77 (a) b) (c d) S 1 77 77 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 987654 1000 10 18446744073709551615";
        assert_eq!(parse_start_time(stat), Some(987654));
        assert!(start_time("self").is_some());
    }
}
