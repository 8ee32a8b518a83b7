//! Confinement of a job, observed from outside: the real setuid `safexec` run by an unprivileged
//! user, its tool inspected through /proc and the cgroup files of this host.
//!
//! Every test holds the `/etc/safexec.conf` lock (through `with_config`/`without_config`), so
//! the limits it asserts are the ones it configured, whatever other test processes write.

mod common;

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;

/// A probe tool (bind-mounted over an allowlisted name) that reports its confinement and tries
/// the calls the seccomp filter must deny. Arguments are scanned like the harness probe:
/// `sleep/<secs>`, `pid-to/<path>` (last: the rest of the argument is the path; `-` is
/// stdout, the one place a Landlock-confined job can write outside its job directory), `fork/`
/// (fork a child that sleeps 60 s first; its pid follows ours), `write-cwd/` (write a file in
/// the cwd), `read/<path>` (last: read that file); results go to stdout as `key=ok|errnoN`.
const CONFINE_PROBE: &str = r#"
use std::io::Write;
extern "C" {
    fn syscall(n: i64, ...) -> i64;
    fn __errno_location() -> *mut i32;
    fn fork() -> i32;
    fn sleep(s: u32) -> u32;
    fn _exit(c: i32) -> !;
    fn waitpid(p: i32, st: *mut i32, o: i32) -> i32;
    fn prctl(o: i32, a: u64, b: u64, c: u64, d: u64) -> i32;
}
#[cfg(target_arch = "x86_64")]
mod nr { pub const PTRACE: i64 = 101; pub const CLONE: i64 = 56; pub const KEYCTL: i64 = 250; pub const UNSHARE: i64 = 272; pub const PERSONALITY: i64 = 135; }
#[cfg(target_arch = "aarch64")]
mod nr { pub const PTRACE: i64 = 117; pub const CLONE: i64 = 220; pub const KEYCTL: i64 = 219; pub const UNSHARE: i64 = 97; pub const PERSONALITY: i64 = 92; }
const IO_URING_SETUP: i64 = 425;
const CLONE3: i64 = 435;
fn errno() -> i32 { unsafe { *__errno_location() } }
fn res(r: i64) -> String { if r < 0 { format!("errno{}", errno()) } else { "ok".to_string() } }
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mut child = 0;
    for a in &args {
        if a.contains("fork/") {
            child = unsafe { fork() };
            if child == 0 { unsafe { sleep(60); _exit(0) } }
        }
        if let Some(i) = a.find("pid-to/") {
            let line = format!("{} {}\n", std::process::id(), child);
            if &a[i + 6..] == "/-" {
                let mut out = std::io::stdout();
                let _ = out.write_all(line.as_bytes());
                let _ = out.flush();
            } else {
                let _ = std::fs::write(&a[i + 6..], line);
            }
        }
        if let Some(i) = a.find("read/") {
            let r = match std::fs::read(&a[i + 4..]) {
                Ok(_) => "ok".to_string(),
                Err(e) => format!("errno{}", e.raw_os_error().unwrap_or(0)),
            };
            println!("read={r}");
        }
        if a.contains("write-cwd/") {
            let r = match std::fs::write("probe-out", b"x") {
                Ok(()) => "ok".to_string(),
                Err(e) => format!("errno{}", e.raw_os_error().unwrap_or(0)),
            };
            println!("write_cwd={r}");
        }
        if let Some(i) = a.find("sleep/") {
            let s: u64 = a[i + 6..].split('/').next().unwrap_or("0").parse().unwrap_or(0);
            std::thread::sleep(std::time::Duration::from_secs(s));
        }
    }
    let mut o = String::new();
    for f in ["status", "limits", "cgroup"] {
        o.push_str(&format!("--- {f}\n{}", std::fs::read_to_string(format!("/proc/self/{f}")).unwrap_or_default()));
    }
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map(|x| x.1).unwrap_or("");
    o.push_str(&format!("securebits={:#x}\n", unsafe { prctl(27, 0, 0, 0, 0) }));
    o.push_str(&format!("nice={}\n", after.split_whitespace().nth(16).unwrap_or("?")));
    // Before unshare: once in a new user namespace (unmapped), a nested one is EPERM anyway.
    let r = unsafe { syscall(nr::CLONE, 0x10000000i64 | 17, 0i64, 0i64, 0i64, 0i64) };
    if r == 0 { unsafe { _exit(0) } }
    if r > 0 { unsafe { waitpid(r as i32, std::ptr::null_mut(), 0) }; }
    o.push_str(&format!("clone_newuser={}\n", res(r)));
    o.push_str(&format!("unshare_newuser={}\n", res(unsafe { syscall(nr::UNSHARE, 0x10000000i64) })));
    o.push_str(&format!("ptrace_traceme={}\n", res(unsafe { syscall(nr::PTRACE, 0i64, 0i64, 0i64, 0i64) })));
    o.push_str(&format!("keyctl={}\n", res(unsafe { syscall(nr::KEYCTL, 0i64, -3i64, 0i64) })));
    let mut params = [0u8; 120];
    let r = unsafe { syscall(IO_URING_SETUP, 1i64, params.as_mut_ptr()) };
    o.push_str(&format!("io_uring_setup={}\n", res(r)));
    o.push_str(&format!("clone3={}\n", res(unsafe { syscall(CLONE3, 0i64, 0i64) })));
    o.push_str(&format!("personality_query={}\n", res(unsafe { syscall(nr::PERSONALITY, 0xffffffffi64) })));
    o.push_str(&format!("personality_norandom={}\n", res(unsafe { syscall(nr::PERSONALITY, 0x0040000i64) })));
    let t = std::thread::spawn(|| 7).join().unwrap_or(0);
    o.push_str(&format!("thread={}\n", if t == 7 { "ok" } else { "failed" }));
    let _ = std::io::stdout().write_all(o.as_bytes());
}
"#;

