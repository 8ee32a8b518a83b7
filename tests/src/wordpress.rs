//! A real WordPress (Debian's `wordpress` package) behind nginx's FastCGI cache, started by
//! `scripts/wordpress.sh`: a private MariaDB, PHP-FPM as the site user, 300 posts (50 with
//! non-ASCII slugs), the must-use plugin `tests/fixtures/wordpress/mu-plugins/npp-cache.php` and
//! the PHP client `php/`. The plugin calls the real setuid safexec from [`crate::bins`].
//!
//! [`WordPress::start`] starts it in a fresh temp dir; dropping it stops everything and removes
//! the dir (also while a failing test unwinds; sites of killed test processes are reaped later).

use std::collections::HashMap;
use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::{bins, must, require_root, workspace_root, User, Visits, BROWSER_ACCEPT, BROWSER_UA};

const PREFIX: &str = "e2e-wp.";

/// Where sites live: not under /tmp, because safexec cache-purge wants every ancestor of a cache
/// root root-owned and not writable by others (a sticky /tmp is writable by everyone).
pub fn base_dir() -> PathBuf {
    let d = PathBuf::from("/var/lib/npp-e2e");
    fs::create_dir_all(&d).expect("create /var/lib/npp-e2e");
    fs::set_permissions(&d, fs::Permissions::from_mode(0o755)).expect("chmod /var/lib/npp-e2e");
    d
}

fn script() -> PathBuf {
    workspace_root().join("scripts/wordpress.sh")
}

/// Options for [`WordPress::start_with`].
#[derive(Debug, Clone, Default)]
pub struct WpOptions {
    /// The PHP-FPM pool's user (default `wpsite`).
    pub site_user: Option<String>,
    /// Lines of the `/etc/safexec.conf` PHP-FPM's mount namespace sees (and so every safexec the
    /// plugin runs); `{cache}` stands for the site's cache dir, `{top}` for the test's directory.
    pub safexec_conf: Vec<String>,
    /// The purge service's socket, given to the plugin.
    pub purge_socket: Option<PathBuf>,
    /// Without the refresh header the plugin purges, then re-warms.
    pub no_refresh: bool,
}

/// A running WordPress site.
#[derive(Debug)]
pub struct WordPress {
    dir: PathBuf,
    env: HashMap<String, String>,
}

/// One HTTP answer read by [`http_get`].
#[derive(Debug, Clone)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// `X-FastCGI-Cache` (empty if absent).
    pub cache: String,
    /// The body.
    pub body: String,
}

impl WordPress {
    /// Starts a site with the default options.
    pub fn start() -> WordPress {
        WordPress::start_with(&WpOptions::default())
    }

    /// Starts a site; panics with the script's output on failure.
    pub fn start_with(opts: &WpOptions) -> WordPress {
        require_root();
        reap_stale();
        let b = bins();
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = base_dir().join(format!(
            "{PREFIX}{}.{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir(&dir).expect("create wp dir");
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).expect("chmod wp dir");
        let wp = WordPress {
            dir,
            env: HashMap::new(),
        };
        // The tools PHP-FPM's namespace gets in /usr/local/bin: root-owned copies only.
        let tools = wp.dir.join("tools");
        fs::create_dir(&tools).expect("tools dir");
        fs::set_permissions(&tools, fs::Permissions::from_mode(0o755)).expect("chmod tools");
        fs::copy(&b.cache_preload, tools.join("cache-preload")).expect("copy cache-preload");
        fs::copy(crate::purge::cache_purge_bin(), tools.join("cache-purge"))
            .expect("copy cache-purge");
        let mut cmd = Command::new(script());
        cmd.arg("start")
            .arg(wp.dir.join("site"))
            .env("WP_SAFEXEC", &b.safexec)
            .env("WP_BIN_DIR", &tools);
        if let Some(u) = &opts.site_user {
            cmd.env("WP_SITE_USER", u);
        }
        if !opts.safexec_conf.is_empty() {
            let cache = wp.dir.join("site/cache");
            let text: String = opts
                .safexec_conf
                .iter()
                .map(|l| {
                    l.replace("{cache}", &cache.to_string_lossy())
                        .replace("{top}", &wp.dir.to_string_lossy())
                        + "\n"
                })
                .collect();
            let conf = wp.dir.join("safexec.conf");
            fs::write(&conf, text).expect("write safexec.conf");
            fs::set_permissions(&conf, fs::Permissions::from_mode(0o644)).expect("chmod conf");
            cmd.env("WP_SAFEXEC_CONF", &conf);
        }
        if let Some(s) = &opts.purge_socket {
            cmd.env("WP_PURGE_SOCKET", s);
        }
        if opts.no_refresh {
            cmd.env("WP_REFRESH", "off");
        }
        let t0 = Instant::now();
        let out = cmd.output().expect("run scripts/wordpress.sh");
        assert!(
            out.status.success(),
            "scripts/wordpress.sh start failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let mut wp = wp;
        let text = fs::read_to_string(wp.dir.join("site/wp.env")).expect("read wp.env");
        wp.env = text
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.trim_matches('\'').to_owned()))
            .collect();
        eprintln!(
            "wordpress: {} up in {:.1} s ({} sitemap URLs)",
            wp.base_url(),
            t0.elapsed().as_secs_f64(),
            wp.var("PAGES")
        );
        wp
    }

