//! Unit tests of the cgroup placement against an in-memory cgroupfs.

use super::host::cgroup2_mount;
use super::limits::{set_verified, Expect};
use super::*;
use std::collections::BTreeMap;

/// An in-memory cgroupfs that behaves like the kernel where it matters: mkdir creates the
/// interface files of the controllers the parent delegates, `cgroup.subtree_control` only
/// takes available controllers, memory limits round down to 4 KiB, `cgroup.procs` moves a
/// pid, rmdir refuses populated groups.
struct FakeFs {
    files: BTreeMap<PathBuf, String>,
    dirs: BTreeSet<PathBuf>,
    version: Version,
    /// Every write, as "path<TAB>data".
    writes: Vec<String>,
    alive: BTreeSet<u32>,
    fail_write: Option<&'static str>,
    lock_busy: bool,
    recorded: usize,
}

impl FakeFs {
    fn v2(root_controllers: &str, root_subtree: &str) -> FakeFs {
        let mut fs = FakeFs::empty(Version::V2);
        let root = PathBuf::from("/cg");
        fs.dirs.insert(root.clone());
        fs.files.insert(
            root.join("cgroup.controllers"),
            format!("{root_controllers}\n"),
        );
        fs.files.insert(
            root.join("cgroup.subtree_control"),
            format!("{root_subtree}\n"),
        );
        fs.files.insert(root.join("cgroup.procs"), "1\n".into());
        fs
    }
    fn v1() -> FakeFs {
        let mut fs = FakeFs::empty(Version::V1);
        fs.dirs.insert(PathBuf::from("/cg"));
        fs
    }
    fn empty(version: Version) -> FakeFs {
        FakeFs {
            files: BTreeMap::new(),
            dirs: BTreeSet::new(),
            version,
            writes: Vec::new(),
            alive: BTreeSet::new(),
            fail_write: None,
            lock_busy: false,
            recorded: 0,
        }
    }
    /// The kernel's side of a write of `text` (one value, newline optional) to `p`.
    fn store(&mut self, p: &Path, text: &str) -> io::Result<()> {
        self.writes.push(format!("{}\t{text}", p.display()));
        if self.fail_write.is_some_and(|f| p.ends_with(f)) {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        if !self.files.contains_key(p) {
            return Err(io::ErrorKind::NotFound.into());
        }
        let value = text.trim_end().to_string();
        let name = p.file_name().unwrap().to_str().unwrap();
        let dir = p.parent().unwrap().to_path_buf();
        let stored = match name {
            "cgroup.subtree_control" => {
                let ctl = value.strip_prefix('+').unwrap();
                let avail = words(self.files.get(&dir.join("cgroup.controllers")).unwrap());
                if !avail.contains(ctl) {
                    return Err(io::Error::from_raw_os_error(libc::ENOENT));
                }
                let mut on = words(&self.files[p]);
                on.insert(ctl.to_string());
                on.into_iter().collect::<Vec<_>>().join(" ")
            }
            "cgroup.procs" => {
                for procs in self
                    .files
                    .iter_mut()
                    .filter(|(k, _)| k.ends_with("cgroup.procs"))
                {
                    *procs.1 = procs
                        .1
                        .lines()
                        .filter(|l| *l != value)
                        .map(|l| format!("{l}\n"))
                        .collect();
                }
                let cur = self.files.get(p).cloned().unwrap_or_default();
                if let Some(ev) = self.files.get_mut(&dir.join("cgroup.events")) {
                    *ev = "populated 1\nfrozen 0\n".into();
                }
                format!("{cur}{value}")
            }
            "memory.max" | "memory.limit_in_bytes" | "memory.memsw.limit_in_bytes" => {
                match value.as_str() {
                    "max" => value,
                    "-1" => "9223372036854771712".to_string(),
                    v => (v.parse::<u64>().unwrap() / 4096 * 4096).to_string(),
                }
            }
            _ => value,
        };
        self.files.insert(p.to_path_buf(), format!("{stored}\n"));
        Ok(())
    }
    fn file(&self, p: &str) -> &str {
        self.files
            .get(Path::new(p))
            .map(String::as_str)
            .unwrap_or("<none>")
    }
}

impl CgroupFs for FakeFs {
    fn mkdir(&mut self, p: &Path) -> io::Result<()> {
        if self.dirs.contains(p) {
            return Err(io::ErrorKind::AlreadyExists.into());
        }
        let parent = p.parent().unwrap().to_path_buf();
        if !self.dirs.contains(&parent) {
            return Err(io::ErrorKind::NotFound.into());
        }
        self.dirs.insert(p.to_path_buf());
        let f = |n: &str| p.join(n);
        self.files.insert(f("cgroup.procs"), String::new());
        match self.version {
            Version::V2 => {
                let delegated = self
                    .files
                    .get(&parent.join("cgroup.subtree_control"))
                    .cloned()
                    .unwrap_or_default();
                self.files
                    .insert(f("cgroup.controllers"), delegated.clone());
                self.files.insert(f("cgroup.subtree_control"), "\n".into());
                self.files
                    .insert(f("cgroup.events"), "populated 0\nfrozen 0\n".into());
                let d = words(&delegated);
                if d.contains("memory") {
                    self.files.insert(f("memory.max"), "max\n".into());
                    self.files.insert(f("memory.swap.max"), "max\n".into());
                }
                if d.contains("pids") {
                    self.files.insert(f("pids.max"), "max\n".into());
                }
                if d.contains("cpu") {
                    self.files.insert(f("cpu.weight"), "100\n".into());
                    self.files.insert(f("cpu.max"), "max 100000\n".into());
                }
            }
            Version::V1 => {
                for (n, v) in [
                    ("memory.limit_in_bytes", "9223372036854771712"),
                    ("memory.memsw.limit_in_bytes", "9223372036854771712"),
                    ("pids.max", "max"),
                    ("cpu.shares", "1024"),
                    ("cpu.cfs_period_us", "100000"),
                    ("cpu.cfs_quota_us", "-1"),
                ] {
                    self.files.insert(f(n), format!("{v}\n"));
                }
            }
        }
        Ok(())
    }
    fn rmdir(&mut self, p: &Path) -> io::Result<()> {
        if !self.dirs.contains(p) {
            return Err(io::ErrorKind::NotFound.into());
        }
        if !self
            .files
            .get(&p.join("cgroup.procs"))
            .is_none_or(|s| s.trim().is_empty())
            || self.dirs.iter().any(|d| d.parent() == Some(p))
        {
            return Err(io::Error::from_raw_os_error(libc::EBUSY));
        }
        self.dirs.remove(p);
        self.files.retain(|k, _| k.parent() != Some(p));
        Ok(())
    }
    fn exists(&mut self, p: &Path) -> bool {
        self.dirs.contains(p) || self.files.contains_key(p)
    }
    fn read(&mut self, p: &Path) -> io::Result<String> {
        self.files
            .get(p)
            .cloned()
            .ok_or_else(|| io::ErrorKind::NotFound.into())
    }
    fn write_once(&mut self, p: &Path, data: &[u8]) -> io::Result<usize> {
        let text = std::str::from_utf8(data).unwrap().to_string();
        assert!(
            text.ends_with('\n'),
            "every cgroup write of our own carries its newline"
        );
        self.store(p, &text)?;
        Ok(data.len())
    }
    fn apply(&mut self, dir: &Path, version: Version, op: Op) -> io::Result<()> {
        assert_eq!(version, self.version);
        // What cgroups-rs writes: the bare value, one write.
        self.store(&dir.join(op.file(version)), &op.text(version))
    }
    fn subdirs(&mut self, p: &Path) -> io::Result<Vec<String>> {
        Ok(self
            .dirs
            .iter()
            .filter(|d| d.parent() == Some(p))
            .map(|d| d.file_name().unwrap().to_str().unwrap().to_string())
            .collect())
    }
    fn try_lock_caller(&mut self, uid: u32) -> io::Result<TryLock> {
        self.writes.push(format!("caller {uid}\tLOCK"));
        Ok(if self.lock_busy {
            TryLock::Busy
        } else {
            TryLock::Held { _fd: None }
        })
    }
    fn alive(&mut self, pid: u32) -> bool {
        self.alive.contains(&pid)
    }
    fn recorded_jobs(&mut self, _uid: u32, _own: u32) -> usize {
        self.recorded
    }
}

const WAIT: Duration = Duration::from_millis(50);

fn v2_hier() -> Hier {
    Hier {
        mount: "/cg".into(),
        version: Version::V2,
        ctls: vec![Ctl::Memory, Ctl::Pids, Ctl::Cpu],
    }
}

fn v1_hier(ctls: Vec<Ctl>) -> Hier {
    Hier {
        mount: "/cg".into(),
        version: Version::V1,
        ctls,
    }
}

#[test]
fn v2_job_gets_limits_in_single_writes_with_newline() {
    let mut fs = FakeFs::v2("cpuset cpu io memory pids", "cpu memory pids");
    let mut cfg = Config::default();
    cfg.limits.cpu_quota_percent = Some(50);
    let p = place_with(&mut fs, &[v2_hier()], &cfg, 1000, 4242, Detach::Auto, WAIT).unwrap();
    assert_eq!(p.groups, [PathBuf::from("/cg/nppp/caller.1000/nppp.4242")]);
    assert_eq!(
        p.enforced,
        Enforced {
            memory: true,
            pids: true,
            cpu: true
        }
    );
    assert_eq!(
        fs.file("/cg/nppp/caller.1000/nppp.4242/memory.max"),
        "536870912\n"
    );
    assert_eq!(
        fs.file("/cg/nppp/caller.1000/nppp.4242/memory.swap.max"),
        "0\n"
    );
    assert_eq!(fs.file("/cg/nppp/caller.1000/nppp.4242/pids.max"), "64\n");
    assert_eq!(fs.file("/cg/nppp/caller.1000/nppp.4242/cpu.weight"), "50\n");
    assert_eq!(
        fs.file("/cg/nppp/caller.1000/nppp.4242/cpu.max"),
        "50000 100000\n"
    );
    assert_eq!(
        fs.file("/cg/nppp/caller.1000/nppp.4242/cgroup.procs"),
        "4242\n"
    );
    // The root is never written; the parent gets one write per controller.
    assert!(
        !fs.writes.iter().any(|w| w.starts_with("/cg/cgroup.")),
        "{:?}",
        fs.writes
    );
    let parent_writes: Vec<_> = fs
        .writes
        .iter()
        .filter(|w| w.starts_with("/cg/nppp/cgroup.subtree_control"))
        .collect();
    assert_eq!(parent_writes.len(), 3, "{parent_writes:?}");
    assert!(parent_writes
        .iter()
        .all(|w| w.ends_with('\n') && w.matches('+').count() == 1));
    // Locked before the job group was created.
    let lock = fs
        .writes
        .iter()
        .position(|w| w == "caller 1000\tLOCK")
        .unwrap();
    let first_job_write = fs
        .writes
        .iter()
        .position(|w| w.contains("nppp.4242"))
        .unwrap();
    assert!(lock < first_job_write);
}

#[test]
fn v2_without_delegated_controllers_falls_back() {
    // A hybrid host's unified tree: the root offers none of the controllers.
    let mut fs = FakeFs::v2("hugetlb", "");
    let p = place_with(
        &mut fs,
        &[v2_hier()],
        &Config::default(),
        1000,
        7,
        Detach::Auto,
        WAIT,
    )
    .unwrap();
    assert_eq!(p.groups, [PathBuf::from("/cg/nppp/caller.1000/nppp.7")]);
    assert_eq!(p.enforced, Enforced::default());
    assert!(fs.writes.iter().all(|w| !w.contains("subtree_control")));
    let e = place_with(
        &mut FakeFs::v2("hugetlb", ""),
        &[v2_hier()],
        &Config::default(),
        1000,
        7,
        Detach::Required,
        WAIT,
    )
    .unwrap_err();
    assert!(e.starts_with("cgroup v2 requested but join failed"), "{e}");
}

#[test]
fn v1_limits_and_rounding() {
    let mut fs = FakeFs::v1();
    let mut cfg = Config::default();
    cfg.limits.memory_max = Some((1 << 20) + 100);
    cfg.limits.cpu_quota_percent = Some(25);
    let hier = v1_hier(vec![Ctl::Memory, Ctl::Pids, Ctl::Cpu]);
    let p = place_with(&mut fs, &[hier], &cfg, 1000, 99, Detach::Required, WAIT).unwrap();
    assert_eq!(
        p.enforced,
        Enforced {
            memory: true,
            pids: true,
            cpu: true
        }
    );
    let job = "/cg/nppp/caller.1000/nppp.99";
    assert_eq!(
        fs.file(&format!("{job}/memory.limit_in_bytes")),
        "1048576\n"
    );
    assert_eq!(
        fs.file(&format!("{job}/memory.memsw.limit_in_bytes")),
        "1048576\n"
    );
    assert_eq!(fs.file(&format!("{job}/pids.max")), "64\n");
    assert_eq!(fs.file(&format!("{job}/cpu.shares")), "512\n");
    assert_eq!(fs.file(&format!("{job}/cpu.cfs_quota_us")), "25000\n");
}

#[test]
fn failed_write_removes_the_group_and_notes_why() {
    let mut fs = FakeFs::v1();
    fs.fail_write = Some("pids.max");
    let p = place_with(
        &mut fs,
        &[v1_hier(vec![Ctl::Pids])],
        &Config::default(),
        1000,
        5,
        Detach::Auto,
        WAIT,
    )
    .unwrap();
    assert!(p.is_rlimits_only());
    assert_eq!(p.summary(), "(none; rlimits in effect)");
    assert!(!p.enforced.pids);
    assert!(p.notes[0].contains("pids.max"), "{:?}", p.notes);
    assert!(!fs.dirs.contains(Path::new("/cg/nppp/caller.1000/nppp.5")));
}

#[test]
fn readback_mismatch_is_an_error() {
    let mut fs = FakeFs::v1();
    fs.mkdir(Path::new("/cg/x")).unwrap();
    fs.files.insert("/cg/x/cpu.shares".into(), "1\n".into());
    struct Stuck<'a>(&'a mut FakeFs);
    impl CgroupFs for Stuck<'_> {
        fn mkdir(&mut self, p: &Path) -> io::Result<()> {
            self.0.mkdir(p)
        }
        fn rmdir(&mut self, p: &Path) -> io::Result<()> {
            self.0.rmdir(p)
        }
        fn exists(&mut self, p: &Path) -> bool {
            self.0.exists(p)
        }
        fn read(&mut self, p: &Path) -> io::Result<String> {
            self.0.read(p)
        }
        fn write_once(&mut self, _: &Path, d: &[u8]) -> io::Result<usize> {
            Ok(d.len())
        }
        fn apply(&mut self, _: &Path, _: Version, _: Op) -> io::Result<()> {
            Ok(())
        }
        fn subdirs(&mut self, p: &Path) -> io::Result<Vec<String>> {
            self.0.subdirs(p)
        }
        fn try_lock_caller(&mut self, uid: u32) -> io::Result<TryLock> {
            self.0.try_lock_caller(uid)
        }
        fn alive(&mut self, pid: u32) -> bool {
            self.0.alive(pid)
        }
        fn recorded_jobs(&mut self, uid: u32, own: u32) -> usize {
            self.0.recorded_jobs(uid, own)
        }
    }
    let e = set_verified(
        &mut Stuck(&mut fs),
        Path::new("/cg/x"),
        Version::V1,
        Op::CpuShares(512),
        Expect::Same("512"),
    )
    .unwrap_err();
    assert!(e.contains("reads back \"1\""), "{e}");
}