fn confine_probe() -> PathBuf {
    compile_helper("confine-probe", CONFINE_PROBE)
}

/// Namespace setup that puts the confinement probe over `/usr/bin/wget`.
fn probe_over_wget() -> String {
    format!("mount --bind {} /usr/bin/wget", confine_probe().display())
}

fn value<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.lines().find_map(|l| {
        l.strip_prefix(key)
            .and_then(|r| r.strip_prefix('=').or_else(|| r.strip_prefix(':')))
            .map(str::trim)
    })
}

/// The soft and hard values of one line of /proc/<pid>/limits.
fn limit(limits: &str, name: &str) -> (String, String) {
    let line = limits
        .lines()
        .find(|l| l.starts_with(name))
        .unwrap_or_else(|| panic!("no {name:?} in limits:\n{limits}"));
    let f: Vec<&str> = line[name.len()..].split_whitespace().collect();
    (f[0].to_string(), f[1].to_string())
}

/// A private directory for FIFOs and pid files that the job user can use.
fn scratch(tag: &str) -> PathBuf {
    let dir = Path::new("/tmp/safexec-tests").join(format!("{}-confine-{tag}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o1777)).unwrap();
    dir
}

/// Starts `safexec sha256sum -` as the test user with a pipe on stdin; the tool blocks
/// reading it until the test closes it, so /proc and the cgroup files of the live job can be
/// read. (A file operand is refused in setuid mode: it would be read as the job user.)
struct LiveJob {
    child: Child,
    pid: u32,
}

impl LiveJob {
    fn start(_tag: &str, env: &[(&str, &str)]) -> LiveJob {
        let mut inv = Invocation::new(setuid_safexec())
            .args(["sha256sum", "-"])
            .as_user(test_user());
        for (k, v) in env {
            inv = inv.env(k, v);
        }
        let mut cmd = inv.command();
        cmd.stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .stdin(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn safexec");
        // setpriv, env and safexec all exec in place: this pid becomes the tool's.
        let pid = child.id();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let exe = fs::read_link(format!("/proc/{pid}/exe")).unwrap_or_default();
            if exe == Path::new("/usr/bin/sha256sum") {
                // exe flips at exec; give the tool a moment to reach its read of stdin.
                std::thread::sleep(Duration::from_millis(100));
                break;
            }
            if let Ok(Some(_)) = child.try_wait() {
                let mut err = String::new();
                let _ = child.stderr.take().map(|mut e| e.read_to_string(&mut err));
                panic!("safexec exited before exec'ing sha256sum: {err}");
            }
            assert!(
                Instant::now() < deadline,
                "safexec never exec'd sha256sum (exe {exe:?})"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        LiveJob { child, pid }
    }

    fn proc(&self, file: &str) -> String {
        fs::read_to_string(format!("/proc/{}/{file}", self.pid)).unwrap()
    }

    /// Feeds and closes stdin and returns the finished run's output.
    fn finish(mut self) -> Output {
        if let Some(mut stdin) = self.child.stdin.take() {
            stdin.write_all(b"data\n").expect("write stdin");
        }
        let out = self.child.wait_with_output().unwrap();
        Output {
            status: out.status.code().unwrap_or(-1),
            stdout: out.stdout,
            stderr: out.stderr,
        }
    }
}

/// The job group of `pid` started by the main test user, relative to a hierarchy's root.
fn job_group(pid: u32) -> String {
    format!("/nppp/caller.{}/nppp.{pid}", test_user().uid)
}

fn cg(path: &str) -> String {
    fs::read_to_string(Path::new("/sys/fs/cgroup").join(path))
        .unwrap_or_else(|e| panic!("read /sys/fs/cgroup/{path}: {e}"))
        .trim()
        .to_string()
}

#[test]
fn live_job_has_no_capabilities_nnp_seccomp_and_its_own_cgroups() {
    without_config(|| {
        let job = LiveJob::start("live", &[]);
        let pid = job.pid;
        let status = job.proc("status");
        for set in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
            assert_eq!(
                value(&status, set),
                Some("0000000000000000"),
                "{set}\n{status}"
            );
        }
        assert_eq!(value(&status, "NoNewPrivs"), Some("1"));
        assert_eq!(value(&status, "Seccomp"), Some("2"));
        assert_eq!(value(&status, "Seccomp_filters"), Some("2"));
        let nobody = nobody();
        assert_eq!(
            value(&status, "Uid"),
            Some(format!("{0}\t{0}\t{0}\t{0}", nobody.uid).as_str())
        );

        let limits = job.proc("limits");
        assert_eq!(
            limit(&limits, "Max core file size"),
            ("0".into(), "0".into())
        );

        // One group per hierarchy, all named after the tool's pid.
        let cgroup = job.proc("cgroup");
        let name = job_group(pid);
        for ctl in ["memory", "pids", "cpu"] {
            assert!(
                cgroup
                    .lines()
                    .any(|l| l.ends_with(&format!(":{ctl}:{name}"))),
                "{ctl} not joined:\n{cgroup}"
            );
        }
        // This hybrid host's v2 tree offers none of the controllers, so joining it would
        // limit nothing and cost a mkdir, writes and an rmdir per job: it is not joined.
        assert!(cgroup.lines().any(|l| l == "0::/"), "{cgroup}");

        // The defaults, written once each and read back by safexec; here read by the test.
        assert_eq!(
            cg(&format!("memory{name}/memory.limit_in_bytes")),
            "536870912"
        );
        assert_eq!(cg(&format!("pids{name}/pids.max")), "64");
        assert_eq!(cg(&format!("cpu{name}/cpu.shares")), "512");
        assert_eq!(cg(&format!("cpu{name}/cpu.cfs_quota_us")), "-1");
        assert_eq!(cg(&format!("pids{name}/cgroup.procs")), pid.to_string());
        // Root-owned, readable by the job, not owned by the caller's group.
        let md = fs::metadata(format!("/sys/fs/cgroup/memory{name}")).unwrap();
        use std::os::unix::fs::MetadataExt;
        assert_eq!((md.uid(), md.gid(), md.mode() & 0o777), (0, 0, 0o755));

        let out = job.finish();
        assert_eq!(out.status, 0, "{out}");
        let err = out.stderr_str();
        assert!(err.contains("Summary: no_new_privs=on"), "{err}");
        assert!(
            err.contains(&format!("Summary: cgroup=/sys/fs/cgroup/memory{name},")),
            "{err}"
        );
    });
}

#[test]
fn configured_limits_reach_the_cgroup_files() {
    let conf = "memory_max = 256M\npids_max = 20\ncpu_weight = 200\ncpu_quota = 50\n";
    with_config(conf, || {
        let job = LiveJob::start("conf", &[("SAFEXEC_DETACH", "cgv2")]);
        let name = job_group(job.pid);
        assert_eq!(
            cg(&format!("memory{name}/memory.limit_in_bytes")),
            "268435456"
        );
        assert_eq!(
            cg(&format!("memory{name}/memory.memsw.limit_in_bytes")),
            "268435456"
        );
        assert_eq!(cg(&format!("pids{name}/pids.max")), "20");
        assert_eq!(cg(&format!("cpu{name}/cpu.shares")), "2048");
        assert_eq!(cg(&format!("cpu{name}/cpu.cfs_quota_us")), "50000");
        // cgroups enforce memory and pids, so no rlimit stands in for them.
        let limits = job.proc("limits");
        assert_eq!(limit(&limits, "Max address space").0, "unlimited");
        let out = job.finish();
        assert_eq!(out.status, 0, "{out}");
    });
}

#[test]
fn detach_off_is_not_honoured_in_setuid_mode() {
    without_config(|| {
        let job = LiveJob::start("off", &[("SAFEXEC_DETACH", "off")]);
        let cgroup = job.proc("cgroup");
        assert!(
            cgroup.contains(&format!(":pids:{}", job_group(job.pid))),
            "{cgroup}"
        );
        let out = job.finish();
        assert_eq!(out.status, 0, "{out}");
    });
}

#[test]
fn unsafe_config_is_ignored_with_a_warning() {
    with_config_mode("pids_max = 7\n", 0o666, || {
        let job = LiveJob::start("unsafe", &[]);
        assert_eq!(cg(&format!("pids{}/pids.max", job_group(job.pid))), "64");
        let out = job.finish();
        assert_eq!(out.status, 0, "{out}");
        assert!(
            out.stderr_str().contains(
                "Warning: ignoring /etc/safexec.conf: it is group- or other-writable; using the built-in defaults"
            ),
            "{out}"
        );
    });
}

#[test]
fn malformed_config_is_fatal_and_names_the_line() {
    with_config("pids_max = 64\n# fine\nbogus = 1\n", || {
        let out = Invocation::new(setuid_safexec())
            .args(["sha256sum", "/dev/null"])
            .as_user(test_user())
            .run();
        assert_eq!(out.status, 1, "{out}");
        assert!(out.stdout.is_empty(), "{out}");
        let err = out.stderr_str();
        assert!(
            err.contains("/etc/safexec.conf: line 3: unknown key \"bogus\""),
            "{err}"
        );
        assert_eq!(err.lines().filter(|l| l.contains("line 3")).count(), 1);
    });
}

#[test]
fn seccomp_denies_dangerous_calls_that_work_without_it() {
    without_config(|| {
        // Baseline: the same probe run directly as the user, no safexec, no filter.
        let direct = Invocation::new(confine_probe()).as_user(test_user()).run();
        assert_eq!(direct.status, 0, "{direct}");
        let d = direct.stdout_str();
        assert_eq!(value(&d, "Seccomp"), Some("0"));
        for ok in [
            "unshare_newuser",
            "ptrace_traceme",
            "clone_newuser",
            "keyctl",
        ] {
            assert_eq!(
                value(&d, ok),
                Some("ok"),
                "{ok} fails even without the filter:\n{d}"
            );
        }

        let out = Invocation::new(setuid_safexec())
            .args(["wget", "http://127.0.0.1/"])
            .as_user(test_user())
            .in_namespace(&probe_over_wget())
            .run();
        assert_eq!(out.status, 0, "{out}");
        let s = out.stdout_str();
        assert_eq!(value(&s, "Seccomp"), Some("2"), "{s}");
        let eperm = "errno1";
        for denied in [
            "unshare_newuser",
            "ptrace_traceme",
            "clone_newuser",
            "keyctl",
            "io_uring_setup",
            "personality_norandom",
        ] {
            assert_eq!(value(&s, denied), Some(eperm), "{denied}:\n{s}");
        }
        // clone3 answers ENOSYS so threads fall back to clone, and threads still work.
        assert_eq!(value(&s, "clone3"), Some("errno38"), "{s}");
        assert_eq!(value(&s, "thread"), Some("ok"));
        assert_eq!(value(&s, "personality_query"), Some("ok"));
        // NOROOT, NO_CAP_AMBIENT_RAISE and the locks of those, NO_SETUID_FIXUP and KEEP_CAPS.
        assert_eq!(value(&s, "securebits"), Some("0xeb"), "{s}");
    });
}

/// Sets SECBIT_EXEC_RESTRICT_FILE and its lock, then execs its arguments.
const SECBITS_EXEC: &str = r#"
use std::os::unix::process::CommandExt;
extern "C" {
    fn prctl(o: i32, a: u64, b: u64, c: u64, d: u64) -> i32;
}
fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    assert_eq!(unsafe { prctl(28, 0x300, 0, 0, 0) }, 0, "PR_SET_SECUREBITS");
    let e = std::process::Command::new(&args[0]).args(&args[1..]).exec();
    panic!("exec {}: {e}", args[0]);
}
"#;

#[test]
fn securebits_the_caller_set_are_kept() {
    // Any process may set SECBIT_EXEC_RESTRICT_FILE and its lock (Linux 6.14+); the job may
    // only get stricter, so they survive next to the job's own locks.
    without_config(|| {
        let out = Invocation::new(compile_helper("secbits-exec", SECBITS_EXEC))
            .arg(setuid_safexec())
            .args(["wget", "http://127.0.0.1/"])
            .as_user(test_user())
            .in_namespace(&probe_over_wget())
            .run();
        assert_eq!(out.status, 0, "{out}");
        assert_eq!(
            value(&out.stdout_str(), "securebits"),
            Some("0x3eb"),
            "{out}"
        );
    });
}

#[test]
fn rlimit_fallback_only_lowers_when_no_cgroup_is_usable() {
    without_config(|| {
        // No cgroup file system in this namespace; the caller's hard NPROC limit is 50.
        let setup = format!(
            "umount -R /sys/fs/cgroup\n{}\nprlimit --nproc=50:50 --pid $$",
            probe_over_wget()
        );
        let out = Invocation::new(setuid_safexec())
            .args(["wget", "http://127.0.0.1/"])
            .as_user(test_user())
            .in_namespace(&setup)
            .run();
        assert_eq!(out.status, 0, "{out}");
        let s = out.stdout_str();
        let err = out.stderr_str();
        assert!(
            err.contains("Info: falling back to RLIMITs + nice/ionice"),
            "{err}"
        );
        assert!(
            err.contains("Summary: cgroup=(none; rlimits in effect)"),
            "{err}"
        );
        // min(caller's 50, configured 64): never raised.
        assert_eq!(limit(&s, "Max processes"), ("50".into(), "50".into()));
        assert_eq!(
            limit(&s, "Max address space"),
            ("536870912".into(), "536870912".into())
        );
        assert_eq!(limit(&s, "Max core file size"), ("0".into(), "0".into()));
        // cpu weight 50 without a cgroup: nice 3.
        assert_eq!(value(&s, "nice"), Some("3"), "{s}");
        assert!(!s.contains("nppp."), "joined a cgroup anyway:\n{s}");
    });
}

#[test]
fn cgv2_without_cgroups_is_an_error() {
    without_config(|| {
        let out = Invocation::new(setuid_safexec())
            .args(["sha256sum", "/dev/null"])
            .env("SAFEXEC_DETACH", "cgv2")
            .as_user(test_user())
            .in_namespace("umount -R /sys/fs/cgroup")
            .run();
        assert_eq!(out.status, 1, "{out}");
        assert!(
            out.stderr_str()
                .contains("cgroup v2 requested but not available"),
            "{out}"
        );
        assert!(out.stdout.is_empty(), "the tool must not have run: {out}");
    });
}

#[test]
fn stale_empty_job_groups_are_swept_live_ones_kept() {
    without_config(|| {
        // A pid above pid_max can never be alive; our own pid is alive.
        let dead = 4_000_000 + std::process::id() % 100_000;
        let alive = std::process::id();
        let hierarchies = ["memory", "pids", "cpu"];
        let caller = format!("nppp/caller.{}", test_user().uid);
        for h in hierarchies {
            fs::create_dir_all(format!("/sys/fs/cgroup/{h}/{caller}")).unwrap();
            for pid in [dead, alive] {
                let _ = fs::create_dir(format!("/sys/fs/cgroup/{h}/{caller}/nppp.{pid}"));
            }
        }
        let out = Invocation::new(setuid_safexec())
            .args(["sha256sum", "/dev/null"])
            .as_user(test_user())
            .run();
        assert_eq!(out.status, 0, "{out}");
        for h in hierarchies {
            let base = format!("/sys/fs/cgroup/{h}/{caller}");
            assert!(
                !Path::new(&format!("{base}/nppp.{dead}")).exists(),
                "{h}: stale kept"
            );
            assert!(
                Path::new(&format!("{base}/nppp.{alive}")).exists(),
                "{h}: live removed"
            );
            fs::remove_dir(format!("{base}/nppp.{alive}")).unwrap();
            assert!(
                out.stderr_str().contains(&format!(
                    "Info: removed empty stale cgroup {base}/nppp.{dead}"
                )),
                "{out}"
            );
        }
    });
}

/// A loopback HTTP server: `/` links to `/b.html`; `/slow` answers after 2 s. Records paths.
fn http_server() -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                let mut first = String::new();
                let _ = reader.read_line(&mut first);
                let mut line = String::new();
                while reader.read_line(&mut line).map(|n| n > 2).unwrap_or(false) {
                    line.clear();
                }
                let path = first.split_whitespace().nth(1).unwrap_or("/").to_string();
                log.lock().unwrap().push(path.clone());
                let body = match path.as_str() {
                    "/" => "<html><body><a href=\"/b.html\">b</a></body></html>",
                    "/slow" => {
                        std::thread::sleep(Duration::from_secs(2));
                        "slow"
                    }
                    _ => "<html><body>b</body></html>",
                };
                let mut conn = conn;
                let _ = write!(
                    conn,
                    "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = reader.read_to_end(&mut Vec::new());
            });
        }
    });
    (port, seen)
}

