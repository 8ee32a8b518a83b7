//! Helpers for the `cache-purge` end-to-end tests (tests/tests/purge.rs): the built binary, runs
//! as the cache owner (www-data, through `setpriv`) and through the installed setuid `safexec`
//! as the site user, nginx config patches (the real `ngx_cache_purge` module, a second cache),
//! and the cache file of a key.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::{bins, cargo_bin, install_root_owned, must, root_owned_bin_dir, Stack, User};

/// `cache-purge` (debug), built once per process and installed `root:root 0755` in a root-owned
/// 0755 temp dir, so every user can run it and safexec accepts it as a tool.
pub fn cache_purge_bin() -> &'static Path {
    static B: OnceLock<PathBuf> = OnceLock::new();
    B.get_or_init(|| {
        let built = cargo_bin("cache-purge", "cache-purge");
        let dir = root_owned_bin_dir("e2e-purge-bin.");
        install_root_owned(&built, &dir, "cache-purge", 0o755)
    })
}

/// nginx's worker user, which owns the cache.
pub fn www_data() -> User {
    User::lookup("www-data").expect("www-data")
}

/// The file nginx stores `key` in under `root` with `levels=1:2`.
pub fn file_of(root: &Path, key: &str) -> PathBuf {
    nginx_cache::Levels::parse("1:2")
        .expect("levels")
        .file_path(root, &nginx_cache::md5_hex(key.as_bytes()))
}

/// The key of a URL on the stack (`$scheme$request_method$host$request_uri`).
pub fn key_of(stack: &Stack, method: &str, target: &str) -> String {
    format!("http{method}{}{target}", stack.host())
}

/// The request target of an absolute URL of the stack.
pub fn target_of(stack: &Stack, url: &str) -> String {
    let base = stack.base_url().trim_end_matches('/');
    url.strip_prefix(base)
        .unwrap_or_else(|| panic!("{url} is not on {base}"))
        .to_owned()
}

/// Entry files (32 hex digits) under `root`, relative, sorted.
pub fn entries(root: &Path) -> Vec<String> {
    fn walk(root: &Path, d: &Path, out: &mut Vec<String>) {
        if let Ok(rd) = fs::read_dir(d) {
            for e in rd.flatten() {
                let p = e.path();
                match e.file_type() {
                    Ok(t) if t.is_dir() => walk(root, &p, out),
                    Ok(t) if t.is_file() => {
                        let n = e.file_name().to_string_lossy().into_owned();
                        if n.len() == 32 {
                            out.push(p.strip_prefix(root).unwrap().to_string_lossy().into_owned());
                        }
                    }
                    _ => {}
                }
            }
        }
    }
    let mut v = Vec::new();
    walk(root, root, &mut v);
    v.sort();
    v
}

/// Runs `cache-purge` directly as www-data (setpriv) on the stack's cache, with a key index in
/// the stack dir unless `args` say `--no-index`.
pub fn as_owner(stack: &Stack, args: &[&str]) -> Output {
    let index = index_dir(stack);
    let mut cmd = Command::new("/usr/bin/setpriv");
    cmd.args(www_data().setpriv().iter().skip(1));
    cmd.arg(cache_purge_bin());
    cmd.arg("--cache-path").arg(stack.cache_dir());
    cmd.arg("--index-dir").arg(&index);
    cmd.args(args).stdin(Stdio::null()).current_dir("/");
    cmd.output().expect("run cache-purge")
}

/// The key index directory for [`as_owner`] (www-data, 0700, in the stack dir).
pub fn index_dir(stack: &Stack) -> PathBuf {
    let d = stack.dir().join("purge-index");
    if !d.exists() {
        fs::create_dir(&d).expect("index dir");
        let w = www_data();
        must(
            Command::new("chown")
                .arg(format!("{}:{}", w.uid, w.gid))
                .arg(&d),
        );
        fs::set_permissions(&d, fs::Permissions::from_mode(0o700)).expect("chmod");
    }
    d
}