#[test]
fn sweep_removes_only_dead_empty_job_groups() {
    let mut fs = FakeFs::v2("memory pids cpu", "memory pids cpu");
    fs.mkdir(Path::new("/cg/nppp")).unwrap();
    let parent = Path::new("/cg/nppp/caller.1000");
    fs.mkdir(parent).unwrap();
    for pid in [10, 11, 12] {
        fs.mkdir(&parent.join(job_name(pid))).unwrap();
    }
    fs.mkdir(&parent.join("other")).unwrap();
    fs.mkdir(&parent.join("nppp.x1")).unwrap();
    fs.alive.insert(11);
    fs.write_once(&parent.join("nppp.12/cgroup.procs"), b"777\n")
        .unwrap();
    // Another caller's stale group is that caller's to sweep, under that caller's lock.
    fs.mkdir(Path::new("/cg/nppp/caller.2000")).unwrap();
    fs.mkdir(Path::new("/cg/nppp/caller.2000/nppp.13")).unwrap();
    let p = place_with(
        &mut fs,
        &[v2_hier()],
        &Config::default(),
        1000,
        20,
        Detach::Auto,
        WAIT,
    )
    .unwrap();
    assert!(
        !fs.dirs.contains(&parent.join("nppp.10")),
        "dead and empty: removed"
    );
    assert!(fs.dirs.contains(&parent.join("nppp.11")), "alive: kept");
    assert!(fs.dirs.contains(&parent.join("nppp.12")), "populated: kept");
    assert!(fs.dirs.contains(&parent.join("other")));
    assert!(fs.dirs.contains(&parent.join("nppp.x1")));
    assert!(fs.dirs.contains(Path::new("/cg/nppp/caller.2000/nppp.13")));
    assert_eq!(
        p.notes,
        ["removed empty stale cgroup /cg/nppp/caller.1000/nppp.10"]
    );
}