    /// A fact from `wp.env` (BASE_URL, CACHE_DIR, FPM_PID, APP_PASSWORD, REFRESH_HEADER, …).
    pub fn var(&self, key: &str) -> &str {
        self.env
            .get(key)
            .unwrap_or_else(|| panic!("{key} missing from wp.env"))
    }

    /// The site's directory (`/var/lib/npp-e2e/e2e-wp.*/site`).
    pub fn dir(&self) -> PathBuf {
        self.dir.join("site")
    }

    /// The test's directory around the site (`{top}` in [`WpOptions::safexec_conf`]).
    pub fn top(&self) -> &Path {
        &self.dir
    }

    /// `http://127.0.0.1:<port>/`.
    pub fn base_url(&self) -> &str {
        self.var("BASE_URL")
    }

    /// nginx's cache directory.
    pub fn cache_dir(&self) -> PathBuf {
        PathBuf::from(self.var("CACHE_DIR"))
    }

    /// The PHP-FPM pool's user.
    pub fn site_user(&self) -> User {
        User::lookup(self.var("SITE_USER")).expect("site user")
    }

    /// Every URL of WordPress's sitemap, bytes as written (lower-case `%xx`).
    pub fn urls(&self) -> Vec<String> {
        let out = must(Command::new(script()).arg("urls").arg(self.dir()));
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// Runs `args` as the site user in PHP-FPM's mount namespace (see `wordpress.sh exec`).
    pub fn exec(&self, env: &[(&str, &str)], args: &[&str]) -> Output {
        let mut cmd = Command::new(script());
        cmd.arg("exec").arg(self.dir());
        for (k, v) in env {
            cmd.arg("--env").arg(format!("{k}={v}"));
        }
        cmd.args(args).stdin(Stdio::null());
        cmd.output().expect("run wordpress.sh exec")
    }

    /// A REST call as the administrator (application password); returns (status, headers, body).
    pub fn rest(&self, method: &str, route: &str, json: Option<&str>) -> (u16, String, String) {
        let url = format!(
            "{}wp-json/{}",
            self.base_url(),
            route.trim_start_matches('/')
        );
        let mut cmd = Command::new("curl");
        cmd.args(["-sS", "--max-time", "120", "-D", "-", "-X", method])
            .arg("-u")
            .arg(format!(
                "{}:{}",
                self.var("APP_USER"),
                self.var("APP_PASSWORD")
            ));
        if let Some(j) = json {
            cmd.args(["-H", "Content-Type: application/json", "--data-binary", j]);
        }
        let out = must(cmd.arg(&url));
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        (status, head.to_owned(), body.to_owned())
    }

    /// A REST call that must answer 2xx; returns the decoded JSON body.
    pub fn rest_ok(&self, method: &str, route: &str, json: Option<&str>) -> serde_json::Value {
        let (status, head, body) = self.rest(method, route, json);
        assert!(
            (200..300).contains(&status),
            "{method} {route}: HTTP {status}\n{head}\n{body}\n--- php errors:\n{}",
            self.php_errors()
        );
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{route}: not JSON ({e}): {body}"))
    }

    /// "Preload All" through the plugin's REST route; waits until the job finished and returns
    /// its final progress object.
    pub fn preload_all(&self, limit: Duration) -> serde_json::Value {
        self.start_preload_all();
        self.wait_preload(limit)
    }

    /// Starts "Preload All" through the plugin's REST route; returns the job's PID.
    pub fn start_preload_all(&self) -> u32 {
        let started = self.rest_ok("POST", "npp-cache/v1/preload", None);
        let pid = started["pid"].as_u64().unwrap_or(0);
        assert!(pid > 0, "no PID: {started}");
        pid as u32
    }

    /// Polls the plugin's progress route (each poll may be served by another PHP-FPM worker)
    /// until the job no longer runs; returns the last progress object.
    pub fn wait_preload(&self, limit: Duration) -> serde_json::Value {
        let t0 = Instant::now();
        loop {
            let p = self.rest_ok("GET", "npp-cache/v1/preload", None);
            if p["running"] == false {
                return p;
            }
            assert!(
                t0.elapsed() < limit,
                "preload still runs after {limit:?}: {p}"
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// The PIDs of PHP-FPM's workers.
    pub fn fpm_workers(&self) -> Vec<u32> {
        // pgrep exits 1 when there is none (between the old and the new workers of a reload).
        let out = Command::new("pgrep")
            .arg("-P")
            .arg(self.var("FPM_PID"))
            .output()
            .expect("run pgrep");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    }

    /// Reloads PHP-FPM (SIGUSR2: the master re-executes itself and replaces every worker) and
    /// waits until none of the old workers is left.
    pub fn reload_fpm(&self) {
        let before = self.fpm_workers();
        must(Command::new("kill").args(["-USR2", self.var("FPM_PID")]));
        let t0 = Instant::now();
        loop {
            let now = self.fpm_workers();
            if !now.is_empty() && before.iter().all(|p| !now.contains(p)) {
                return;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(30),
                "PHP-FPM did not replace its workers: {before:?} -> {now:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A browser requests each URL once (one curl, keep-alive, the bytes as given).
    pub fn visit_urls(&self, urls: &[String]) -> Visits {
        let cfg = self.dir().join("logs/visit.curl");
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
                .args(["-A", BROWSER_UA])
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

    /// One browser-like GET of `url` on a fresh connection (raw bytes of the path as given).
    pub fn get(&self, url: &str) -> Answer {
        http_get(self.var("PORT"), url)
    }

    /// PHP's error log so far (the plugin logs one line per refresh).
    pub fn php_errors(&self) -> String {
        fs::read_to_string(self.var("PHP_ERROR_LOG")).unwrap_or_default()
    }
}

impl Drop for WordPress {
    fn drop(&mut self) {
        let _ = Command::new(script())
            .arg("stop")
            .arg(self.dir())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// A browser-like `GET` over a new loopback connection to `port`; the request-target is the
/// URL's path and query exactly as written.
pub fn http_get(port: &str, url: &str) -> Answer {
    let rest = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
    let target = rest.find('/').map(|i| &rest[i..]).unwrap_or("/");
    let mut s = TcpStream::connect(format!("127.0.0.1:{port}")).expect("connect to nginx");
    s.set_read_timeout(Some(Duration::from_secs(30))).ok();
    let req = format!(
        "GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: {BROWSER_UA}\r\nAccept: {BROWSER_ACCEPT}\r\nAccept-Language: en-US,en;q=0.9\r\nConnection: close\r\n\r\n"
    );
    s.write_all(req.as_bytes()).expect("send request");
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).expect("read answer");
    let text = String::from_utf8_lossy(&buf);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let cache = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("x-fastcgi-cache")
                .then(|| v.trim().to_owned())
        })
        .unwrap_or_default();
    Answer {
        status,
        cache,
        body: body.to_owned(),
    }
}

/// Stops and removes sites whose test process is gone.
fn reap_stale() {
    let Ok(rd) = fs::read_dir(base_dir()) else {
        return;
    };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix(PREFIX) else {
            continue;
        };
        let pid = rest.split('.').next().unwrap_or("");
        if !pid.is_empty() && !Path::new("/proc").join(pid).exists() {
            let _ = Command::new(script())
                .arg("stop")
                .arg(e.path().join("site"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            let _ = fs::remove_dir_all(e.path());
        }
    }
}
