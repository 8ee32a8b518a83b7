//! Shared harness for tests that run the real setuid `safexec` as an unprivileged user.
//!
//! Used by safexec's own integration tests (`safexec/tests/*.rs`, include it with `mod common;`)
//! and by other crates (`#[path = "../../safexec/tests/common/mod.rs"] mod common;`). It needs
//! nothing but `std` and the system tools `setpriv`, `unshare`, `useradd`, `mount` (util-linux,
//! passwd), all of which CI installs.
//!
//! # What it provides
//! - [`require_root`]: every helper that needs root calls it; a test run without root **fails**
//!   with a clear message, it never skips.
//! - [`safexec_binary`]: the freshly built binary (`CARGO_BIN_EXE_safexec` inside the safexec
//!   package, else `$SAFEXEC_BIN`, else `cargo build -p safexec`).
//! - [`setuid_safexec`]: that binary copied into a fresh directory under `/tmp/safexec-tests/`
//!   (ext4 here, no `nosuid`), `root:root` mode 4755; [`passthrough_safexec`]: a 0755 copy (the
//!   "not setuid" case). Both are made once per test process.
//! - [`test_user`] / [`second_user`]: the unprivileged accounts `sxtest` and `sxtest2`, created
//!   idempotently with `useradd --system`.
//! - [`Invocation`]: runs a program as a user with a clean, explicit environment
//!   (`setpriv --reuid --regid --clear-groups env -i K=V… prog args…`), optionally inside a private
//!   mount namespace (`unshare -m --propagation private`) after a root setup script, so tests can
//!   bind-mount probe tools over `/usr/bin/wget` without touching the host; captures stdout,
//!   stderr and the exit status.
//! - [`probe_binary`] / [`compile_helper`]: small Rust programs compiled with `rustc` at test time
//!   (a probe that dumps its credentials, environment, fds and signal state; any other helper).
//! - [`with_config`]: writes `/etc/safexec.conf` (root:root 0644) under a process-wide mutex and a
//!   cross-process lock directory, runs the closure, then restores or removes the file.
//!
//! # Example
//! ```ignore
//! mod common;
//! use common::*;
//! #[test]
//! fn version_as_user() {
//!     let out = Invocation::new(setuid_safexec()).arg("-v").as_user(test_user()).run();
//!     assert_eq!(out.status, 0);
//!     assert!(out.stdout_str().starts_with("safexec 1.9.6\n"));
//! }
//! ```
#![allow(dead_code)]

use std::ffi::{OsStr, OsString};
use std::fs;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, MutexGuard, OnceLock};

/// Panics (fails the test) unless the test process runs as root.
pub fn require_root() {
    let status = fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    let euid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|rest| rest.split_whitespace().nth(1))
        .expect("Uid line in /proc/self/status");
    assert_eq!(
        euid, "0",
        "this test needs root (setuid install, useradd, mount namespaces); run the suite as root"
    );
}

/// Runs a command that must succeed; panics with its output otherwise.
pub fn must(cmd: &mut Command) -> std::process::Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn workspace_root() -> PathBuf {
    // CARGO_MANIFEST_DIR is the including crate (safexec/ or tests/); both sit in the root.
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// Builds `package` of this workspace (a no-op when it is fresh) and returns the artifact whose
/// file name is `file` (an executable or a cdylib), as cargo reports it.
pub fn cargo_build(package: &str, file: &str) -> PathBuf {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = must(
        Command::new(cargo)
            .args(["build", "--quiet", "-p", package, "--message-format=json"])
            .arg("--manifest-path")
            .arg(workspace_root().join("Cargo.toml")),
    );
    // The artifact paths are JSON strings; find ours without a JSON dependency.
    let suffix = format!("/{file}");
    let text = String::from_utf8_lossy(&out.stdout);
    text.split('"')
        .filter(|s| s.ends_with(&suffix))
        .map(PathBuf::from)
        .next_back()
        .unwrap_or_else(|| panic!("cargo build -p {package} did not report {file}"))
}

/// The freshly built `safexec` binary (not yet setuid).
pub fn safexec_binary() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(p) = option_env!("CARGO_BIN_EXE_safexec") {
            return PathBuf::from(p);
        }
        if let Some(p) = std::env::var_os("SAFEXEC_BIN") {
            return PathBuf::from(p);
        }
        cargo_build("safexec", "safexec")
    })
    .clone()
}

