//! The privilege drop and exec: one straight-line function of named steps.
//!
//! The order is the security argument, so it lives in exactly one place ([`run`]) with the
//! reason for each position next to it. Syscalls go through [`Sys`], the confinement and the
//! job-specific work through [`Steps`]; the unit tests below drive [`run`] with recording
//! doubles and assert the exact sequence, without root.
#![forbid(unsafe_code)]

use std::ffi::CString;
use std::os::fd::RawFd;

use crate::confine::Placement;
use crate::error::Error;
use crate::msg;
use crate::sys::{Gid, Sys, Uid};

/// The identity the job runs as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    /// uid for real, effective and saved.
    pub uid: Uid,
    /// gid for real, effective and saved; no supplementary groups.
    pub gid: Gid,
}

/// What the tool is executed with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exec {
    /// argv (`argv[0]` is the caller's name for the tool).
    pub argv: Vec<CString>,
    /// The complete environment.
    pub envp: Vec<CString>,
}

/// The non-syscall steps of the pipeline (confinement and job bookkeeping).
pub trait Steps {
    /// `confine::compile_seccomp`: builds the filter early, while allocation failures are
    /// still harmless.
    fn compile_seccomp(&mut self) -> Result<(), String>;
    /// Writes the root-owned job record for our pid.
    fn write_job_record(&mut self) -> Result<(), String>;
    /// `confine::place_in_cgroup`.
    fn place_in_cgroup(&mut self) -> Result<Placement, String>;
    /// `confine::lower_rlimits` (limits no cgroup enforces become rlimits).
    fn lower_rlimits(&mut self, placement: &Placement) -> Result<(), String>;
    /// Root-side filesystem work for the job: its private directory (the cwd of every job and
    /// what `-P /tmp` becomes), or the checked cache root. Fatal on failure: there is no shared
    /// or caller-chosen fallback.
    fn prepare_as_root(&mut self, target: Target) -> Result<(), String>;
    /// `confine::prepare_landlock`: the job's ruleset, built before the drop.
    fn prepare_landlock(&mut self) -> Result<(), String>;
    /// `confine::drop_bounding_set`.
    fn drop_bounding_set(&mut self) -> Result<(), String>;
    /// `confine::verify_no_capabilities`.
    fn verify_no_capabilities(&mut self) -> Result<(), String>;
    /// As the job user: cwd policy, nice, shim decision, summary; returns argv and envp.
    fn finalize(&mut self, placement: &Placement) -> Result<Exec, String>;
    /// `confine::apply_landlock` with the ruleset built earlier; prints what it allows.
    fn apply_landlock(&mut self) -> Result<(), String>;
    /// `confine::install_seccomp` with the filter compiled earlier.
    fn install_seccomp(&mut self) -> Result<(), String>;
    /// The descriptor of the pinned tool.
    fn tool_fd(&self) -> RawFd;
}

fn fatal(line: String) -> Error {
    Error::line(line)
}

fn step_failed(step: &str, e: impl std::fmt::Display) -> Error {
    fatal(msg::drop_step_failed(step, &e.to_string()))
}

