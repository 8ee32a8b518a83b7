//! End-to-end harness: a real nginx + PHP-FPM FastCGI-cache stack (`scripts/stack.sh`) in a
//! fresh temp dir, the real setuid `safexec` and the `cache-preload` crawler, driven the way the
//! NPP WordPress plugin drives them.
//!
//! Everything here needs root and fails (panics) without it: the tests never skip.
//! - [`Stack::start`] starts the stack; dropping the [`Stack`] stops it and removes its dir, also
//!   while a failing test unwinds. Stacks left by a killed test process are reaped on the next start.
//! - [`bins`] builds `safexec` and `cache-preload` once per process and installs copies:
//!   safexec `root:root 4755` in a temp dir, cache-preload `root:root 0755` for a private
//!   `/usr/local/bin` (safexec only runs tools from trusted root-owned dirs).
//! - [`SiteShell`] runs NPP's shell command lines as the PHP-FPM site user, inside a private mount
//!   namespace whose `/usr/local/bin` holds only `cache-preload` (the host is never changed).
//! - [`npp`] reimplements NPP's log parsers (npp-usage.md §3.2, §7.2) and its command lines.

pub mod npp;
pub mod purge;
pub mod service;
pub mod setup;
pub mod wordpress;

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Fails the test unless it runs as root (the stack and the setuid install need it).
pub fn require_root() {
    let status = fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    let euid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|r| r.split_whitespace().nth(1))
        .unwrap_or("");
    assert_eq!(
        euid, "0",
        "the e2e tests need root (nginx/PHP-FPM masters, useradd, setuid safexec); run them as root"
    );
}

/// The workspace root (the parent of this crate).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// Runs a command; panics with its output unless it exits 0.
pub fn must(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Quotes one argument for `/bin/sh` the way PHP's `escapeshellarg` does.
pub fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

fn stack_sh() -> PathBuf {
    workspace_root().join("scripts/stack.sh")
}

const STACK_PREFIX: &str = "e2e-stack.";
const BINS_PREFIX: &str = "e2e-bins.";

/// A current desktop Chrome User-Agent (the visitor).
pub const BROWSER_UA: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/142.0.0.0 Safari/537.36";
/// A current mobile Chrome User-Agent (the mobile visitor).
pub const BROWSER_UA_MOBILE: &str = "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/142.0.0.0 Mobile Safari/537.36";
/// Chrome's `Accept` for a navigation.
pub const BROWSER_ACCEPT: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7";

/// A running nginx + PHP-FPM stack under its own temp dir (see `scripts/stack.sh`).
#[derive(Debug)]
pub struct Stack {
    dir: PathBuf,
    env: HashMap<String, String>,
}

/// The result of one browser visit over every sitemap URL.
#[derive(Debug, Clone)]
pub struct Visits {
    /// URLs answered `200` with `X-FastCGI-Cache: HIT`.
    pub hits: usize,
    /// URLs requested.
    pub total: usize,
    /// `"<cache status> <http status> <url>"` of every other URL.
    pub misses: Vec<String>,
}

impl Visits {
    /// HIT ratio in percent.
    pub fn percent(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            100.0 * self.hits as f64 / self.total as f64
        }
    }
}

impl Stack {
    /// Starts a stack (20 ms render, 8 PHP-FPM workers) in a fresh temp dir; panics on failure.
    pub fn start() -> Stack {
        require_root();
        reap_stale_stacks();
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "{STACK_PREFIX}{}.{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir(&dir).expect("create stack dir");
        // From here on Drop cleans up, even if the start fails half-way.
        let mut stack = Stack {
            dir,
            env: HashMap::new(),
        };
        let out = Command::new(stack_sh())
            .arg("start")
            .arg(&stack.dir)
            .output()
            .expect("run scripts/stack.sh");
        assert!(
            out.status.success(),
            "scripts/stack.sh start failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        stack.reload_env();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            stack.base_url(),
            "start prints the base URL"
        );
        stack
    }