fn install_copy(mode: u32, tag: &str) -> PathBuf {
    require_root();
    let base = Path::new("/tmp/safexec-tests");
    fs::create_dir_all(base).expect("create /tmp/safexec-tests");
    fs::set_permissions(base, fs::Permissions::from_mode(0o755)).expect("chmod base");
    remove_stale_installs(base);
    let dir = base.join(format!("{}-{tag}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir(&dir).expect("create install dir");
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).expect("chmod install dir");
    let bin = dir.join("safexec");
    fs::copy(safexec_binary(), &bin).expect("copy safexec");
    must(Command::new("chown").arg("root:root").arg(&bin));
    // chmod after chown: chown clears the setuid bit.
    fs::set_permissions(&bin, fs::Permissions::from_mode(mode)).expect("chmod safexec");
    let md = fs::metadata(&bin).unwrap();
    assert_eq!(
        (md.uid(), md.mode() & 0o7777),
        (0, mode),
        "install of {bin:?}"
    );
    bin
}

/// Removes install directories left by earlier test processes that are gone.
fn remove_stale_installs(base: &Path) {
    let Ok(entries) = fs::read_dir(base) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let pid = name
            .to_string_lossy()
            .split('-')
            .next()
            .unwrap_or("")
            .to_string();
        if !pid.is_empty() && !Path::new("/proc").join(&pid).exists() {
            let _ = fs::remove_dir_all(e.path());
        }
    }
}

/// `safexec` installed `root:root` 4755 in a fresh directory under `/tmp` (once per process).
pub fn setuid_safexec() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| install_copy(0o4755, "suid"))
}

/// `safexec` installed `root:root` 0755 (pass-through mode when run by a user).
pub fn passthrough_safexec() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| install_copy(0o755, "plain"))
}

/// An unprivileged account created for the tests.
#[derive(Debug, Clone)]
pub struct User {
    /// Login name.
    pub name: String,
    /// User id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
}

fn lookup(name: &str) -> Option<User> {
    let passwd = fs::read_to_string("/etc/passwd").ok()?;
    for l in passwd.lines() {
        let f: Vec<&str> = l.split(':').collect();
        if f.len() >= 4 && f[0] == name {
            return Some(User {
                name: name.to_string(),
                uid: f[2].parse().ok()?,
                gid: f[3].parse().ok()?,
            });
        }
    }
    None
}

/// Looks up a user in /etc/passwd.
pub fn find_user(name: &str) -> Option<User> {
    lookup(name)
}