#[test]
fn reused_pid_group_is_recreated_or_refused() {
    let mut fs = FakeFs::v1();
    let hier = v1_hier(vec![Ctl::Pids]);
    fs.mkdir(Path::new("/cg/nppp")).unwrap();
    fs.mkdir(Path::new("/cg/nppp/caller.1000")).unwrap();
    fs.mkdir(Path::new("/cg/nppp/caller.1000/nppp.30")).unwrap();
    fs.files
        .insert("/cg/nppp/caller.1000/nppp.30/pids.max".into(), "3\n".into());
    place_with(
        &mut fs,
        std::slice::from_ref(&hier),
        &Config::default(),
        1000,
        30,
        Detach::Auto,
        WAIT,
    )
    .unwrap();
    assert_eq!(fs.file("/cg/nppp/caller.1000/nppp.30/pids.max"), "64\n");
    // Populated by a leftover of the earlier job: not joined.
    let mut fs = FakeFs::v1();
    fs.mkdir(Path::new("/cg/nppp")).unwrap();
    fs.mkdir(Path::new("/cg/nppp/caller.1000")).unwrap();
    fs.mkdir(Path::new("/cg/nppp/caller.1000/nppp.31")).unwrap();
    fs.files.insert(
        "/cg/nppp/caller.1000/nppp.31/cgroup.procs".into(),
        "555\n".into(),
    );
    let e = place_with(
        &mut fs,
        &[hier],
        &Config::default(),
        1000,
        31,
        Detach::Required,
        WAIT,
    )
    .unwrap_err();
    assert!(e.contains("exists and is not empty"), "{e}");
}

