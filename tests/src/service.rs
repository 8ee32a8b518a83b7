//! The purge service (`cache-purged`) started the way its systemd units start it: the same
//! binary, as the cache owner `www-data`, with listening sockets inherited as `LISTEN_FDS`
//! passes them (fd 3: the Unix socket, fd 4: the SpinupWP TCP socket). The test process keeps
//! the listening sockets, as systemd does, so a killed service can be started again on them and
//! clients that connect meanwhile wait in the backlog.

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::OwnedFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::{cargo_bin, install_root_owned, must, require_root, root_owned_bin_dir, User};

/// Builds `cache-purged` once and installs a root-owned 0755 copy www-data can run.
pub fn purged_bin() -> &'static Path {
    static B: OnceLock<PathBuf> = OnceLock::new();
    B.get_or_init(|| {
        require_root();
        let exe = cargo_bin("purged", "cache-purged");
        let dir = root_owned_bin_dir("e2e-purged-bin.");
        install_root_owned(&exe, &dir, "cache-purged", 0o755)
    })
}

/// Removes `<tmp>/e2e-purged-*.<pid>` left by test processes that are gone.
fn reap_stale() {
    let Ok(rd) = fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.starts_with("e2e-purged-") {
            continue;
        }
        let pid = name.rsplit('.').next().unwrap_or("");
        if !pid.is_empty()
            && pid.bytes().all(|b| b.is_ascii_digit())
            && !Path::new("/proc").join(pid).exists()
        {
            let _ = fs::remove_dir_all(e.path());
        }
    }
}

/// A root-owned directory (0755) for the configuration file and the socket; directories of
/// earlier, finished test processes are removed first.
pub fn root_dir(tag: &str) -> PathBuf {
    reap_stale();
    let d = std::env::temp_dir().join(format!("e2e-purged-{tag}.{}", std::process::id()));
    let _ = fs::remove_dir_all(&d);
    fs::create_dir(&d).expect("create dir");
    fs::set_permissions(&d, fs::Permissions::from_mode(0o755)).expect("chmod");
    d
}

/// Writes `/etc/safexec.conf`-style text as a root-owned 0644 file in `dir`.
pub fn write_config(dir: &Path, text: &str) -> PathBuf {
    let p = dir.join("safexec.conf");
    fs::write(&p, text).expect("write config");
    fs::set_permissions(&p, fs::Permissions::from_mode(0o644)).expect("chmod config");
    p
}

/// A running service.
#[derive(Debug)]
pub struct Service {
    child: Option<Child>,
    unix: UnixListener,
    tcp: TcpListener,
    /// The Unix socket path.
    pub socket: PathBuf,
    /// The SpinupWP address.
    pub tcp_addr: SocketAddr,
    args: Vec<String>,
    log: PathBuf,
    starts: usize,
}

impl Service {
    /// Creates the sockets in `dir` and starts the service with `config` and `extra` options.
    pub fn start(dir: &Path, config: &Path, extra: &[&str]) -> Service {
        let socket = dir.join("purged.sock");
        let _ = fs::remove_file(&socket);
        let unix = UnixListener::bind(&socket).expect("bind unix socket");
        fs::set_permissions(&socket, fs::Permissions::from_mode(0o666)).expect("chmod socket");
        let tcp = TcpListener::bind("127.0.0.1:0").expect("bind tcp");
        let tcp_addr = tcp.local_addr().expect("tcp addr");
        let mut args = vec!["--config".to_owned(), config.display().to_string()];
        args.extend(extra.iter().map(|s| s.to_string()));
        let mut s = Service {
            child: None,
            unix,
            tcp,
            socket,
            tcp_addr,
            args,
            log: dir.join("purged.log"),
            starts: 0,
        };
        s.spawn();
        s
    }

    /// Starts the process on the kept sockets (what systemd does on activation or restart).
    pub fn spawn(&mut self) {
        let u = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("log");
        let fd3: OwnedFd = self.unix.try_clone().expect("dup unix").into();
        let fd4: OwnedFd = self.tcp.try_clone().expect("dup tcp").into();
        // stdin and stdout carry the two sockets into sh, which moves them to fds 3 and 4 and
        // then execs setpriv, which execs the service: one pid all along, so LISTEN_PID=$$.
        let script = "exec 3<&0 4<&1 </dev/null >&2\n\
             LISTEN_FDS=2 LISTEN_PID=$$ LISTEN_FDNAMES=purged:spinupwp\n\
             export LISTEN_FDS LISTEN_PID LISTEN_FDNAMES\n\
             exec /usr/bin/setpriv --reuid=www-data --regid=www-data --init-groups -- \"$@\"";
        let child = Command::new("/bin/sh")
            .args(["-c", script, "sh"])
            .arg(purged_bin())
            .args(&self.args)
            .stdin(Stdio::from(fd3))
            .stdout(Stdio::from(fd4))
            .stderr(Stdio::from(u))
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .spawn()
            .expect("spawn cache-purged");
        self.child = Some(child);
        self.starts += 1;
    }