/// Drops to `target` and executes the tool. Returns only on failure.
pub fn run<S: Sys, T: Steps>(sys: &mut S, steps: &mut T, target: Target, nohup: bool) -> Error {
    // 0. Build the seccomp program now: it allocates, and nothing between the drop and exec
    //    should be able to fail for lack of memory.
    if let Err(e) = steps.compile_seccomp() {
        return fatal(msg::confine_failed("seccomp compilation", &e));
    }
    // 1. Job record first, as root: from the moment the tool can run, `--kill` must be able
    //    to recognise it; the pid is already the tool's because we exec in place.
    if let Err(e) = steps.write_job_record() {
        return fatal(e);
    }
    // 2. cgroup placement as root (creating and joining groups needs it), before anything
    //    the caller controls runs, so the job is accounted from its first instruction.
    let placement = match steps.place_in_cgroup() {
        Ok(p) => p,
        Err(e) => return fatal(msg::confine_failed("cgroup placement", &e)),
    };
    // 3. rlimits as root: only lowered, never raised (spec §7.1-F).
    if let Err(e) = steps.lower_rlimits(&placement) {
        return fatal(msg::confine_failed("rlimits", &e));
    }
    // 4. Root-side files the job needs (its private directory), created with *at() calls;
    //    without them the job does not run (failures closed, issue 15 class 5).
    if let Err(e) = steps.prepare_as_root(target) {
        return fatal(e);
    }
    // 4b. The Landlock ruleset is built while every path it names can still be opened, with
    //     the job's own file-system identity (so it anchors nothing the job could not open).
    if let Err(e) = steps.prepare_landlock() {
        return fatal(msg::confine_failed("landlock", &e));
    }
    // 5. Bounding set while still root: dropping it needs CAP_SETPCAP, which setresuid
    //    removes; afterwards no exec can regain a capability.
    if let Err(e) = steps.drop_bounding_set() {
        return fatal(msg::confine_failed("capability drop", &e));
    }
    // 6-8. Groups first (needs CAP_SETGID), then gid, then uid last: after setresuid we
    //      could no longer change the others (doas CVE-2019-15900 forgot the groups).
    if let Err(e) = sys.setgroups(&[]) {
        return step_failed("setgroups", e);
    }
    if let Err(e) = sys.setresgid(target.gid) {
        return step_failed("setresgid", e);
    }
    if let Err(e) = sys.setresuid(target.uid) {
        return step_failed("setresuid", e);
    }
    // 9. Verify instead of trusting return values: all three ids of each kind, no groups,
    //    and root cannot be regained.
    match sys.getresuid() {
        Ok(ids) if ids == [target.uid; 3] => {}
        Ok(ids) => return step_failed("verify uids", format!("{ids:?}")),
        Err(e) => return step_failed("getresuid", e),
    }
    match sys.getresgid() {
        Ok(ids) if ids == [target.gid; 3] => {}
        Ok(ids) => return step_failed("verify gids", format!("{ids:?}")),
        Err(e) => return step_failed("getresgid", e),
    }
    match sys.getgroups() {
        Ok(g) if g.is_empty() => {}
        Ok(g) => return step_failed("verify groups", format!("{g:?}")),
        Err(e) => return step_failed("getgroups", e),
    }
    if !sys.regain_root_fails() {
        return fatal(msg::fatal_root());
    }
    // 10. NO_NEW_PRIVS is fatal on failure: without it a setuid file could give the job back
    //     privileges, and seccomp could not be installed unprivileged.
    if let Err(e) = sys.set_no_new_privs() {
        return step_failed("PR_SET_NO_NEW_PRIVS", e);
    }
    // 11. Capabilities must all be gone now (permitted, effective, inheritable, ambient,
    //     bounding).
    if let Err(e) = steps.verify_no_capabilities() {
        return fatal(msg::confine_failed("capability check", &e));
    }
    // 12. Everything caller-influenced that touches the filesystem (cwd, shim path) happens as
    //     the job user, so no root-privileged probe can leak anything.
    let exec = match steps.finalize(&placement) {
        Ok(x) => x,
        Err(e) => return fatal(e),
    };
    // 12b. Landlock after every file we open ourselves (the shim check, the cwd) and after
    //      NO_NEW_PRIVS, which an unprivileged restrict_self needs.
    if let Err(e) = steps.apply_landlock() {
        return fatal(msg::confine_failed("landlock", &e));
    }
    // 13. Signals: dispositions and mask are inherited across exec, so a caller could hand the
    //     tool a blocked SIGTERM; nohup's only effect is SIGHUP ignored.
    if let Err(e) = sys.reset_signals(nohup) {
        return step_failed("signal reset", e);
    }
    // 14. Close every fd >= 3 late, after all our own files are closed; the tool descriptor
    //     is O_CLOEXEC and closes at exec.
    if let Err(e) = sys.close_fds_from_3(steps.tool_fd()) {
        return step_failed("close_range", e);
    }
    // 15. seccomp last: the filter also applies to us, so nothing after it may need a
    //     denied call.
    if let Err(e) = steps.install_seccomp() {
        return fatal(msg::confine_failed("seccomp", &e));
    }
    // 16. Exec the pinned descriptor in place: the pid stays the caller's `$!`.
    let err = sys.execveat(steps.tool_fd(), &exec.argv, &exec.envp);
    Error::line(msg::exec_failed(&err))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::io;
    use std::rc::Rc;

    type Log = Rc<RefCell<Vec<String>>>;

    /// Recording double: each call appends its name; `fail` names one step that fails.
    struct Rec {
        log: Log,
        fail: &'static str,
        uid: Uid,
        gid: Gid,
        regain_root: bool,
    }

    impl Rec {
        fn hit(&self, name: &str) -> io::Result<()> {
            self.log.borrow_mut().push(name.to_string());
            if self.fail == name {
                Err(io::Error::from_raw_os_error(1))
            } else {
                Ok(())
            }
        }
        fn hit_s(&self, name: &str) -> Result<(), String> {
            self.hit(name).map_err(|e| e.to_string())
        }
    }

    impl Sys for Rec {
        fn setgroups(&mut self, g: &[Gid]) -> io::Result<()> {
            assert!(g.is_empty());
            self.hit("setgroups")
        }
        fn setresgid(&mut self, gid: Gid) -> io::Result<()> {
            self.gid = gid;
            self.hit("setresgid")
        }
        fn setresuid(&mut self, uid: Uid) -> io::Result<()> {
            self.uid = uid;
            self.hit("setresuid")
        }
        fn getresuid(&mut self) -> io::Result<[Uid; 3]> {
            self.hit("getresuid")?;
            Ok(if self.fail == "uid-mismatch" {
                [self.uid, self.uid, Uid(0)]
            } else {
                [self.uid; 3]
            })
        }
        fn getresgid(&mut self) -> io::Result<[Gid; 3]> {
            self.hit("getresgid")?;
            Ok([self.gid; 3])
        }
        fn getgroups(&mut self) -> io::Result<Vec<Gid>> {
            self.hit("getgroups")?;
            Ok(if self.fail == "groups-left" {
                vec![Gid(27)]
            } else {
                vec![]
            })
        }
        fn regain_root_fails(&mut self) -> bool {
            let _ = self.hit("setuid(0)");
            !self.regain_root
        }
        fn set_no_new_privs(&mut self) -> io::Result<()> {
            self.hit("no_new_privs")
        }
        fn reset_signals(&mut self, ignore_hup: bool) -> io::Result<()> {
            self.hit(if ignore_hup {
                "reset_signals(hup ignored)"
            } else {
                "reset_signals"
            })
        }
        fn close_fds_from_3(&mut self, keep: RawFd) -> io::Result<()> {
            assert_eq!(keep, 7);
            self.hit("close_fds")
        }
        fn execveat(&mut self, fd: RawFd, argv: &[CString], _envp: &[CString]) -> io::Error {
            assert_eq!(fd, 7);
            assert_eq!(argv[0].to_str().unwrap(), "wget");
            let _ = self.hit("execveat");
            io::Error::from_raw_os_error(2)
        }
    }

    struct RecSteps(Rc<RefCell<Rec>>);

    impl Steps for RecSteps {
        fn compile_seccomp(&mut self) -> Result<(), String> {
            self.0.borrow().hit_s("compile_seccomp")
        }
        fn write_job_record(&mut self) -> Result<(), String> {
            self.0.borrow().hit_s("job_record")
        }
        fn place_in_cgroup(&mut self) -> Result<Placement, String> {
            self.0.borrow().hit_s("cgroup")?;
            Ok(Placement::default())
        }
        fn lower_rlimits(&mut self, _p: &Placement) -> Result<(), String> {
            self.0.borrow().hit_s("rlimits")
        }
        fn prepare_as_root(&mut self, _t: Target) -> Result<(), String> {
            self.0.borrow().hit_s("prepare_as_root")
        }
        fn prepare_landlock(&mut self) -> Result<(), String> {
            self.0.borrow().hit_s("prepare_landlock")
        }
        fn apply_landlock(&mut self) -> Result<(), String> {
            self.0.borrow().hit_s("apply_landlock")
        }
        fn drop_bounding_set(&mut self) -> Result<(), String> {
            self.0.borrow().hit_s("bounding_set")
        }
        fn verify_no_capabilities(&mut self) -> Result<(), String> {
            self.0.borrow().hit_s("verify_caps")
        }
        fn finalize(&mut self, _p: &Placement) -> Result<Exec, String> {
            self.0.borrow().hit_s("finalize")?;
            Ok(Exec {
                argv: vec![CString::new("wget").unwrap()],
                envp: vec![],
            })
        }
        fn install_seccomp(&mut self) -> Result<(), String> {
            self.0.borrow().hit_s("seccomp")
        }
        fn tool_fd(&self) -> RawFd {
            7
        }
    }

    /// Sys calls go through a thin forwarder so both traits share one recorder.
    struct SysFwd(Rc<RefCell<Rec>>);

    impl Sys for SysFwd {
        fn setgroups(&mut self, g: &[Gid]) -> io::Result<()> {
            self.0.borrow_mut().setgroups(g)
        }
        fn setresgid(&mut self, gid: Gid) -> io::Result<()> {
            self.0.borrow_mut().setresgid(gid)
        }
        fn setresuid(&mut self, uid: Uid) -> io::Result<()> {
            self.0.borrow_mut().setresuid(uid)
        }
        fn getresuid(&mut self) -> io::Result<[Uid; 3]> {
            self.0.borrow_mut().getresuid()
        }
        fn getresgid(&mut self) -> io::Result<[Gid; 3]> {
            self.0.borrow_mut().getresgid()
        }
        fn getgroups(&mut self) -> io::Result<Vec<Gid>> {
            self.0.borrow_mut().getgroups()
        }
        fn regain_root_fails(&mut self) -> bool {
            self.0.borrow_mut().regain_root_fails()
        }
        fn set_no_new_privs(&mut self) -> io::Result<()> {
            self.0.borrow_mut().set_no_new_privs()
        }
        fn reset_signals(&mut self, h: bool) -> io::Result<()> {
            self.0.borrow_mut().reset_signals(h)
        }
        fn close_fds_from_3(&mut self, keep: RawFd) -> io::Result<()> {
            self.0.borrow_mut().close_fds_from_3(keep)
        }
        fn execveat(&mut self, fd: RawFd, a: &[CString], e: &[CString]) -> io::Error {
            self.0.borrow_mut().execveat(fd, a, e)
        }
    }

    const FULL: &[&str] = &[
        "compile_seccomp",
        "job_record",
        "cgroup",
        "rlimits",
        "prepare_as_root",
        "prepare_landlock",
        "bounding_set",
        "setgroups",
        "setresgid",
        "setresuid",
        "getresuid",
        "getresgid",
        "getgroups",
        "setuid(0)",
        "no_new_privs",
        "verify_caps",
        "finalize",
        "apply_landlock",
        "reset_signals",
        "close_fds",
        "seccomp",
        "execveat",
    ];

    fn drive(fail: &'static str, regain_root: bool, nohup: bool) -> (Vec<String>, Error) {
        let log: Log = Rc::default();
        let rec = Rc::new(RefCell::new(Rec {
            log: log.clone(),
            fail,
            uid: Uid(0),
            gid: Gid(0),
            regain_root,
        }));
        let target = Target {
            uid: Uid(65534),
            gid: Gid(65534),
        };
        let err = run(&mut SysFwd(rec.clone()), &mut RecSteps(rec), target, nohup);
        let l = log.borrow().clone();
        (l, err)
    }

    #[test]
    fn full_sequence_in_order() {
        let (log, err) = drive("", false, false);
        assert_eq!(log, FULL);
        // The double's execveat "fails", so run reports the exec error.
        assert!(matches!(err, Error::Refused(ref l) if l[0].starts_with("safexec: execveat:")));
    }

    #[test]
    fn nohup_keeps_sighup_ignored() {
        let (log, _) = drive("", false, true);
        assert!(log.contains(&"reset_signals(hup ignored)".to_string()));
    }

    #[test]
    fn every_failing_step_stops_before_exec() {
        // Table: (failing step, the last step that may have run).
        let cases: &[(&str, &str)] = &[
            ("compile_seccomp", "compile_seccomp"),
            ("job_record", "job_record"),
            ("cgroup", "cgroup"),
            ("rlimits", "rlimits"),
            ("prepare_as_root", "prepare_as_root"),
            ("prepare_landlock", "prepare_landlock"),
            ("bounding_set", "bounding_set"),
            ("setgroups", "setgroups"),
            ("setresgid", "setresgid"),
            ("setresuid", "setresuid"),
            ("uid-mismatch", "getresuid"),
            ("groups-left", "getgroups"),
            ("no_new_privs", "no_new_privs"),
            ("verify_caps", "verify_caps"),
            ("finalize", "finalize"),
            ("apply_landlock", "apply_landlock"),
            ("reset_signals", "reset_signals"),
            ("close_fds", "close_fds"),
            ("seccomp", "seccomp"),
        ];
        for (fail, last) in cases {
            let (log, err) = drive(fail, false, false);
            assert_eq!(
                log.last().map(String::as_str),
                Some(*last),
                "{fail}: {log:?}"
            );
            assert!(!log.contains(&"execveat".to_string()), "{fail}");
            assert!(matches!(err, Error::Refused(_)), "{fail}");
        }
    }

    #[test]
    fn regaining_root_is_fatal() {
        let (log, err) = drive("", true, false);
        assert_eq!(log.last().map(String::as_str), Some("setuid(0)"));
        assert_eq!(err, Error::line(msg::fatal_root()));
    }
}
