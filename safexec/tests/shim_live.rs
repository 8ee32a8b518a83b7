//! The real setuid safexec injecting the real `libnpp_norm.so` (crate npp-norm) into the real
//! wget and curl, run by an unprivileged user, and the request line on the wire.
//!
//! The library has to sit at the compiled-in path `/usr/lib/npp/libnpp_norm.so`, a system path:
//! each run happens in a private mount namespace where a root-owned tmpfs is mounted on
//! `/usr/lib/npp` (when that directory does not exist, on a root-owned overlay of `/usr/lib`
//! whose upper layer lives under /tmp), so nothing is ever written to the host's /usr/lib.
//! Needs root, wget and curl: without them the tests fail.
mod common;

use common::*;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, OnceLock};

const SO: &str = "/usr/lib/npp/libnpp_norm.so";

/// The freshly built library, copied root:root 0644 into a root-owned directory under /tmp.
fn shim_copy() -> &'static Path {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(|| {
        require_root();
        let built = cargo_build("npp-norm", "libnpp_norm.so");
        let dir = Path::new("/tmp/safexec-tests").join(format!("{}-shim", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let dst = dir.join("libnpp_norm.so");
        std::fs::copy(&built, &dst).unwrap();
        must(Command::new("chmod").arg("0755").arg(&dir));
        must(Command::new("chmod").arg("0644").arg(&dst));
        dst
    })
}

/// Namespace setup: the library at [`SO`], root-owned, with this mode.
fn install_setup(mode: &str) -> String {
    let src = shim_copy();
    let ovl = src.parent().unwrap().join("ovl");
    format!(
        r#"if [ ! -d /usr/lib/npp ]; then
  rm -rf {ovl}; mkdir -p {ovl}/u {ovl}/w; chmod 0755 {ovl} {ovl}/u
  mount -t overlay overlay -o lowerdir=/usr/lib,upperdir={ovl}/u,workdir={ovl}/w /usr/lib
  mkdir -m 0755 /usr/lib/npp
fi
mount -t tmpfs -o mode=0755,uid=0,gid=0 none /usr/lib/npp
cp {src} {SO}
chown root:root {SO}
chmod {mode} {SO}"#,
        ovl = ovl.display(),
        src = src.display(),
    )
}

/// A loopback HTTP server that records request lines.
struct Server {
    addr: SocketAddr,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Server {
    fn start() -> Server {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let lines: Arc<Mutex<Vec<String>>> = Arc::default();
        let log = lines.clone();
        std::thread::spawn(move || {
            for mut c in l.incoming().flatten() {
                let _ = c.set_read_timeout(Some(std::time::Duration::from_secs(20)));
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match c.read(&mut chunk) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let line = buf.split(|&b| b == b'\r').next().unwrap_or_default();
                log.lock()
                    .unwrap()
                    .push(String::from_utf8_lossy(line).into_owned());
                let _ = c.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                );
            }
        });
        Server { addr, lines }
    }

    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.lines.lock().unwrap())
    }
}

/// Runs `safexec <tool args…> URL` as the test user in a namespace with the library installed
/// (file mode `mode`) and returns safexec's output and the request lines the server saw.
fn run(
    server: &Server,
    mode: &str,
    tool: &[&str],
    path: &str,
    env: &[(&str, &str)],
) -> (Output, Vec<String>) {
    for t in ["/usr/bin/wget", "/usr/bin/curl"] {
        assert!(
            Path::new(t).exists(),
            "{t} is missing (scripts/install-deps.sh installs it)"
        );
    }
    server.take();
    let url = format!("http://{}{path}", server.addr);
    let mut inv = Invocation::new(setuid_safexec())
        .args(tool)
        .arg(&url)
        .as_user(test_user())
        .in_namespace(&install_setup(mode));
    for (k, v) in env {
        inv = inv.env(k, v);
    }
    let out = without_config(|| inv.run());
    (out, server.take())
}

const WGET: &[&str] = &["wget", "-q", "-O", "/dev/null"];
const CURL: &[&str] = &["curl", "-s", "-o", "/dev/null"];
const PATH: &str = "/p/%e6%B0%b4/?q=%2f";

fn injected(out: &Output, case: &str, prog: &str) {
    assert!(
        out.stderr_str().contains(&format!(
            "Info: Injected: LD_PRELOAD={SO} PCTNORM_CASE={case} (prog={prog})\n"
        )),
        "{out}"
    );
    assert_eq!(out.status, 0, "{out}");
}

#[test]
fn setuid_safexec_injects_the_shim_into_wget_and_curl() {
    let server = Server::start();
    // Default case is upper.
    let (out, lines) = run(&server, "0644", WGET, PATH, &[]);
    injected(&out, "upper", "wget");
    assert_eq!(lines, ["GET /p/%E6%B0%B4/?q=%2F HTTP/1.1"], "{out}");

    let (out, lines) = run(
        &server,
        "0644",
        CURL,
        PATH,
        &[("SAFEXEC_PCTNORM_CASE", "lower")],
    );
    injected(&out, "lower", "curl");
    assert_eq!(lines, ["GET /p/%e6%b0%b4/?q=%2f HTTP/1.1"], "{out}");

    // off: repaint from the command line (here: the URL's own case).
    let (out, lines) = run(
        &server,
        "0644",
        CURL,
        PATH,
        &[("SAFEXEC_PCTNORM_CASE", "off")],
    );
    injected(&out, "off", "curl");
    assert_eq!(lines, ["GET /p/%e6%B0%b4/?q=%2f HTTP/1.1"], "{out}");

    // A caller-supplied path that resolves to the compiled-in file is accepted; the canonical
    // path is what is exported.
    let (out, lines) = run(
        &server,
        "0644",
        WGET,
        PATH,
        &[("SAFEXEC_PCTNORM_SO", "/usr/lib/../lib/npp/libnpp_norm.so")],
    );
    injected(&out, "upper", "wget");
    assert_eq!(lines, ["GET /p/%E6%B0%B4/?q=%2F HTTP/1.1"], "{out}");
}

#[test]
fn setuid_safexec_never_injects_an_untrusted_or_disabled_shim() {
    let server = Server::start();
    let own = "GET /p/%e6%B0%b4/?q=%2f HTTP/1.1";
    // A caller-supplied copy elsewhere (root-owned, but not the compiled-in path).
    let copy = shim_copy().to_str().unwrap().to_string();
    let (out, lines) = run(
        &server,
        "0644",
        WGET,
        PATH,
        &[("SAFEXEC_PCTNORM_SO", &copy)],
    );
    assert!(
        out.stderr_str().contains(&format!(
            "Info: Not injecting LD_PRELOAD shim (unsafe or missing so: {copy})\n"
        )),
        "{out}"
    );
    assert!(!out.stderr_str().contains("Injected"), "{out}");
    assert_eq!(lines, [own], "{out}");

    // Disabled.
    let (out, lines) = run(&server, "0644", CURL, PATH, &[("SAFEXEC_PCTNORM", "0")]);
    assert!(
        out.stderr_str()
            .contains("Info: LD_PRELOAD shim disabled via SAFEXEC_PCTNORM=0\n"),
        "{out}"
    );
    assert_eq!(lines, [own], "{out}");

    // The compiled-in file itself, but group-writable: refused.
    let (out, lines) = run(&server, "0664", WGET, PATH, &[]);
    assert!(
        out.stderr_str()
            .contains("Info: Not injecting LD_PRELOAD shim"),
        "{out}"
    );
    assert_eq!(lines, [own], "{out}");
}