/// A private view of the system for `safexec cache-purge` as a site user: a copy of /etc with
/// our `/etc/safexec.conf`, `/usr/local/bin/cache-purge`, and cache roots bind-mounted at
/// root-owned paths under `/run` (safexec wants root-owned, non-writable ancestors; the stacks
/// live under /tmp). The host is never changed except for the empty mount points under /run.
pub struct SafexecView {
    etc: PathBuf,
    mounts: Vec<(PathBuf, PathBuf)>,
    top: PathBuf,
}

impl SafexecView {
    /// Prepares a view whose `/etc/safexec.conf` is `conf`, where `conf` may name the mount
    /// points returned by [`SafexecView::mount_point`].
    pub fn new(tag: &str) -> SafexecView {
        let top = PathBuf::from(format!("/run/e2e-purge-{}-{tag}", std::process::id()));
        let _ = fs::remove_dir_all(&top);
        fs::create_dir(&top).expect("mount point dir");
        fs::set_permissions(&top, fs::Permissions::from_mode(0o755)).expect("chmod");
        let etc = std::env::temp_dir().join(format!("e2e-purge-etc.{}-{tag}", std::process::id()));
        let _ = fs::remove_dir_all(&etc);
        must(Command::new("cp").args(["-a", "/etc"]).arg(&etc));
        SafexecView {
            etc,
            mounts: Vec::new(),
            top,
        }
    }

    /// Shows `source` (a cache dir) at a root-owned path; returns that path.
    pub fn mount_point(&mut self, name: &str, source: &Path) -> PathBuf {
        let p = self.top.join(name);
        fs::create_dir(&p).expect("mount point");
        self.mounts.push((source.to_path_buf(), p.clone()));
        p
    }

    /// Writes the view's `/etc/safexec.conf` (root:root 0644).
    pub fn set_conf(&self, text: &str) {
        let p = self.etc.join("safexec.conf");
        fs::write(&p, text).expect("write conf");
        fs::set_permissions(&p, fs::Permissions::from_mode(0o644)).expect("chmod conf");
        assert_eq!(fs::metadata(&p).unwrap().uid(), 0);
    }

    /// Runs `safexec cache-purge ARGS` as `user` in the view; returns the output.
    pub fn purge(&self, user: &User, args: &[&str]) -> Output {
        let mut setup = String::from(
            "set -e\n\
             mount --bind \"$1\" /etc\n\
             mount -t tmpfs -o mode=0755,uid=0,gid=0 e2e-bin /usr/local/bin\n\
             touch /usr/local/bin/cache-purge\n\
             mount --bind \"$2\" /usr/local/bin/cache-purge\n",
        );
        for (src, dst) in &self.mounts {
            setup.push_str(&format!(
                "mount --bind {} {}\n",
                crate::sh_quote(&src.to_string_lossy()),
                crate::sh_quote(&dst.to_string_lossy())
            ));
        }
        setup.push_str("shift 2\nexec \"$@\"");
        let mut cmd = crate::private_mount_sh(&setup);
        cmd.arg(&self.etc).arg(cache_purge_bin());
        cmd.args(user.setpriv());
        cmd.args(["/usr/bin/env", "-i", "PATH=/usr/bin:/bin", "LANG=C.UTF-8"]);
        cmd.arg(&bins().safexec).arg("cache-purge").args(args);
        cmd.current_dir("/").stdin(Stdio::null());
        cmd.output().expect("run safexec")
    }
}

impl Drop for SafexecView {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.etc);
        let _ = fs::remove_dir_all(&self.top);
    }
}

