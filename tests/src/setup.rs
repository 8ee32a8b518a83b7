//! Harness for cache-setup's end-to-end tests: the `cache-setup` binary, the fixture hosts of
//! `tests/fixtures/nginx-confs/` instantiated (and, for the purge/preload test, started) in a
//! temp dir, and site users running `safexec cache-purge` / `safexec cache-preload` against the
//! `/etc/safexec.conf` that `cache-setup apply` wrote (bind-mounted in a private mount
//! namespace, so the host's file is never changed).

use std::fs;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub use crate::ensure_user;
use crate::{
    bins, cargo_bin, install_root_owned, must, require_root, root_owned_bin_dir, workspace_root,
    User,
};

const HOST_PREFIX: &str = "e2e-setup.";
const BINS_PREFIX: &str = "e2e-setup-bins.";

/// The tools, installed root:root 0755 in a world-readable temp dir (so created users can run
/// them too).
#[derive(Debug)]
pub struct Tools {
    /// `cache-setup`.
    pub cache_setup: PathBuf,
    /// `cache-purge` (bind-mounted into `/usr/local/bin` for safexec).
    pub cache_purge: PathBuf,
}

/// Builds and installs cache-setup and cache-purge once per process.
pub fn tools() -> &'static Tools {
    static T: OnceLock<Tools> = OnceLock::new();
    T.get_or_init(|| {
        require_root();
        let dir = root_owned_bin_dir(BINS_PREFIX);
        let install = |package: &str, bin: &str| {
            install_root_owned(&cargo_bin(package, bin), &dir, bin, 0o755)
        };
        Tools {
            cache_setup: install("cache-setup", "cache-setup"),
            cache_purge: install("cache-purge", "cache-purge"),
        }
    })
}

/// Runs `cache-setup ARGS` as root.
pub fn cache_setup(args: &[&str]) -> Output {
    Command::new(&tools().cache_setup)
        .args(args)
        .output()
        .expect("run cache-setup")
}

/// A free loopback port (the bind in nginx is the real test).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// One fixture host copied into a temp dir with its placeholders filled in.
#[derive(Debug)]
pub struct Host {
    /// The instance dir (`@DIR@`).
    pub dir: PathBuf,
    /// The root-owned parent of its caches (`@CACHE@`), under /var/cache.
    pub cache: PathBuf,
    /// `@PORT_A@`, `@PORT_B@`.
    pub ports: (u16, u16),
    started: bool,
}