#[test]
fn nested_parent_enables_every_level_below_the_root() {
    let mut fs = FakeFs::v2("memory pids cpu io", "memory pids");
    let cfg = Config {
        cgroup_parent: "jobs/npp".into(),
        ..Config::default()
    };
    let p = place_with(&mut fs, &[v2_hier()], &cfg, 1000, 8, Detach::Auto, WAIT).unwrap();
    assert_eq!(p.groups, [PathBuf::from("/cg/jobs/npp/caller.1000/nppp.8")]);
    // cpu is not delegated by the root, so it cannot be enabled below it.
    assert_eq!(
        p.enforced,
        Enforced {
            memory: true,
            pids: true,
            cpu: false
        }
    );
    assert_eq!(fs.file("/cg/jobs/cgroup.subtree_control"), "memory pids\n");
    assert_eq!(
        fs.file("/cg/jobs/npp/cgroup.subtree_control"),
        "memory pids\n"
    );
}

#[test]
fn no_hierarchy_means_rlimits_or_failure() {
    let mut fs = FakeFs::v1();
    let p = place_with(
        &mut fs,
        &[],
        &Config::default(),
        1000,
        1,
        Detach::Auto,
        WAIT,
    )
    .unwrap();
    assert!(p.is_rlimits_only());
    let e = place_with(
        &mut fs,
        &[],
        &Config::default(),
        1000,
        1,
        Detach::Required,
        WAIT,
    )
    .unwrap_err();
    assert_eq!(e, "cgroup v2 requested but not available");
}