    fn reload_env(&mut self) {
        let text = fs::read_to_string(self.dir.join("stack.env")).expect("read stack.env");
        self.env = text
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.trim_matches('\'').to_owned()))
            .collect();
    }

    /// A fact from `stack.env` (BASE_URL, PORT, CACHE_DIR, NGINX_PID, …).
    pub fn var(&self, key: &str) -> &str {
        self.env
            .get(key)
            .unwrap_or_else(|| panic!("{key} missing from stack.env"))
    }

    /// The stack's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `http://127.0.0.1:<port>/`.
    pub fn base_url(&self) -> &str {
        self.var("BASE_URL")
    }

    /// The host part of the base URL (no port).
    pub fn host(&self) -> &str {
        self.var("HOST")
    }

    /// The nginx cache directory.
    pub fn cache_dir(&self) -> PathBuf {
        PathBuf::from(self.var("CACHE_DIR"))
    }

    /// The PHP-FPM pool's user (the "site user" NPP's PHP runs as).
    pub fn site_user(&self) -> User {
        User::lookup(self.var("SITE_USER")).expect("site user exists")
    }

    /// Runs `scripts/stack.sh <cmd> DIR <args>` and returns its stdout.
    pub fn ctl(&self, cmd: &str, args: &[&str]) -> String {
        let out = must(Command::new(stack_sh()).arg(cmd).arg(&self.dir).args(args));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Deletes every cache file (NPP's "Purge All").
    pub fn purge(&self) {
        self.ctl("purge", &[]);
        assert!(self.cache_files().is_empty(), "purge left files behind");
    }

    /// Turns a switch (`vary`, `mobile-key`) on or off.
    pub fn set(&mut self, switch: &str, on: bool) {
        self.ctl("set", &[switch, if on { "on" } else { "off" }]);
        self.reload_env();
    }

    /// Every sitemap URL, as written in the sitemap (lower-case `%xx`).
    pub fn urls(&self) -> Vec<String> {
        self.ctl("urls", &[]).lines().map(str::to_owned).collect()
    }

    /// Every regular file under the cache directory.
    pub fn cache_files(&self) -> Vec<PathBuf> {
        fn walk(d: &Path, out: &mut Vec<PathBuf>) {
            if let Ok(rd) = fs::read_dir(d) {
                for e in rd.flatten() {
                    let p = e.path();
                    match e.file_type() {
                        Ok(t) if t.is_dir() => walk(&p, out),
                        Ok(t) if t.is_file() => out.push(p),
                        _ => {}
                    }
                }
            }
        }
        let mut v = Vec::new();
        walk(&self.cache_dir(), &mut v);
        v
    }

    /// A browser (Chrome's desktop or mobile headers, `Accept-Encoding: gzip, deflate, br,
    /// zstd`) requests every sitemap URL once, with the URL bytes exactly as written.
    pub fn visit(&self, mobile: bool) -> Visits {
        self.visit_urls(&self.urls(), mobile)
    }

    /// A browser requests each of `urls` once (one curl, one keep-alive connection, the
    /// request-target bytes exactly as given). Note: a MISS stores the page for the next visit.
    pub fn visit_urls(&self, urls: &[String], mobile: bool) -> Visits {
        let cfg = self.dir.join("logs/visit.curl");
        let mut text = String::new();
        for u in urls {
            assert!(!u.contains(['"', '\\', '\n']), "odd URL {u:?}");
            text.push_str(&format!("url = \"{u}\"\noutput = \"/dev/null\"\n"));
        }
        fs::write(&cfg, text).expect("write curl config");
        let out = must(
            Command::new("curl")
                .args(["-sS", "--path-as-is", "-K"])
                .arg(&cfg)
                .arg("-A")
                .arg(if mobile {
                    BROWSER_UA_MOBILE
                } else {
                    BROWSER_UA
                })
                .args(["-H", &format!("Accept: {BROWSER_ACCEPT}")])
                .args(["-H", "Accept-Encoding: gzip, deflate, br, zstd"])
                .args(["-H", "Accept-Language: en-US,en;q=0.9"])
                .args([
                    "-w",
                    "%header{x-fastcgi-cache} %{http_code} %{url_effective}\\n",
                ]),
        );
        let lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_owned)
            .collect();
        assert_eq!(lines.len(), urls.len(), "one result line per URL");
        let hits = lines.iter().filter(|l| l.starts_with("HIT 200 ")).count();
        Visits {
            hits,
            total: lines.len(),
            misses: lines
                .into_iter()
                .filter(|l| !l.starts_with("HIT 200 "))
                .collect(),
        }
    }

    /// nginx's access log so far (raw request lines, cache status, Accept-Encoding, UA).
    pub fn access_log(&self) -> String {
        // The log is buffered (flush=200ms).
        std::thread::sleep(Duration::from_millis(400));
        fs::read_to_string(self.var("ACCESS_LOG")).unwrap_or_default()
    }

    /// A directory owned by the site user (where NPP keeps its runtime files and the log).
    pub fn runtime_dir(&self) -> PathBuf {
        let d = self.dir.join("npp-runtime");
        if !d.exists() {
            fs::create_dir(&d).expect("create runtime dir");
            let u = self.site_user();
            must(
                Command::new("chown")
                    .arg(format!("{}:{}", u.uid, u.gid))
                    .arg(&d),
            );
            fs::set_permissions(&d, fs::Permissions::from_mode(0o755)).expect("chmod runtime");
        }
        d
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        let _ = Command::new(stack_sh())
            .arg("stop")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .status();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Removes `<tmp>/<prefix><pid>…` entries whose test process is gone (a killed earlier run),
/// calling `before` on each first.
fn reap_stale(prefix: &str, before: impl Fn(&Path)) {
    let Ok(rd) = fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix(prefix) else {
            continue;
        };
        let pid = rest.split('.').next().unwrap_or("");
        if !pid.is_empty() && !Path::new("/proc").join(pid).exists() {
            before(&e.path());
            let _ = fs::remove_dir_all(e.path());
        }
    }
}

/// Stops and removes stacks whose test process no longer exists.
fn reap_stale_stacks() {
    reap_stale(STACK_PREFIX, |dir| {
        let _ = Command::new(stack_sh())
            .arg("stop")
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    });
}

/// A local account.
#[derive(Debug, Clone)]
pub struct User {
    /// Login name.
    pub name: String,
    /// User id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
}

impl User {
    /// Looks an account up in /etc/passwd.
    pub fn lookup(name: &str) -> Option<User> {
        let passwd = fs::read_to_string("/etc/passwd").ok()?;
        passwd.lines().find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() >= 4 && f[0] == name {
                Some(User {
                    name: name.to_owned(),
                    uid: f[2].parse().ok()?,
                    gid: f[3].parse().ok()?,
                })
            } else {
                None
            }
        })
    }

    /// `setpriv` prefix that runs a command as this user with no supplementary groups.
    pub fn setpriv(&self) -> Vec<String> {
        vec![
            "/usr/bin/setpriv".into(),
            format!("--reuid={}", self.uid),
            format!("--regid={}", self.gid),
            "--clear-groups".into(),
            "--".into(),
        ]
    }
}