/// Creates (idempotently) and returns a system user with its own group and no home.
pub fn ensure_user(name: &str) -> User {
    require_root();
    if let Some(u) = lookup(name) {
        return u;
    }
    let out = Command::new("useradd")
        .args(["--system", "--user-group", "--no-create-home"])
        .args(["--shell", "/usr/sbin/nologin", "--home-dir", "/nonexistent"])
        .arg(name)
        .output()
        .expect("run useradd");
    // Another test process may have created it at the same time.
    lookup(name).unwrap_or_else(|| {
        panic!(
            "useradd {name} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// The main unprivileged caller, `sxtest`.
pub fn test_user() -> &'static User {
    static U: OnceLock<User> = OnceLock::new();
    U.get_or_init(|| ensure_user("sxtest"))
}

/// A second unprivileged account, `sxtest2`, for cross-user cases.
pub fn second_user() -> &'static User {
    static U: OnceLock<User> = OnceLock::new();
    U.get_or_init(|| ensure_user("sxtest2"))
}

/// The `nobody` account (the default job user).
pub fn nobody() -> User {
    lookup("nobody").expect("nobody in /etc/passwd")
}

/// Result of one run.
#[derive(Debug, Clone)]
pub struct Output {
    /// Exit code, or 128 + signal number when killed by a signal.
    pub status: i32,
    /// Captured standard output.
    pub stdout: Vec<u8>,
    /// Captured standard error.
    pub stderr: Vec<u8>,
}

impl Output {
    /// stdout as (lossy) UTF-8.
    pub fn stdout_str(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
    /// stderr as (lossy) UTF-8.
    pub fn stderr_str(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
    /// Asserts safexec refused (exit 1) and the probe tool never ran (it prints `pid=`).
    #[track_caller]
    pub fn assert_refused_without_running(&self, case: &dyn std::fmt::Debug) {
        assert_eq!(self.status, 1, "{case:?}: {self}");
        assert!(!self.stdout_str().contains("pid="), "{case:?} ran: {self}");
    }
}

impl std::fmt::Display for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "status={}\n--- stdout\n{}\n--- stderr\n{}",
            self.status,
            self.stdout_str(),
            self.stderr_str()
        )
    }
}

/// Builder for one run of a program (normally safexec) as a given user with a clean environment.
#[derive(Debug, Clone)]
pub struct Invocation {
    program: OsString,
    args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    user: Option<User>,
    namespace_setup: Option<String>,
    shell: Option<String>,
    stdin: Option<Vec<u8>>,
    cwd: Option<PathBuf>,
}

impl Invocation {
    /// Runs `program` (an absolute path).
    pub fn new(program: impl AsRef<OsStr>) -> Self {
        Invocation {
            program: program.as_ref().to_os_string(),
            args: Vec::new(),
            env: Vec::new(),
            user: None,
            namespace_setup: None,
            shell: None,
            stdin: None,
            cwd: None,
        }
    }

    /// Runs `sh -c <script>` instead of a program: `$SAFEXEC` in the script names `program`.
    pub fn shell(program: impl AsRef<OsStr>, script: &str) -> Self {
        let mut inv = Invocation::new(program);
        inv.shell = Some(script.to_string());
        inv
    }

    /// Appends one argument (any bytes).
    pub fn arg(mut self, a: impl AsRef<OsStr>) -> Self {
        self.args.push(a.as_ref().to_os_string());
        self
    }

    /// Appends arguments.
    pub fn args<I, S>(mut self, it: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(it.into_iter().map(|s| s.as_ref().to_os_string()));
        self
    }

    /// Adds one environment variable; nothing else reaches the program (`env -i`).
    pub fn env(mut self, k: impl AsRef<OsStr>, v: impl AsRef<OsStr>) -> Self {
        self.env
            .push((k.as_ref().to_os_string(), v.as_ref().to_os_string()));
        self
    }

    /// Runs as this user (real and effective ids, its primary group, no supplementary groups).
    #[allow(clippy::wrong_self_convention)] // builder method; the name reads as "run as user"
    pub fn as_user(mut self, u: &User) -> Self {
        self.user = Some(u.clone());
        self
    }

    /// Runs inside a private mount namespace after `setup` (a `sh` script run as root there).
    pub fn in_namespace(mut self, setup: &str) -> Self {
        self.namespace_setup = Some(setup.to_string());
        self
    }

    /// Feeds these bytes on stdin (default: /dev/null).
    pub fn stdin(mut self, data: &[u8]) -> Self {
        self.stdin = Some(data.to_vec());
        self
    }

    /// Starts in this directory (default: `/`).
    pub fn cwd(mut self, dir: impl AsRef<Path>) -> Self {
        self.cwd = Some(dir.as_ref().to_path_buf());
        self
    }

    /// The full command line that [`Invocation::run`] executes.
    pub fn command(&self) -> Command {
        // Innermost: `env -i K=V… program args…` or `env -i K=V… SAFEXEC=program sh -c script`.
        let mut inner: Vec<OsString> = vec!["/usr/bin/env".into(), "-i".into()];
        for (k, v) in &self.env {
            let mut kv = k.clone();
            kv.push("=");
            kv.push(v);
            inner.push(kv);
        }
        match &self.shell {
            Some(script) => {
                let mut kv = OsString::from("SAFEXEC=");
                kv.push(&self.program);
                inner.push(kv);
                inner.push("PATH=/usr/sbin:/usr/bin:/sbin:/bin".into());
                inner.extend(["/bin/sh".into(), "-c".into(), script.into(), "sh".into()]);
                inner.extend(self.args.iter().cloned());
            }
            None => {
                inner.push(self.program.clone());
                inner.extend(self.args.iter().cloned());
            }
        }
        if let Some(u) = &self.user {
            let mut p: Vec<OsString> = vec![
                "/usr/bin/setpriv".into(),
                format!("--reuid={}", u.uid).into(),
                format!("--regid={}", u.gid).into(),
                "--clear-groups".into(),
                "--".into(),
            ];
            p.extend(inner);
            inner = p;
        }
        if let Some(setup) = &self.namespace_setup {
            require_root();
            let mut p: Vec<OsString> = vec![
                "/usr/bin/unshare".into(),
                "-m".into(),
                "--propagation".into(),
                "private".into(),
                "--".into(),
                "/bin/sh".into(),
                "-c".into(),
                format!("set -e\n{setup}\nexec \"$@\"").into(),
                "sh".into(),
            ];
            p.extend(inner);
            inner = p;
        }
        let mut cmd = Command::new(&inner[0]);
        cmd.args(&inner[1..]);
        cmd.current_dir(self.cwd.as_deref().unwrap_or(Path::new("/")));
        cmd
    }

    /// Runs to completion and captures the result.
    pub fn run(&self) -> Output {
        if self.user.is_some() {
            require_root();
        }
        let mut cmd = self.command();
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        cmd.stdin(if self.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
        if let Some(data) = &self.stdin {
            let mut si = child.stdin.take().unwrap();
            let _ = si.write_all(data);
        }
        let out = child.wait_with_output().expect("wait");
        use std::os::unix::process::ExitStatusExt;
        let status = out
            .status
            .code()
            .unwrap_or_else(|| 128 + out.status.signal().unwrap_or(0));
        Output {
            status,
            stdout: out.stdout,
            stderr: out.stderr,
        }
    }
}

/// Compiles a single-file Rust program (no dependencies) with `rustc -O` once per process and
/// returns the binary path (root-owned, mode 0755, in a root-owned 0755 directory).
pub fn compile_helper(name: &str, source: &str) -> PathBuf {
    static CACHE: Mutex<Vec<(String, PathBuf)>> = Mutex::new(Vec::new());
    let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, p)) = cache.iter().find(|(n, _)| n == name) {
        return p.clone();
    }
    require_root();
    let dir = Path::new("/tmp/safexec-tests").join(format!("{}-helpers", std::process::id()));
    fs::create_dir_all(&dir).unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
    let src = dir.join(format!("{name}.rs"));
    fs::write(&src, source).unwrap();
    let bin = dir.join(name);
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    must(
        Command::new(rustc)
            .args(["--edition", "2021", "-O", "-o"])
            .arg(&bin)
            .arg(&src),
    );
    fs::set_permissions(&bin, fs::Permissions::from_mode(0o755)).unwrap();
    cache.push((name.to_string(), bin.clone()));
    bin
}