#[test]
fn detach_off_is_not_honoured() {
    let v = |s: &str| Detach::from_env_value(Some(OsStr::new(s)));
    assert_eq!(v("off"), Detach::Auto);
    assert_eq!(v("auto"), Detach::Auto);
    assert_eq!(v("cgv2"), Detach::Required);
    assert_eq!(v("OFF"), Detach::Auto);
    assert_eq!(Detach::from_env_value(None), Detach::Auto);
}

#[test]
fn job_names_are_exact() {
    assert_eq!(job_pid("nppp.123"), Some(123));
    for bad in [
        "nppp.",
        "nppp.+1",
        "nppp.1a",
        "nppp.service",
        "xnppp.1",
        "nppp.99999999999",
    ] {
        assert_eq!(job_pid(bad), None, "{bad}");
    }
}

#[test]
fn cgroup2_mount_is_found_in_mountinfo() {
    let text = "32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n\
                41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";
    assert_eq!(
        cgroup2_mount(text),
        Some(PathBuf::from("/sys/fs/cgroup/unified"))
    );
    assert_eq!(
        cgroup2_mount("1 2 0:1 / /x rw - cgroup cgroup rw,cpu\n"),
        None
    );
}

#[test]
fn caller_parent_carries_the_caller_limits_written_once() {
    let mut fs = FakeFs::v2("memory pids cpu", "memory pids cpu");
    let mut cfg = Config::default();
    cfg.caller_limits.memory_max = Some(1 << 30);
    cfg.caller_limits.pids_max = Some(100);
    place_with(
        &mut fs,
        &[v2_hier()],
        &cfg,
        1000,
        41,
        Detach::Required,
        WAIT,
    )
    .unwrap();
    assert_eq!(fs.file("/cg/nppp/caller.1000/memory.max"), "1073741824\n");
    assert_eq!(fs.file("/cg/nppp/caller.1000/pids.max"), "100\n");
    // Controllers reach the job through the caller level.
    assert_eq!(
        fs.file("/cg/nppp/caller.1000/cgroup.subtree_control"),
        "cpu memory pids\n"
    );
    assert_eq!(fs.file("/cg/nppp/caller.1000/nppp.41/pids.max"), "64\n");
    // The next run finds the values in place and writes no caller limit again.
    fs.writes.clear();
    place_with(
        &mut fs,
        &[v2_hier()],
        &cfg,
        1000,
        42,
        Detach::Required,
        WAIT,
    )
    .unwrap();
    assert!(
        !fs.writes
            .iter()
            .any(|w| w.starts_with("/cg/nppp/caller.1000/memory.max")
                || w.starts_with("/cg/nppp/caller.1000/pids.max")),
        "{:?}",
        fs.writes
    );
    // Unset again: back to no limit.
    place_with(
        &mut fs,
        &[v2_hier()],
        &Config::default(),
        1000,
        43,
        Detach::Required,
        WAIT,
    )
    .unwrap();
    assert_eq!(fs.file("/cg/nppp/caller.1000/memory.max"), "max\n");
    assert_eq!(fs.file("/cg/nppp/caller.1000/pids.max"), "max\n");
}