fn cache_preload_binary() -> PathBuf {
    cargo_build("cache-preload", "cache-preload")
}

#[test]
fn fetch_tools_complete_real_fetches_under_the_filter() {
    // Built before taking the config lock: a cold build takes minutes, and every other test
    // process that touches /etc/safexec.conf waits on that lock.
    let bin = cache_preload_binary();
    without_config(|| {
        let (port, seen) = http_server();
        let base = format!("http://127.0.0.1:{port}");

        let wget = Invocation::new(setuid_safexec())
            .args(["wget", "-q", "-O", "/dev/null", &format!("{base}/wget")])
            .as_user(test_user())
            .run();
        assert_eq!(wget.status, 0, "{wget}");

        let curl = Invocation::new(setuid_safexec())
            .args(["curl", "-sSf", "-o", "/dev/null", &format!("{base}/curl")])
            .as_user(test_user())
            .run();
        assert_eq!(curl.status, 0, "{curl}");

        // cache-preload is not installed on the host: a root-owned tmpfs on /usr/local/bin in a
        // private namespace holds it, so the trusted-path rules still apply.
        let setup = format!(
            "mount -t tmpfs -o mode=0755,uid=0,gid=0 none /usr/local/bin\n\
             touch /usr/local/bin/cache-preload\n\
             mount --bind {} /usr/local/bin/cache-preload",
            bin.display()
        );
        let preload = Invocation::new(setuid_safexec())
            .args([
                "cache-preload",
                "--no-verbose",
                "--recursive",
                "-l",
                "inf",
                "--no-config",
                "--tries=1",
                "--wait=0",
                "--",
                &format!("{base}/"),
            ])
            .as_user(test_user())
            .in_namespace(&setup)
            .run();
        assert_eq!(preload.status, 0, "{preload}");
        let err = preload.stderr_str();
        assert!(err.contains(&format!("URL:{base}/b.html")), "{err}");

        let seen = seen.lock().unwrap().clone();
        for path in ["/wget", "/curl", "/", "/b.html"] {
            assert!(
                seen.iter().any(|p| p == path),
                "{path} never requested: {seen:?}"
            );
        }
    });
}