/// Source of the probe tool: prints its state as `key=value` lines on stdout and exits.
///
/// Arguments are scanned for `exit/<n>` (exit code), `sleep/<secs>` (sleep first) and
/// `pid-to/<path>` (write its pid to a file) so they fit inside a URL that tool policies accept,
/// e.g. `http://127.0.0.1/exit/42`.
pub const PROBE_SOURCE: &str = r#"
use std::io::Write;
fn main() {
    let args: Vec<String> = std::env::args_os().map(|a| a.to_string_lossy().into_owned()).collect();
    let mut code = 0;
    for a in &args {
        if let Some(i) = a.find("exit/") { code = a[i + 5..].split('/').next().unwrap_or("0").parse().unwrap_or(0); }
        if let Some(i) = a.find("pid-to/") { let _ = std::fs::write(&a[i + 6..], std::process::id().to_string()); }
        if let Some(i) = a.find("sleep/") {
            let s: u64 = a[i + 6..].split('/').next().unwrap_or("0").parse().unwrap_or(0);
            std::thread::sleep(std::time::Duration::from_secs(s));
        }
    }
    let mut o = String::new();
    o.push_str(&format!("pid={}\n", std::process::id()));
    for (i, a) in args.iter().enumerate() { o.push_str(&format!("argv{}={}\n", i, a.escape_debug())); }
    for (k, v) in std::env::vars_os() { o.push_str(&format!("env:{}={}\n", k.to_string_lossy(), v.to_string_lossy())); }
    o.push_str(&format!("cwd={}\n", std::env::current_dir().map(|p| p.display().to_string()).unwrap_or_else(|_| "(unavailable)".into())));
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    for l in status.lines() {
        for k in ["PPid", "Umask", "Uid", "Gid", "Groups", "CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb", "NoNewPrivs", "Seccomp", "SigBlk", "SigIgn"] {
            if let Some(v) = l.strip_prefix(&format!("{k}:")) { o.push_str(&format!("{k}={}\n", v.trim())); }
        }
    }
    let mut fds: Vec<String> = std::fs::read_dir("/proc/self/fd").map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect()).unwrap_or_default();
    fds.sort_by_key(|f| f.parse::<u32>().unwrap_or(0));
    o.push_str(&format!("fds={}\n", fds.join(",")));
    for fd in ["0", "1", "2"] {
        let t = std::fs::read_link(format!("/proc/self/fd/{fd}")).map(|p| p.display().to_string()).unwrap_or_else(|_| "closed".into());
        o.push_str(&format!("fd{fd}={t}\n"));
    }
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    for l in limits.lines() { if l.starts_with("Max core file size") { o.push_str(&format!("core={}\n", l.split_whitespace().nth(4).unwrap_or("?"))); } }
    let _ = std::io::stdout().write_all(o.as_bytes());
    std::process::exit(code);
}
"#;