    /// The service's pid.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).expect("running")
    }

    /// SIGKILL, as an OOM kill or a crash would end it.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Waits for the service to exit by itself (idle exit); returns its exit code.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<i32> {
        let t0 = Instant::now();
        while t0.elapsed() < limit {
            if let Some(c) = self.child.as_mut() {
                if let Ok(Some(st)) = c.try_wait() {
                    self.child = None;
                    return st.code();
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    /// The service's log so far.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Peak resident memory of the service in KiB (`VmHWM`).
    pub fn peak_rss_kib(&self) -> u64 {
        crate::proc_status_field(self.pid(), "VmHWM")
            .and_then(|v| v.split_whitespace().next().and_then(|n| n.parse().ok()))
            .unwrap_or(0)
    }

    /// Sends JSON lines over the Unix socket as root and returns the answers. The service may
    /// answer and close before everything was written (an oversized line): the answers that
    /// came are returned.
    pub fn ask(&self, lines: &[String]) -> Vec<serde_json::Value> {
        let mut s = UnixStream::connect(&self.socket).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(30))).ok();
        let mut text = lines.join("\n");
        text.push('\n');
        let _ = s.write_all(text.as_bytes());
        s.shutdown(std::net::Shutdown::Write).ok();
        BufReader::new(s)
            .lines()
            .map_while(Result::ok)
            .map(|l| serde_json::from_str(&l).expect("answer is JSON"))
            .collect()
    }

    /// Sends JSON lines as `user` (a Python client under setpriv: SO_PEERCRED sees that uid).
    pub fn ask_as(&self, user: &User, lines: &[String]) -> Vec<serde_json::Value> {
        let client = "import socket,sys\n\
            s=socket.socket(socket.AF_UNIX)\n\
            s.connect(sys.argv[1])\n\
            s.sendall(sys.stdin.buffer.read())\n\
            s.shutdown(socket.SHUT_WR)\n\
            out=b''\n\
            while True:\n\
            \x20   b=s.recv(65536)\n\
            \x20   if not b: break\n\
            \x20   out+=b\n\
            sys.stdout.buffer.write(out)\n";
        let mut cmd = Command::new(&user.setpriv()[0]);
        cmd.args(&user.setpriv()[1..])
            .args(["/usr/bin/python3", "-c", client])
            .arg(&self.socket)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn client");
        let mut input = lines.join("\n");
        input.push('\n');
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("write client stdin");
        let out = child.wait_with_output().expect("client");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
            .collect()
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A nginx cache file (version-5 LP64 header, `KEY:` line, a stored response) for `key`.
pub fn cache_file_bytes(key: &str) -> Vec<u8> {
    let mut f = vec![0u8; 336];
    f[0..8].copy_from_slice(&5u64.to_ne_bytes());
    let hs = (336 + 6 + key.len() + 1) as u16;
    f[54..56].copy_from_slice(&hs.to_ne_bytes());
    f.extend_from_slice(b"\nKEY: ");
    f.extend_from_slice(key.as_bytes());
    f.extend_from_slice(b"\nStatus: 200 OK\r\nContent-Type: text/html\r\n\r\n<p>cached</p>\n");
    f
}

/// The `levels=1:2` path of a key below `root`.
pub fn cache_path(root: &Path, key: &str) -> PathBuf {
    let h = md5_hex(key.as_bytes());
    root.join(&h[31..]).join(&h[29..31]).join(&h)
}

/// MD5 in hex (via md5sum, so the tests do not share the service's code).
pub fn md5_hex(data: &[u8]) -> String {
    let mut c = Command::new("md5sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("md5sum");
    c.stdin
        .take()
        .expect("stdin")
        .write_all(data)
        .expect("write");
    let out = c.wait_with_output().expect("md5sum");
    String::from_utf8_lossy(&out.stdout)[..32].to_owned()
}

/// Writes fake cache entries for `keys` under `root` (created 0700, all owned by www-data).
pub fn fake_cache(root: &Path, keys: &[String]) {
    fs::create_dir_all(root).expect("cache root");
    for k in keys {
        let p = cache_path(root, k);
        fs::create_dir_all(p.parent().expect("parent")).expect("level dirs");
        fs::write(&p, cache_file_bytes(k)).expect("write entry");
    }
    must(
        Command::new("chown")
            .args(["-R", "www-data:www-data"])
            .arg(root),
    );
    must(Command::new("chmod").args(["-R", "u=rwX,go="]).arg(root));
}

/// One HTTP/1.1 GET with `Connection: close`; returns (status, X-FastCGI-Cache).
pub fn get(addr: &str, host: &str, path: &str, headers: &[(&str, &str)]) -> (u16, String) {
    let mut s = TcpStream::connect(addr).expect("connect nginx");
    s.set_read_timeout(Some(Duration::from_secs(30))).ok();
    let mut req = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: {}\r\nAccept: {}\r\nAccept-Encoding: gzip, deflate, br, zstd\r\nConnection: close\r\n",
        crate::BROWSER_UA,
        crate::BROWSER_ACCEPT
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).expect("send");
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let cache = text
        .lines()
        .take_while(|l| !l.is_empty())
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("x-fastcgi-cache")
                .then(|| v.trim().to_owned())
        })
        .unwrap_or_default();
    (status, cache)
}