#[test]
fn callers_get_separate_parents() {
    let mut fs = FakeFs::v1();
    let hier = v1_hier(vec![Ctl::Pids]);
    let a = place_with(
        &mut fs,
        std::slice::from_ref(&hier),
        &Config::default(),
        1000,
        50,
        Detach::Auto,
        WAIT,
    )
    .unwrap();
    let b = place_with(
        &mut fs,
        &[hier],
        &Config::default(),
        2000,
        51,
        Detach::Auto,
        WAIT,
    )
    .unwrap();
    assert_eq!(a.groups, [PathBuf::from("/cg/nppp/caller.1000/nppp.50")]);
    assert_eq!(b.groups, [PathBuf::from("/cg/nppp/caller.2000/nppp.51")]);
}

#[test]
fn caller_jobs_max_refuses_the_next_job_before_any_group_is_made() {
    let mut fs = FakeFs::v1();
    let hier = v1_hier(vec![Ctl::Pids]);
    let mut cfg = Config::default();
    cfg.caller_limits.jobs_max = 2;
    for pid in [60, 61] {
        place_with(
            &mut fs,
            std::slice::from_ref(&hier),
            &cfg,
            1000,
            pid,
            Detach::Auto,
            WAIT,
        )
        .unwrap();
        fs.alive.insert(pid);
    }
    let e = place_with(
        &mut fs,
        std::slice::from_ref(&hier),
        &cfg,
        1000,
        62,
        Detach::Auto,
        WAIT,
    )
    .unwrap_err();
    assert_eq!(
        e,
        "too many jobs: this caller already has 2 running (caller_jobs_max = 2); \
         try again when one has finished"
    );
    assert!(!fs.dirs.contains(Path::new("/cg/nppp/caller.1000/nppp.62")));
    // Another caller is not affected.
    place_with(
        &mut fs,
        std::slice::from_ref(&hier),
        &cfg,
        2000,
        63,
        Detach::Auto,
        WAIT,
    )
    .unwrap();
    // A finished job (dead, empty group) frees its slot.
    fs.alive.remove(&60);
    fs.files.insert(
        "/cg/nppp/caller.1000/nppp.60/cgroup.procs".into(),
        String::new(),
    );
    place_with(&mut fs, &[hier], &cfg, 1000, 64, Detach::Auto, WAIT).unwrap();
}