/// The compiled probe tool (see [`PROBE_SOURCE`]).
pub fn probe_binary() -> PathBuf {
    compile_helper("probe", PROBE_SOURCE)
}

/// A namespace setup script that bind-mounts the probe over `/usr/bin/<tool>` (the tool must
/// exist there) — or, for tools not installed, puts it on a fresh root-owned tmpfs on
/// `/usr/local/bin`.
pub fn probe_as(tool: &str) -> String {
    let probe = probe_binary();
    let target = Path::new("/usr/bin").join(tool);
    if target.exists() {
        format!("mount --bind {} {}", probe.display(), target.display())
    } else {
        format!(
            "mount -t tmpfs -o mode=0755,uid=0,gid=0 none /usr/local/bin\ncp {} /usr/local/bin/{tool}\nchmod 0755 /usr/local/bin/{tool}",
            probe.display()
        )
    }
}

/// Parses the probe's `key=value` lines; returns the first value for `key`.
pub fn probe_value(out: &Output, key: &str) -> Option<String> {
    out.stdout_str().lines().find_map(|l| {
        l.strip_prefix(key)
            .and_then(|r| r.strip_prefix('='))
            .map(str::to_string)
    })
}

/// The environment the probe saw, as `NAME=value` strings.
pub fn probe_env(out: &Output) -> Vec<String> {
    out.stdout_str()
        .lines()
        .filter_map(|l| l.strip_prefix("env:").map(str::to_string))
        .collect()
}