impl Host {
    /// Copies `tests/fixtures/nginx-confs/NAME`, fills it in and checks it with `nginx -t -c` and
    /// `php-fpm -t -y` (the users `setupa` and `setupb` are created first).
    pub fn new(name: &str) -> Host {
        require_root();
        ensure_user("setupa");
        ensure_user("setupb");
        reap_stale();
        static N: AtomicUsize = AtomicUsize::new(0);
        let tag = format!(
            "{HOST_PREFIX}{}.{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let dir = std::env::temp_dir().join(&tag);
        let cache = PathBuf::from("/var/cache").join(&tag);
        let _ = fs::remove_dir_all(&dir);
        let _ = fs::remove_dir_all(&cache);
        let host = Host {
            dir: dir.clone(),
            cache: cache.clone(),
            ports: (free_port(), free_port()),
            started: false,
        };
        fs::create_dir_all(&dir).expect("create host dir");
        fs::create_dir_all(&cache).expect("create cache parent");
        for d in [&dir, &cache] {
            fs::set_permissions(d, fs::Permissions::from_mode(0o755)).expect("chmod");
        }
        let src = workspace_root()
            .join("tests/fixtures/nginx-confs")
            .join(name);
        copy_filled(&src, &dir, &host);
        for sub in ["run", "logs", "tmp"] {
            fs::create_dir_all(dir.join(sub)).expect("mkdir");
        }
        fs::set_permissions(dir.join("run"), fs::Permissions::from_mode(0o755)).expect("chmod");
        must(
            Command::new("nginx")
                .args(["-t", "-q", "-c"])
                .arg(dir.join("nginx.conf"))
                .arg("-e")
                .arg(dir.join("logs/error.log")),
        );
        must(
            Command::new(find_fpm())
                .args(["-t", "-y"])
                .arg(dir.join("php-fpm.conf")),
        );
        host
    }

    /// A path inside the instance dir, as a string.
    pub fn path(&self, rel: &str) -> String {
        self.dir.join(rel).display().to_string()
    }

    /// `--nginx-conf DIR/nginx.conf --fpm-conf DIR/php-fpm.conf --php-dir /nonexistent` (the
    /// host's own pools stay out of the picture).
    pub fn sources(&self) -> Vec<String> {
        vec![
            "--nginx-conf".into(),
            self.path("nginx.conf"),
            "--fpm-conf".into(),
            self.path("php-fpm.conf"),
            "--php-dir".into(),
            "/nonexistent".into(),
        ]
    }

    /// Starts PHP-FPM and nginx and waits until both answer.
    pub fn start(&mut self) {
        self.started = true;
        must(
            Command::new(find_fpm())
                .arg("--fpm-config")
                .arg(self.dir.join("php-fpm.conf")),
        );
        must(
            Command::new("nginx")
                .arg("-c")
                .arg(self.dir.join("nginx.conf"))
                .arg("-e")
                .arg(self.dir.join("logs/error.log")),
        );
        for port in [self.ports.0, self.ports.1] {
            let t0 = Instant::now();
            loop {
                let out = Command::new("curl")
                    .args([
                        "-s",
                        "-o",
                        "/dev/null",
                        "-w",
                        "%{http_code}",
                        "--max-time",
                        "2",
                    ])
                    .arg(format!("http://127.0.0.1:{port}/?warmup"))
                    .output()
                    .expect("curl");
                if out.stdout == b"200" {
                    break;
                }
                assert!(
                    t0.elapsed() < Duration::from_secs(10),
                    "site on port {port} does not answer 200: {}",
                    fs::read_to_string(self.dir.join("logs/error.log")).unwrap_or_default()
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    /// Regular files under a cache dir (recursively).
    pub fn cache_files(&self, zone_dir: &str) -> Vec<PathBuf> {
        fn walk(d: &Path, out: &mut Vec<PathBuf>) {
            if let Ok(rd) = fs::read_dir(d) {
                for e in rd.flatten() {
                    match e.file_type() {
                        Ok(t) if t.is_dir() => walk(&e.path(), out),
                        Ok(t) if t.is_file() => out.push(e.path()),
                        _ => {}
                    }
                }
            }
        }
        let mut v = Vec::new();
        walk(&self.cache.join(zone_dir), &mut v);
        v
    }

    /// Runs `safexec ARGS` as `user` with NPP's environment, in a private mount namespace where
    /// `/etc` is a copy holding `conf` as safexec.conf and `/usr/local/bin` holds cache-purge
    /// and cache-preload.
    pub fn safexec_as(&self, user: &User, conf: &Path, args: &[&str]) -> Output {
        let etc = self.dir.join("etc");
        if !etc.exists() {
            must(Command::new("cp").arg("-a").arg("/etc/.").arg(&etc));
        }
        fs::copy(conf, etc.join("safexec.conf")).expect("copy safexec.conf");
        fs::set_permissions(etc.join("safexec.conf"), fs::Permissions::from_mode(0o644))
            .expect("chmod safexec.conf");
        let setup = "set -e\n\
             mount -t tmpfs -o mode=0755,uid=0,gid=0 e2e-setup-bin /usr/local/bin\n\
             touch /usr/local/bin/cache-purge /usr/local/bin/cache-preload\n\
             mount --bind \"$1\" /usr/local/bin/cache-purge\n\
             mount --bind \"$2\" /usr/local/bin/cache-preload\n\
             mount --bind \"$3\" /etc\n\
             shift 3\n\
             exec \"$@\"";
        let mut cmd = crate::private_mount_sh(setup);
        cmd.arg(&tools().cache_purge);
        cmd.arg(&bins().cache_preload);
        cmd.arg(&etc);
        cmd.args(user.setpriv());
        cmd.args(["/usr/bin/env", "-i"]);
        cmd.args(crate::NPP_ENV.iter().map(|(k, v)| format!("{k}={v}")));
        cmd.arg(&bins().safexec);
        cmd.args(args);
        cmd.current_dir("/");
        cmd.stdin(Stdio::null());
        cmd.output().expect("run safexec")
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        if self.started {
            stop(&self.dir);
        }
        let _ = fs::remove_dir_all(&self.dir);
        let _ = fs::remove_dir_all(&self.cache);
    }
}

/// Stops the nginx and PHP-FPM whose pid files are in DIR/run (only while they still are
/// nginx / php-fpm).
fn stop(dir: &Path) {
    for pidfile in ["run/nginx.pid", "run/php-fpm.pid"] {
        let Ok(pid) = fs::read_to_string(dir.join(pidfile)) else {
            continue;
        };
        let pid = pid.trim();
        let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let text = String::from_utf8_lossy(&cmdline);
        if !pid.is_empty() && (text.contains("nginx") || text.contains("php-fpm")) {
            let _ = Command::new("kill").args(["-TERM", pid]).status();
            let t0 = Instant::now();
            while Path::new("/proc").join(pid).exists() && t0.elapsed() < Duration::from_secs(5) {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

/// Removes hosts (and stops their servers) left by a killed earlier test process.
fn reap_stale() {
    reap_stale_dirs(&std::env::temp_dir(), HOST_PREFIX, stop);
    reap_stale_dirs(Path::new("/var/cache"), HOST_PREFIX, |_| {});
}

/// Removes `<base>/<prefix><pid>…` entries whose process is gone, calling `before` first.
fn reap_stale_dirs(base: &Path, prefix: &str, before: impl Fn(&Path)) {
    let Ok(rd) = fs::read_dir(base) else { return };
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

fn copy_filled(src: &Path, dst: &Path, host: &Host) {
    for e in fs::read_dir(src)
        .unwrap_or_else(|e| panic!("read {src:?}: {e}"))
        .flatten()
    {
        let to = dst.join(e.file_name());
        if e.file_type().expect("file type").is_dir() {
            fs::create_dir_all(&to).expect("mkdir");
            fs::set_permissions(&to, fs::Permissions::from_mode(0o755)).expect("chmod");
            copy_filled(&e.path(), &to, host);
        } else {
            let text = fs::read_to_string(e.path()).expect("read fixture");
            let text = text
                .replace("@DIR@", &host.dir.display().to_string())
                .replace("@CACHE@", &host.cache.display().to_string())
                .replace("@PORT_A@", &host.ports.0.to_string())
                .replace("@PORT_B@", &host.ports.1.to_string());
            fs::write(&to, text).expect("write fixture copy");
            fs::set_permissions(&to, fs::Permissions::from_mode(0o644)).expect("chmod");
        }
    }
}

fn find_fpm() -> PathBuf {
    let mut found: Vec<PathBuf> = fs::read_dir("/usr/sbin")
        .expect("read /usr/sbin")
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("php-fpm"))
        })
        .collect();
    found.sort();
    found
        .pop()
        .expect("php-fpm not installed (run scripts/install-deps.sh)")
}