#[test]
fn without_cgroups_the_job_records_are_counted() {
    let mut fs = FakeFs::v1();
    let mut cfg = Config::default();
    cfg.caller_limits.jobs_max = 3;
    fs.recorded = 2;
    place_with(&mut fs, &[], &cfg, 1000, 70, Detach::Auto, WAIT).unwrap();
    fs.recorded = 3;
    let e = place_with(&mut fs, &[], &cfg, 1000, 71, Detach::Auto, WAIT).unwrap_err();
    assert!(e.starts_with("too many jobs"), "{e}");
}

#[test]
fn a_held_lock_is_waited_for_boundedly_then_refused() {
    let mut fs = FakeFs::v1();
    fs.lock_busy = true;
    let t = std::time::Instant::now();
    let e = place_with(
        &mut fs,
        &[v1_hier(vec![Ctl::Pids])],
        &Config::default(),
        1000,
        80,
        Detach::Auto,
        WAIT,
    )
    .unwrap_err();
    assert!(t.elapsed() >= WAIT && t.elapsed() < WAIT * 20);
    assert!(
        e.starts_with("cannot lock /run/safexec/cgroup.1000.lock: another run of this caller"),
        "{e}"
    );
    // Nothing was created while unlocked.
    assert!(fs.writes.iter().all(|w| w.ends_with("LOCK")));
}