/// The built binaries, installed for use by an unprivileged user.
#[derive(Debug)]
pub struct Bins {
    /// `safexec`, `root:root` mode 4755, in a root-owned 0755 temp dir.
    pub safexec: PathBuf,
    /// `cache-preload`, `root:root` 0755 (bind-mounted over `/usr/local/bin/cache-preload` in
    /// the namespaces of [`SiteShell`]).
    pub cache_preload: PathBuf,
    /// The freshly built `cache-preload` (for runs as root or www-data, outside safexec).
    pub cache_preload_built: PathBuf,
}

/// Builds one binary of the workspace (debug) and returns the path cargo reports for it.
pub fn cargo_bin(package: &str, bin: &str) -> PathBuf {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = must(
        Command::new(cargo)
            .args(["build", "--quiet", "-p", package, "--bin", bin])
            .arg("--manifest-path")
            .arg(workspace_root().join("Cargo.toml"))
            .arg("--message-format=json"),
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains(&format!("\"name\":\"{bin}\"")))
        .filter_map(|l| l.split("\"executable\":\"").nth(1))
        .filter_map(|r| r.split('"').next())
        .map(PathBuf::from)
        .next_back()
        .unwrap_or_else(|| panic!("cargo build did not report the {bin} executable"))
}

/// A fresh root-owned 0755 directory `<tmp>/<prefix><pid>` for installed binaries (every user
/// may run what is inside, and safexec trusts it as a tool directory); directories of earlier
/// test processes that are gone are removed first.
pub fn root_owned_bin_dir(prefix: &str) -> PathBuf {
    reap_stale(prefix, |_| {});
    let dir = std::env::temp_dir().join(format!("{prefix}{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir(&dir).expect("create bin dir");
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).expect("chmod bin dir");
    dir
}

/// Copies `src` to `dir/name` as `root:root` with `mode`, and checks the result.
pub fn install_root_owned(src: &Path, dir: &Path, name: &str, mode: u32) -> PathBuf {
    let dst = dir.join(name);
    fs::copy(src, &dst).unwrap_or_else(|e| panic!("copy {src:?}: {e}"));
    must(Command::new("chown").arg("root:root").arg(&dst));
    // chmod after chown: chown clears the setuid bit.
    fs::set_permissions(&dst, fs::Permissions::from_mode(mode)).expect("chmod");
    let md = fs::metadata(&dst).expect("stat installed binary");
    assert_eq!((md.uid(), md.mode() & 0o7777), (0, mode), "install {dst:?}");
    dst
}

/// Creates a system account with its own group unless it exists (never removed, like the site
/// user).
pub fn ensure_user(name: &str) -> User {
    if User::lookup(name).is_none() {
        let _ = Command::new("useradd")
            .args(["--system", "--user-group", "--no-create-home"])
            .args([
                "--home-dir",
                "/nonexistent",
                "--shell",
                "/usr/sbin/nologin",
                name,
            ])
            .status();
    }
    User::lookup(name).unwrap_or_else(|| panic!("cannot create user {name}"))
}

/// Builds `safexec` and `cache-preload` (debug) once per process and installs the copies.
pub fn bins() -> &'static Bins {
    static B: OnceLock<Bins> = OnceLock::new();
    B.get_or_init(|| {
        require_root();
        let (sx, cp) = (
            cargo_bin("safexec", "safexec"),
            cargo_bin("cache-preload", "cache-preload"),
        );
        let dir = root_owned_bin_dir(BINS_PREFIX);
        Bins {
            safexec: install_root_owned(&sx, &dir, "safexec", 0o4755),
            cache_preload: install_root_owned(&cp, &dir, "cache-preload", 0o755),
            cache_preload_built: cp,
        }
    })
}