#[test]
fn kill_stops_the_whole_job_through_its_cgroup() {
    without_config(|| {
        let url = "http://127.0.0.1/fork/sleep/30/pid-to/-";
        let mut cmd = Invocation::new(setuid_safexec())
            .args(["wget", url])
            .as_user(test_user())
            .in_namespace(&probe_over_wget())
            .command();
        cmd.stdout(Stdio::piped())
            .stderr(Stdio::null())
            .stdin(Stdio::null());
        let mut job = cmd.spawn().unwrap();
        let stdout = job.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("probe never wrote its pids");
        let v: Vec<u32> = line
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        assert!(v.len() == 2 && v[1] != 0, "{line:?}");
        let (leader, child) = (v[0], v[1]);
        let procs = cg(&format!("pids{}/cgroup.procs", job_group(leader)));
        assert!(
            procs.split_whitespace().any(|p| p == child.to_string()),
            "{procs}"
        );

        let out = Invocation::new(setuid_safexec())
            .arg(format!("--kill={leader}"))
            .as_user(test_user())
            .run();
        assert_eq!(out.status, 0, "{out}");
        assert!(
            out.stdout_str()
                .contains(&format!("Success: Killed PID {leader}")),
            "{out}"
        );
        let _ = job.wait();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let state = fs::read_to_string(format!("/proc/{child}/stat")).unwrap_or_default();
            let gone = state.is_empty()
                || state
                    .rsplit_once(')')
                    .is_some_and(|x| x.1.trim_start().starts_with('Z'));
            if gone {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the job's child {child} survived --kill: {state}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    });
}

#[test]
fn concurrent_launches_all_get_their_own_groups() {
    // Spec ISO-10: one run's sweep must never remove another run's fresh, not yet joined
    // group (the C version races here and falls back to rlimits). The per-caller cap is
    // raised so that all 16 may run at once.
    with_config("caller_jobs_max = 64\n", || {
        let runs: Vec<_> = (0..16)
            .map(|_| {
                std::thread::spawn(|| {
                    Invocation::new(setuid_safexec())
                        .args(["sha256sum", "/dev/null"])
                        .as_user(test_user())
                        .run()
                })
            })
            .collect();
        for run in runs {
            let out = run.join().unwrap();
            assert_eq!(out.status, 0, "{out}");
            let err = out.stderr_str();
            assert!(!err.contains("not used"), "{err}");
            assert!(!err.contains("falling back"), "{err}");
            assert!(
                err.contains(&format!(
                    "Summary: cgroup=/sys/fs/cgroup/memory/nppp/caller.{}/nppp.",
                    test_user().uid
                )),
                "{err}"
            );
        }
    });
}

#[test]
fn read_only_hierarchy_falls_back_to_an_rlimit_for_its_limit_only() {
    // Spec ISO-12, per controller: the pids hierarchy is read-only in this namespace, so the
    // pids limit becomes RLIMIT_NPROC while memory stays with the cgroup (no RLIMIT_AS).
    without_config(|| {
        let setup = format!(
            "mount -o remount,bind,ro /sys/fs/cgroup/pids\n{}",
            probe_over_wget()
        );
        let out = Invocation::new(setuid_safexec())
            .args(["wget", "http://127.0.0.1/"])
            .as_user(test_user())
            .in_namespace(&setup)
            .run();
        assert_eq!(out.status, 0, "{out}");
        let err = out.stderr_str();
        assert!(
            err.contains("Info: cgroup hierarchy /sys/fs/cgroup/pids not used: cannot create"),
            "{err}"
        );
        assert!(!err.contains("falling back"), "{err}");
        let s = out.stdout_str();
        assert_eq!(limit(&s, "Max processes"), ("64".into(), "64".into()));
        assert_eq!(limit(&s, "Max address space").0, "unlimited");
        assert!(
            s.contains(&format!(":memory:/nppp/caller.{}/nppp.", test_user().uid)),
            "{s}"
        );
        assert!(s.contains(":pids:/\n"), "{s}");

        // The same with SAFEXEC_DETACH=cgv2 is refused before the tool runs.
        let strict = Invocation::new(setuid_safexec())
            .args(["wget", "http://127.0.0.1/"])
            .env("SAFEXEC_DETACH", "cgv2")
            .as_user(test_user())
            .in_namespace(&setup)
            .run();
        assert_eq!(strict.status, 1, "{strict}");
        assert!(strict.stdout.is_empty(), "{strict}");
        assert!(
            strict
                .stderr_str()
                .contains("cgroup v2 requested but join failed"),
            "{strict}"
        );
    });
}

/// Runs `inv` and fails the test if it has not finished within `limit` (a stalled job must
/// fail the test, not hang it).
fn run_within(inv: &Invocation, limit: Duration) -> Output {
    let mut cmd = inv.command();
    cmd.stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .stdin(Stdio::null());
    let mut child = cmd.spawn().expect("spawn safexec");
    let deadline = Instant::now() + limit;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "still running after {limit:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    Output {
        status: out.status.code().unwrap_or(-1),
        stdout: out.stdout,
        stderr: out.stderr,
    }
}

/// Ends a holder started by [`hold_locks`] and everything it started.
fn release(mut holder: Child) {
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{}", holder.id())])
        .status();
    let _ = holder.wait();
}

/// `flock(1)` on each path, held by `who` (or root) until [`release`]d.
fn hold_locks(who: Option<&User>, paths: &[&Path]) -> Child {
    let mut cmd = match who {
        Some(u) => {
            let mut c = Command::new("setpriv");
            c.args(["--reuid", &u.uid.to_string(), "--regid", &u.gid.to_string()])
                .arg("--clear-groups");
            c.arg("flock");
            c
        }
        None => Command::new("flock"),
    };
    cmd.arg(paths[0]);
    for p in &paths[1..] {
        cmd.arg("flock").arg(p);
    }
    // Its own process group, so `release` ends the sleep too, which inherits the locks.
    cmd.args(["sleep", "60"])
        .stdin(Stdio::null())
        .process_group(0);
    let child = cmd.spawn().expect("spawn flock");
    // Held once a non-blocking attempt by root fails.
    let deadline = Instant::now() + Duration::from_secs(10);
    for p in paths {
        loop {
            let free = Command::new("flock")
                .args(["-n", "-E", "99"])
                .arg(p)
                .arg("true")
                .status()
                .unwrap();
            if free.code() == Some(99) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "lock on {} never held",
                p.display()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    child
}

#[test]
fn a_user_holding_the_old_lock_target_stalls_no_job() {
    // Issue 15 class 2: the placement used to flock the cgroup parent, a 0755 directory any
    // user can open; holding it stalled every job on the host. Now the lock is a root-only
    // file per caller, and other users' locks on the cgroup directories mean nothing.
    without_config(|| {
        let holder = second_user();
        let dirs: Vec<PathBuf> = ["memory", "pids", "cpu"]
            .iter()
            .map(|h| PathBuf::from(format!("/sys/fs/cgroup/{h}/nppp")))
            .collect();
        for d in &dirs {
            fs::create_dir_all(d).unwrap();
        }
        let refs: Vec<&Path> = dirs.iter().map(PathBuf::as_path).collect();
        let hold = hold_locks(Some(holder), &refs);
        let out = run_within(
            &Invocation::new(setuid_safexec())
                .args(["sha256sum", "/dev/null"])
                .as_user(test_user()),
            Duration::from_secs(20),
        );
        // The holder cannot even open the new lock files (the directory is root's 0700).
        let probe = Command::new("setpriv")
            .args([
                "--reuid",
                &holder.uid.to_string(),
                "--regid",
                &holder.gid.to_string(),
            ])
            .arg("--clear-groups")
            .args(["flock", "-n"])
            .arg(format!("/run/safexec/cgroup.{}.lock", test_user().uid))
            .arg("true")
            .output()
            .unwrap();
        release(hold);
        assert_eq!(out.status, 0, "{out}");
        assert!(
            out.stderr_str()
                .contains("Summary: cgroup=/sys/fs/cgroup/memory/nppp/caller."),
            "{out}"
        );
        assert!(!probe.status.success(), "{probe:?}");
        assert!(
            String::from_utf8_lossy(&probe.stderr).contains("Permission denied"),
            "{probe:?}"
        );
    });
}

#[test]
fn a_held_caller_lock_is_waited_for_boundedly_and_only_that_caller_waits() {
    without_config(|| {
        // Root holds the test user's placement lock (as a stopped run of that user would).
        let lock = PathBuf::from(format!("/run/safexec/cgroup.{}.lock", test_user().uid));
        fs::create_dir_all("/run/safexec").unwrap();
        fs::set_permissions("/run/safexec", fs::Permissions::from_mode(0o700)).unwrap();
        let f = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&lock)
            .unwrap();
        f.set_permissions(fs::Permissions::from_mode(0o600))
            .unwrap();
        drop(f);
        let hold = hold_locks(None, &[&lock]);
        // Another caller's job starts as usual meanwhile.
        let other = run_within(
            &Invocation::new(setuid_safexec())
                .args(["sha256sum", "/dev/null"])
                .as_user(second_user()),
            Duration::from_secs(20),
        );
        let started = Instant::now();
        let out = run_within(
            &Invocation::new(setuid_safexec())
                .args(["sha256sum", "/dev/null"])
                .as_user(test_user()),
            Duration::from_secs(30),
        );
        let waited = started.elapsed();
        release(hold);
        assert_eq!(other.status, 0, "{other}");
        assert_eq!(out.status, 1, "{out}");
        assert!(out.stdout.is_empty(), "the tool must not have run: {out}");
        assert!(waited >= Duration::from_secs(5), "{waited:?}");
        assert!(
            out.stderr_str().contains(&format!(
                "Fatal: cgroup placement failed: cannot lock {}: another run of this caller \
                 has held it for 5 s; refusing to exec",
                lock.display()
            )),
            "{out}"
        );
        // Released: the caller's next job runs.
        let again = Invocation::new(setuid_safexec())
            .args(["sha256sum", "/dev/null"])
            .as_user(test_user())
            .run();
        assert_eq!(again.status, 0, "{again}");
    });
}

#[test]
fn each_caller_has_its_own_parent_with_limits_and_a_job_cap() {
    // Issue 15 class 7: a caller's jobs share a per-caller parent group that carries the
    // caller's aggregate limits, and a caller cannot run more than caller_jobs_max jobs.
    let conf = "caller_jobs_max = 2\ncaller_memory_max = 300M\ncaller_pids_max = 40\n";
    with_config(conf, || {
        let a = LiveJob::start("cap-a", &[]);
        let b = LiveJob::start("cap-b", &[]);
        let parent = format!("nppp/caller.{}", test_user().uid);
        assert_eq!(
            cg(&format!("memory/{parent}/memory.limit_in_bytes")),
            "314572800"
        );
        assert_eq!(cg(&format!("pids/{parent}/pids.max")), "40");
        for job in [&a, &b] {
            let cgroup = job.proc("cgroup");
            assert!(
                cgroup.contains(&format!(":pids:/{parent}/nppp.{}", job.pid)),
                "{cgroup}"
            );
        }
        let refused = Invocation::new(setuid_safexec())
            .args(["sha256sum", "/dev/null"])
            .as_user(test_user())
            .run();
        let other = Invocation::new(setuid_safexec())
            .args(["sha256sum", "/dev/null"])
            .as_user(second_user())
            .run();
        let (a, b) = (a.finish(), b.finish());
        assert_eq!((a.status, b.status), (0, 0), "{a}\n{b}");
        assert_eq!(refused.status, 1, "{refused}");
        assert!(
            refused.stdout.is_empty(),
            "the tool must not have run: {refused}"
        );
        assert!(
            refused.stderr_str().contains(
                "Fatal: cgroup placement failed: too many jobs: this caller already has 2 \
                 running (caller_jobs_max = 2); try again when one has finished; refusing to exec"
            ),
            "{refused}"
        );
        assert_eq!(other.status, 0, "another caller is not affected: {other}");
        assert!(
            other.stderr_str().contains(&format!(
                "Summary: cgroup=/sys/fs/cgroup/memory/nppp/caller.{}/nppp.",
                second_user().uid
            )),
            "{other}"
        );
        // Both jobs finished: the caller may start again.
        let again = Invocation::new(setuid_safexec())
            .args(["sha256sum", "/dev/null"])
            .as_user(test_user())
            .run();
        assert_eq!(again.status, 0, "{again}");
    });
}

/// Runs `argv` as `nobody` under the Landlock ruleset safexec builds for `access` (applied
/// between fork and exec, as the drop pipeline applies it before the tool's exec).
fn under_landlock(access: &safexec::confine::JobAccess<'_>, argv: &[&str]) -> Output {
    let ruleset = safexec::confine::prepare_landlock(access).expect("ruleset");
    let mut slot = Some(ruleset);
    let nobody = nobody();
    let mut cmd = Command::new("setpriv");
    cmd.args([
        "--reuid",
        &nobody.uid.to_string(),
        "--regid",
        &nobody.gid.to_string(),
    ])
    .arg("--clear-groups")
    .args(argv)
    .stdin(Stdio::null());
    // SAFETY: the closure runs in the forked child before exec; it only enforces the
    // prepared ruleset and writes its report line to stderr.
    unsafe {
        cmd.pre_exec(move || {
            let ruleset = slot
                .take()
                .ok_or_else(|| std::io::Error::other("used twice"))?;
            let report =
                safexec::confine::apply_landlock(ruleset).map_err(std::io::Error::other)?;
            let _ =
                std::io::stderr().write_all(format!("{}\n", report.lines.join("\n")).as_bytes());
            Ok(())
        });
    }
    let out = cmd.output().expect("run under landlock");
    Output {
        status: out.status.code().unwrap_or(-1),
        stdout: out.stdout,
        stderr: out.stderr,
    }
}

#[test]
fn landlock_keeps_a_job_from_what_its_tool_does_not_need() {
    // Readable by nobody through the permissions, but outside the job's allowance.
    let dir = scratch("landlock");
    let secret = dir.join("secret");
    fs::write(&secret, "top secret\n").unwrap();
    fs::set_permissions(&secret, fs::Permissions::from_mode(0o644)).unwrap();
    let job = dir.join("job");
    fs::create_dir(&job).unwrap();
    fs::set_permissions(&job, fs::Permissions::from_mode(0o777)).unwrap();
    fs::write(job.join("mine"), "mine\n").unwrap();
    let cache = dir.join("cache");
    fs::create_dir(&cache).unwrap();
    fs::write(cache.join("entry"), "cached\n").unwrap();
    fs::set_permissions(cache.join("entry"), fs::Permissions::from_mode(0o644)).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || for _ in listener.incoming() {});

    let s = |p: &Path| p.to_str().unwrap().to_string();
    let plain = Command::new("setpriv")
        .args([
            "--reuid",
            &nobody().uid.to_string(),
            "--regid",
            &nobody().gid.to_string(),
        ])
        .args(["--clear-groups", "cat"])
        .arg(&secret)
        .output()
        .unwrap();
    assert!(
        plain.status.success(),
        "nobody can read it without landlock"
    );

    use safexec::policy::Tool;
    let access = |tool| safexec::confine::JobAccess {
        tool,
        job_dir: Some(&job),
        cache_root: Some(&cache),
        index_dir: None,
        tool_path: Path::new("/usr/bin/sha256sum"),
        extra_read: vec![],
        tcp_ports: if tool == Tool::Wget {
            vec![port]
        } else {
            vec![]
        },
    };
    let hash = access(Tool::Sha256sum);
    let out = under_landlock(&hash, &["cat", &s(&secret)]);
    assert_ne!(out.status, 0, "{out}");
    assert!(out.stderr_str().contains("Permission denied"), "{out}");
    let err = out.stderr_str();
    let abi: u32 = err
        .split("landlock enforced (ABI ")
        .nth(1)
        .and_then(|r| r.split(')').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no report line: {err}"));
    assert!(abi >= 4, "{err}");
    assert!(
        err.contains(&format!("write /dev/null,{}", job.display())),
        "{err}"
    );
    assert!(err.contains("tcp connect none; tcp bind none"), "{err}");
    // Its own job directory: read and write.
    let out = under_landlock(&hash, &["cat", &s(&job.join("mine"))]);
    assert_eq!(out.stdout_str(), "mine\n", "{out}");
    let out = under_landlock(
        &hash,
        &["sh", "-c", &format!("echo x > {}/new", job.display())],
    );
    assert_eq!(out.status, 0, "{out}");
    // Nowhere else, not even where the permissions allow (the scratch dir is 1777).
    let out = under_landlock(
        &hash,
        &["sh", "-c", &format!("echo x > {}/new", dir.display())],
    );
    assert_ne!(out.status, 0, "{out}");
    assert!(!dir.join("new").exists());
    // The cache root is rg's to read, and nobody else's.
    assert_ne!(
        under_landlock(&hash, &["cat", &s(&cache.join("entry"))]).status,
        0
    );
    let out = under_landlock(&access(Tool::Rg), &["cat", &s(&cache.join("entry"))]);
    assert_eq!(out.stdout_str(), "cached\n", "{out}");
    let out = under_landlock(&access(Tool::Rg), &["rm", "-f", &s(&cache.join("entry"))]);
    assert_ne!(out.status, 0, "rg may not delete: {out}");
    // TCP: a fetch tool reaches the ports its arguments name; other tools reach none.
    let connect = format!("exec 3<>/dev/tcp/127.0.0.1/{port}");
    let out = under_landlock(&access(Tool::Wget), &["bash", "-c", &connect]);
    assert_eq!(out.status, 0, "{out}");
    let out = under_landlock(&hash, &["bash", "-c", &connect]);
    assert_ne!(out.status, 0, "{out}");
    assert!(out.stderr_str().contains("Permission denied"), "{out}");
}

#[test]
fn a_setuid_job_cannot_read_what_its_tool_does_not_need() {
    // Issue 15, Landlock: the file is readable by nobody through its permissions, but it is
    // outside what wget needs, so the job (nobody) cannot read it; its own job directory (the
    // cwd) stays writable, and verbose output says what the ruleset allows.
    without_config(|| {
        let dir = scratch("ll-setuid");
        let secret = dir.join("secret");
        fs::write(&secret, "top secret\n").unwrap();
        fs::set_permissions(&secret, fs::Permissions::from_mode(0o644)).unwrap();
        let url = format!("http://127.0.0.1/write-cwd/read{}", secret.display());
        let out = Invocation::new(setuid_safexec())
            .args(["wget", &url])
            .as_user(test_user())
            .in_namespace(&probe_over_wget())
            .run();
        assert_eq!(out.status, 0, "{out}");
        let s = out.stdout_str();
        assert_eq!(value(&s, "read"), Some("errno13"), "{s}");
        assert_eq!(value(&s, "write_cwd"), Some("ok"), "{s}");
        let err = out.stderr_str();
        let line = err
            .lines()
            .find(|l| l.starts_with("Info: landlock enforced (ABI "))
            .unwrap_or_else(|| panic!("no landlock line: {err}"));
        assert!(
            line.contains("write /dev/null,/run/safexec-jobs/"),
            "{line}"
        );
        assert!(line.contains("tcp connect 53,80,443;"), "{line}");
        assert!(!line.contains(dir.to_str().unwrap()), "{line}");
    });
}

#[test]
fn without_landlock_in_the_kernel_the_job_runs_and_says_so_once() {
    // A kernel without Landlock answers landlock_create_ruleset with ENOSYS; a seccomp filter
    // in the child gives exactly that answer, then the job's ruleset is built and applied.
    use seccompiler::{BpfProgram, SeccompAction, SeccompFilter};
    let rules = [(libc::SYS_landlock_create_ruleset, vec![])]
        .into_iter()
        .collect();
    let arch = if cfg!(target_arch = "aarch64") {
        seccompiler::TargetArch::aarch64
    } else {
        seccompiler::TargetArch::x86_64
    };
    let filter: BpfProgram = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::ENOSYS as u32),
        arch,
    )
    .unwrap()
    .try_into()
    .unwrap();
    let dir = scratch("no-landlock");
    let secret = dir.join("secret");
    fs::write(&secret, "readable\n").unwrap();
    let job = dir.join("job");
    fs::create_dir(&job).unwrap();
    let mut cmd = Command::new("cat");
    cmd.arg(&secret).stdin(Stdio::null());
    // SAFETY: runs in the forked child before exec; it only sets no_new_privs, installs the
    // prepared filter and builds and applies the ruleset.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            seccompiler::apply_filter(&filter).map_err(std::io::Error::other)?;
            let access = safexec::confine::JobAccess {
                tool: safexec::policy::Tool::Sha256sum,
                job_dir: Some(&job),
                cache_root: None,
                index_dir: None,
                tool_path: Path::new("/usr/bin/cat"),
                extra_read: vec![],
                tcp_ports: vec![],
            };
            let ruleset =
                safexec::confine::prepare_landlock(&access).map_err(std::io::Error::other)?;
            let report =
                safexec::confine::apply_landlock(ruleset).map_err(std::io::Error::other)?;
            let _ = std::io::stderr().write_all(
                format!("{}\n{}\n", report.enforced, report.lines.join("\n")).as_bytes(),
            );
            Ok(())
        });
    }
    let out = cmd.output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "readable\n");
    assert_eq!(
        err,
        "false\nlandlock is not available on this kernel; the job runs without it\n"
    );
}