static CONFIG_MUTEX: Mutex<()> = Mutex::new(());
const CONFIG_PATH: &str = "/etc/safexec.conf";
const CONFIG_LOCK_DIR: &str = "/run/lock/safexec-test-config.lock";

/// Holds the process-wide and cross-process locks on `/etc/safexec.conf`.
struct ConfigLock {
    _guard: MutexGuard<'static, ()>,
}

impl ConfigLock {
    fn acquire() -> Self {
        let guard = CONFIG_MUTEX.lock().unwrap_or_else(|e| e.into_inner());
        // Cross-process: mkdir is atomic; the owner's pid inside lets a later run break a lock
        // left by a killed test process.
        let _ = fs::create_dir_all("/run/lock");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        loop {
            match fs::create_dir(CONFIG_LOCK_DIR) {
                Ok(()) => {
                    let _ = fs::write(
                        Path::new(CONFIG_LOCK_DIR).join("pid"),
                        std::process::id().to_string(),
                    );
                    break;
                }
                Err(_) => {
                    let owner = fs::read_to_string(Path::new(CONFIG_LOCK_DIR).join("pid"))
                        .unwrap_or_default();
                    let owner = owner.trim();
                    if !owner.is_empty() && !Path::new("/proc").join(owner).exists() {
                        let _ = fs::remove_dir_all(CONFIG_LOCK_DIR);
                        continue;
                    }
                    assert!(
                        std::time::Instant::now() < deadline,
                        "timed out waiting for {CONFIG_LOCK_DIR}"
                    );
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
            }
        }
        ConfigLock { _guard: guard }
    }
}

impl Drop for ConfigLock {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(CONFIG_LOCK_DIR);
    }
}

/// Writes `/etc/safexec.conf` (root:root 0644) with `contents`, runs `f`, then restores the
/// previous file (or removes it), all under a lock that serialises every test that touches it.
pub fn with_config<R>(contents: &str, f: impl FnOnce() -> R) -> R {
    with_config_mode(contents, 0o644, f)
}

/// Like [`with_config`] with an explicit mode (e.g. 0o666 to test the "unsafe file" refusal).
pub fn with_config_mode<R>(contents: &str, mode: u32, f: impl FnOnce() -> R) -> R {
    require_root();
    let _lock = ConfigLock::acquire();
    let previous = fs::read(CONFIG_PATH).ok();
    let prev_mode = fs::metadata(CONFIG_PATH).ok().map(|m| m.mode() & 0o7777);
    let tmp = format!("{CONFIG_PATH}.test-{}", std::process::id());
    fs::write(&tmp, contents).expect("write test config");
    fs::set_permissions(&tmp, fs::Permissions::from_mode(mode)).unwrap();
    fs::rename(&tmp, CONFIG_PATH).expect("install test config");
    struct Restore(Option<Vec<u8>>, Option<u32>);
    impl Drop for Restore {
        fn drop(&mut self) {
            match &self.0 {
                Some(data) => {
                    let _ = fs::write(CONFIG_PATH, data);
                    if let Some(m) = self.1 {
                        let _ = fs::set_permissions(CONFIG_PATH, fs::Permissions::from_mode(m));
                    }
                }
                None => {
                    let _ = fs::remove_file(CONFIG_PATH);
                }
            }
        }
    }
    let _restore = Restore(previous, prev_mode);
    f()
}

/// Runs `f` while holding the config lock with no `/etc/safexec.conf` at all (defaults).
pub fn without_config<R>(f: impl FnOnce() -> R) -> R {
    require_root();
    let _lock = ConfigLock::acquire();
    let previous = fs::read(CONFIG_PATH).ok();
    let _ = fs::remove_file(CONFIG_PATH);
    let r = f();
    if let Some(data) = previous {
        let _ = fs::write(CONFIG_PATH, data);
    }
    r
}

/// Bytes helper for non-UTF-8 arguments.
pub fn os(bytes: &[u8]) -> OsString {
    OsStr::from_bytes(bytes).to_os_string()
}