/// `unshare -m --propagation private -- /bin/sh -c SCRIPT sh`: runs `script` (which sets up
/// private mounts, then `exec "$@"`) in a mount namespace of its own, so the host never sees the
/// mounts. The caller appends the script's arguments and the command to exec.
pub fn private_mount_sh(script: &str) -> Command {
    let mut cmd = Command::new("/usr/bin/unshare");
    cmd.args([
        "-m",
        "--propagation",
        "private",
        "--",
        "/bin/sh",
        "-c",
        script,
        "sh",
    ]);
    cmd
}

/// NPP's PHP environment (npp-usage.md §1.1) for commands run by [`SiteShell`].
pub const NPP_ENV: &[(&str, &str)] = &[
    (
        "PATH",
        "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    ),
    ("SAFEXEC_QUIET", "1"),
    ("SAFEXEC_SAFE_CWD", "1"),
    ("SAFEXEC_DETACH", "auto"),
    ("SAFEXEC_PCTNORM", "0"),
    ("LANG", "C.UTF-8"),
];

/// `/bin/sh -c` as the site user, like PHP's `shell_exec` in an FPM worker: NPP's environment,
/// inside a private mount namespace whose `/usr/local/bin` holds only `cache-preload`.
#[derive(Debug)]
pub struct SiteShell {
    user: User,
}

impl SiteShell {
    /// A shell for this user.
    pub fn new(user: User) -> SiteShell {
        SiteShell { user }
    }

    /// The command that runs `script` (stdout/stderr not yet redirected).
    pub fn command(&self, script: &str) -> Command {
        let bins = bins();
        let setup = "set -e\n\
             mount -t tmpfs -o mode=0755,uid=0,gid=0 e2e-bin /usr/local/bin\n\
             touch /usr/local/bin/cache-preload\n\
             mount --bind \"$1\" /usr/local/bin/cache-preload\n\
             shift\n\
             exec \"$@\"";
        let mut cmd = private_mount_sh(setup);
        cmd.arg(&bins.cache_preload);
        cmd.args(self.user.setpriv());
        cmd.args(["/usr/bin/env", "-i"]);
        cmd.args(NPP_ENV.iter().map(|(k, v)| format!("{k}={v}")));
        cmd.args(["/bin/sh", "-c", script]);
        cmd.current_dir("/");
        cmd.stdin(Stdio::null());
        cmd
    }

    /// Runs `script` to completion; returns (exit code, stdout, stderr).
    pub fn run(&self, script: &str) -> (i32, String, String) {
        let out = self
            .command(script)
            .output()
            .unwrap_or_else(|e| panic!("run site shell: {e}"));
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// NPP's Preload All spawn (npp-usage.md §2.1): `'<safexec>' nohup cache-preload ARGS >
    /// LOG 2>&1 < /dev/null & echo $!`; returns the PID the shell printed.
    pub fn spawn_preload(&self, args: &[String], log: &Path) -> u32 {
        let quoted: Vec<String> = args.iter().map(|a| sh_quote(a)).collect();
        let script = format!(
            "{} nohup cache-preload {} > {} 2>&1 < /dev/null & echo $!",
            sh_quote(&bins().safexec.to_string_lossy()),
            quoted.join(" "),
            sh_quote(&log.to_string_lossy())
        );
        let (code, out, err) = self.run(&script);
        assert_eq!(code, 0, "spawn failed: {err}");
        // PHP splits stdout on spaces and keeps the last token.
        out.split_whitespace()
            .last()
            .and_then(|t| t.trim().parse().ok())
            .unwrap_or_else(|| panic!("no PID printed by the spawn shell: {out:?} {err:?}"))
    }

    /// `safexec --kill=<pid> 2>&1` as NPP's Purge All runs it; returns (exit code, output).
    pub fn safexec_kill(&self, pid: u32) -> (i32, String) {
        let script = format!(
            "{} --kill={pid} 2>&1",
            sh_quote(&bins().safexec.to_string_lossy())
        );
        let (code, out, err) = self.run(&script);
        (code, out + &err)
    }
}

/// A process's state letter from `/proc/<pid>/stat`, `None` once it is gone.
pub fn proc_state(pid: u32) -> Option<char> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(") ")
        .and_then(|(_, rest)| rest.chars().next())
}

/// Whether the process runs (a zombie counts as finished, as NPP's `ps -p` sees it).
pub fn alive(pid: u32) -> bool {
    matches!(proc_state(pid), Some(s) if s != 'Z' && s != 'X')
}

/// Waits until `pid` has finished; panics after `limit`.
pub fn wait_gone(pid: u32, limit: Duration) {
    let t0 = Instant::now();
    while alive(pid) {
        assert!(
            t0.elapsed() < limit,
            "process {pid} still runs after {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The first value of a `Name:` line of `/proc/<pid>/status`.
pub fn proc_status_field(pid: u32, field: &str) -> Option<String> {
    let s = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .map(|v| v.trim().to_owned())
}

/// Waits until `pid` runs `comm` (the exec chain sh → safexec → nohup → tool finished); returns
/// false if the process ended first.
pub fn wait_comm(pid: u32, comm: &str, limit: Duration) -> bool {
    let t0 = Instant::now();
    while t0.elapsed() < limit {
        match fs::read_to_string(format!("/proc/{pid}/comm")) {
            Ok(c) if c.trim_end() == comm => return true,
            Ok(_) => {}
            Err(_) => return false,
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}