/// Adds to the stack's nginx: the real `ngx_cache_purge` module with a `/purge/<target>`
/// location on the stack's zone (key `$scheme$request_method$host` + the raw target, so a GET to
/// it purges the GET entry), and a second site `other.test` with its own cache `DIR/cache2`.
/// Reloads and waits until the new workers answer.
pub fn patch_nginx(stack: &Stack) -> PathBuf {
    let conf = stack.dir().join("nginx.conf");
    let mut text = fs::read_to_string(&conf).expect("nginx.conf");
    let dir = stack.dir().display().to_string();
    text = text.replacen(
        "user ",
        "load_module /usr/lib/nginx/modules/ngx_http_cache_purge_module.so;\nuser ",
        1,
    );
    let cache2 = stack.dir().join("cache2");
    let http_extra = format!(
        "    fastcgi_cache_path {c2} levels=1:2 keys_zone=e2e2:8m inactive=1d use_temp_path=off;\n\
         \x20   map $request_uri $purge_target {{ ~^/purge(?<t>/.*)$ $t; default \"\"; }}\n\
         \x20   server {{\n\
         \x20       listen 127.0.0.1:{port};\n\
         \x20       server_name other.test;\n\
         \x20       location / {{\n\
         \x20           include /etc/nginx/fastcgi_params;\n\
         \x20           fastcgi_param HTTP_HOST $host:$server_port;\n\
         \x20           fastcgi_param SCRIPT_FILENAME {dir}/site/index.php;\n\
         \x20           fastcgi_param NPP_FLAGS_DIR {dir}/flags;\n\
         \x20           fastcgi_pass unix:{dir}/run/php-fpm.sock;\n\
         \x20           fastcgi_cache e2e2;\n\
         \x20           fastcgi_cache_valid 200 1h;\n\
         \x20           add_header X-FastCGI-Cache $upstream_cache_status always;\n\
         \x20       }}\n\
         \x20   }}\n",
        c2 = cache2.display(),
        port = stack.var("PORT"),
    );
    text = text.replacen(
        "        location / {\n",
        "        location ^~ /purge/ {\n\
         \x20           allow 127.0.0.1;\n\
         \x20           deny all;\n\
         \x20           fastcgi_cache_purge e2e \"$scheme$request_method$host$purge_target\";\n\
         \x20       }\n\
         \x20       location / {\n",
        1,
    );
    // The other site goes after the stack's server, which stays the default one.
    let end = text.rfind('}').expect("http block");
    text.insert_str(end, &http_extra);
    fs::write(&conf, text).expect("write nginx.conf");
    must(
        Command::new("nginx")
            .args(["-t", "-q", "-c"])
            .arg(&conf)
            .arg("-e")
            .arg(stack.var("ERROR_LOG")),
    );
    let pid = stack.var("NGINX_PID");
    must(Command::new("kill").args(["-HUP", pid]));
    // New workers answer /purge/ from the module: no X-FastCGI-Cache header on it.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, headers) = curl(
            stack,
            "GET",
            &format!("{}purge/e2e-probe/", stack.base_url()),
            &[],
        );
        if !headers.to_ascii_lowercase().contains("x-fastcgi-cache") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "nginx did not reload with the purge module"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    cache2
}

/// One request with curl (`--path-as-is`, raw target): (HTTP status, response headers).
pub fn curl(stack: &Stack, method: &str, url: &str, headers: &[&str]) -> (u16, String) {
    let _ = stack;
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "--path-as-is", "-o", "/dev/null", "-D", "-"]);
    if method == "HEAD" {
        cmd.arg("-I");
    } else {
        cmd.args(["-X", method]);
    }
    for h in headers {
        cmd.args(["-H", h]);
    }
    cmd.arg(url);
    let out = must(&mut cmd);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let status = text
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, text)
}

/// The `X-FastCGI-Cache` value of a GET (or HEAD) with browser headers.
pub fn cache_status(stack: &Stack, method: &str, url: &str, extra: &[&str]) -> String {
    let mut h = vec!["Accept-Encoding: gzip, deflate, br, zstd"];
    h.extend_from_slice(extra);
    let (_, headers) = curl(stack, method, url, &h);
    headers
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("x-fastcgi-cache")
                .then(|| v.trim().to_owned())
        })
        .unwrap_or_default()
}

/// Waits until `path` exists (nginx renames its temp file in after the response).
pub fn wait_exists(path: &Path) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if path.exists() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}
