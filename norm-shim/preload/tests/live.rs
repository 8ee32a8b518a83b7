//! libnpp_norm.so under LD_PRELOAD in the real GNU Wget and curl from Debian, against a loopback
//! server that records the raw request bytes, over plain HTTP and over TLS (a throwaway
//! certificate made with the `openssl` CLI at test time). Plus a small std-only client compiled
//! at test time for what wget and curl never do: split writes, writev, and writes to files and
//! pipes.
//!
//! Missing wget, curl, openssl or rustc make these tests fail, never skip.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// The freshly built library (next to the test's `deps` directory).
fn shim() -> PathBuf {
    static SO: OnceLock<PathBuf> = OnceLock::new();
    SO.get_or_init(|| {
        let exe = std::env::current_exe().unwrap();
        let dir = exe.parent().and_then(Path::parent).unwrap();
        let so = dir.join("libnpp_norm.so");
        // Always ask cargo: `cargo test` does not refresh the cdylib itself, and a stale copy
        // would test yesterday's library. A fresh one makes this a no-op.
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let st = Command::new(cargo)
            .args(["build", "--quiet", "-p", "npp-norm"])
            .status()
            .unwrap();
        assert!(st.success(), "cargo build -p npp-norm failed");
        assert!(so.exists(), "{} not built", so.display());
        so
    })
    .clone()
}

fn tool(name: &str) -> &'static str {
    let path: &'static str = match name {
        "wget" => "/usr/bin/wget",
        "curl" => "/usr/bin/curl",
        "openssl" => "/usr/bin/openssl",
        _ => unreachable!(),
    };
    assert!(
        Path::new(path).exists(),
        "{path} is missing: install Debian's {name} (scripts/install-deps.sh)"
    );
    path
}

fn scratch() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = std::env::temp_dir().join(format!("npp-norm-live-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    })
    .clone()
}

/// Records every request head (bytes up to and including the blank line) it receives.
struct Server {
    addr: SocketAddr,
    heads: Arc<Mutex<Vec<Vec<u8>>>>,
}

const BODY: &[u8] = b"ok";

/// Serves requests on one connection until the client closes it (keep-alive).
fn handle<S: Read + Write>(mut s: S, heads: &Mutex<Vec<Vec<u8>>>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
            match s.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
            continue;
        };
        let head: Vec<u8> = buf.drain(..end + 4).collect();
        heads.lock().unwrap().push(head);
        let resp = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n",
            BODY.len()
        );
        if s.write_all(resp.as_bytes()).is_err() || s.write_all(BODY).is_err() {
            return;
        }
        let _ = s.flush();
    }
}

impl Server {
    fn start(tls: Option<Arc<rustls::ServerConfig>>) -> Server {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let heads: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
        let h = heads.clone();
        std::thread::spawn(move || {
            for c in l.incoming().flatten() {
                let _ = c.set_read_timeout(Some(Duration::from_secs(20)));
                let (h, tls) = (h.clone(), tls.clone());
                std::thread::spawn(move || match tls {
                    None => handle(c, &h),
                    Some(cfg) => {
                        let conn = rustls::ServerConnection::new(cfg).unwrap();
                        let mut s = rustls::StreamOwned::new(conn, c);
                        handle(&mut s, &h);
                        s.conn.send_close_notify();
                        let _ = s.flush();
                    }
                });
            }
        });
        Server { addr, heads }
    }

    /// The request lines received so far (without CRLF).
    fn lines(&self) -> Vec<Vec<u8>> {
        self.heads
            .lock()
            .unwrap()
            .iter()
            .map(|h| {
                h.split(|&b| b == b'\n')
                    .next()
                    .unwrap()
                    .strip_suffix(b"\r")
                    .unwrap_or(h)
                    .to_vec()
            })
            .collect()
    }

    fn take(&self) -> Vec<Vec<u8>> {
        let l = self.lines();
        self.heads.lock().unwrap().clear();
        l
    }
}

/// A self-signed certificate for 127.0.0.1, made with the openssl CLI, as DER.
fn tls_config() -> Arc<rustls::ServerConfig> {
    static CFG: OnceLock<Arc<rustls::ServerConfig>> = OnceLock::new();
    CFG.get_or_init(|| {
        let d = scratch();
        let (key, cert, der_key) = (d.join("key.pem"), d.join("cert.der"), d.join("key.der"));
        let ok = Command::new(tool("openssl"))
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            ])
            .args([
                "-subj",
                "/CN=127.0.0.1",
                "-addext",
                "subjectAltName=IP:127.0.0.1",
            ])
            .args(["-outform", "DER", "-keyout"])
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .output()
            .unwrap();
        assert!(
            ok.status.success(),
            "openssl req: {}",
            String::from_utf8_lossy(&ok.stderr)
        );
        let ok = Command::new(tool("openssl"))
            .args(["pkcs8", "-topk8", "-nocrypt", "-outform", "DER", "-in"])
            .arg(&key)
            .arg("-out")
            .arg(&der_key)
            .output()
            .unwrap();
        assert!(
            ok.status.success(),
            "openssl pkcs8: {}",
            String::from_utf8_lossy(&ok.stderr)
        );
        let certs = vec![rustls::pki_types::CertificateDer::from(
            std::fs::read(&cert).unwrap(),
        )];
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(std::fs::read(&der_key).unwrap().into());
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        Arc::new(
            rustls::ServerConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(certs, key)
                .unwrap(),
        )
    })
    .clone()
}

#[derive(Clone, Copy, Debug)]
enum Client {
    Wget,
    Curl,
}

/// Runs the client once for `url`; `case` None = no LD_PRELOAD.
fn fetch(client: Client, url: &str, case: Option<&str>) {
    let mut cmd = match client {
        Client::Wget => {
            let mut c = Command::new(tool("wget"));
            c.args([
                "-q",
                "-O",
                "/dev/null",
                "--no-check-certificate",
                "--tries=1",
            ]);
            c.args(["--timeout=20", "--no-hsts"]);
            c
        }
        Client::Curl => {
            let mut c = Command::new(tool("curl"));
            // h2 has no request line: no shim can see it (force HTTP/1.1 over TLS).
            c.args([
                "-s",
                "-S",
                "-k",
                "--http1.1",
                "-o",
                "/dev/null",
                "--max-time",
                "20",
            ]);
            c
        }
    };
    // wget's IRI code re-escapes existing triplets unless the locale is UTF-8 (§A ran in C.UTF-8).
    cmd.arg(url)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", scratch())
        .env("LC_ALL", "C.UTF-8");
    if let Some(case) = case {
        cmd.env("LD_PRELOAD", shim());
        if !case.is_empty() {
            cmd.env("PCTNORM_CASE", case);
        }
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{client:?} {url} ({case:?}) failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn line_of(server: &Server, client: Client, url: &str, case: Option<&str>) -> String {
    server.take();
    fetch(client, url, case);
    let lines = server.take();
    assert_eq!(lines.len(), 1, "{client:?} {url}: {lines:?}");
    String::from_utf8_lossy(&lines[0]).into_owned()
}

/// The target of a request line.
fn target(line: &str) -> &str {
    line.split(' ').nth(1).unwrap()
}

fn servers() -> [(&'static str, Server); 2] {
    [
        ("http", Server::start(None)),
        ("https", Server::start(Some(tls_config()))),
    ]
}

/// norm-spec §6.3 vectors that concern a request-target's triplets (2, 3, 4, 5, 6, 11, 13, 14,
/// 18, 21) and §A E1/E3: with `upper`/`lower`, the target is exactly the client's own target
/// with every valid triplet re-cased, nothing else.
#[test]
fn upper_and_lower_recase_exactly_the_clients_own_target() {
    let paths = [
        "/product/%e6%b0%b4%e6%bb%b4%e8%bd%ae%e9%94%bb%e7%a2%b3/",
        "/product/%e6%B0%b4/",
        "/a%2fb/%2F/c",
        "/search?q=a+b&r=a%2Bb&t=%e6%b0%b4",
        "/a/%zz/%/b%aF%?x=%&y=%e6",
        "/a%41b/%7e/~/%2D",
        "/p?q=%27%22%3c%3e",
        "/p?",
        "/emoji/%f0%9f%98%80",
        "/%00/x",
        "/product/%e6%b0%b4%E8%BD%ae/?q=%e6%b0%b4&p=%2f&s=a+b",
    ];
    for (scheme, server) in servers() {
        for client in [Client::Wget, Client::Curl] {
            for p in paths {
                let url = format!("{scheme}://{}{p}", server.addr);
                let own = line_of(&server, client, &url, None);
                let up = line_of(&server, client, &url, Some("upper"));
                let low = line_of(&server, client, &url, Some("LOWER"));
                let dflt = line_of(&server, client, &url, Some(""));
                let ctx = format!("{client:?} {scheme} {p}: own {own:?}");
                assert_eq!(up.len(), own.len(), "{ctx}");
                assert_eq!(
                    target(&up),
                    norm_shim::upper_triplets(target(&own)),
                    "{ctx}"
                );
                assert_eq!(
                    target(&low),
                    norm_shim::lower_triplets(target(&own)),
                    "{ctx}"
                );
                assert_eq!(dflt, up, "unset/empty PCTNORM_CASE is upper: {ctx}");
                // Everything but the target is the client's own.
                let rest = |l: &str| l.split(' ').skip(2).collect::<Vec<_>>().join(" ");
                assert_eq!(rest(&up), rest(&own), "{ctx}");
                assert!(own.starts_with("GET "), "{ctx}");
            }
        }
    }
}

/// norm-spec §A E1 and E6 literally: the shim's output on the wire.
#[test]
fn spec_examples_on_the_wire() {
    for (scheme, server) in servers() {
        let url = format!(
            "{scheme}://{}/product/%e6%b0%b4%E8%BD%ae/?q=%e6%b0%b4&p=%2f&s=a+b",
            server.addr
        );
        assert_eq!(
            line_of(&server, Client::Wget, &url, Some("upper")),
            "GET /product/%E6%B0%B4%E8%BD%AE/?q=%E6%B0%B4&p=%2F&s=a+b HTTP/1.1"
        );
        assert_eq!(
            line_of(&server, Client::Wget, &url, Some("lower")),
            "GET /product/%e6%b0%b4%e8%bd%ae/?q=%e6%b0%b4&p=%2f&s=a+b HTTP/1.1"
        );
        // E6: curl leaves raw UTF-8 in the query; the shim does not touch raw bytes.
        let url = format!(
            "{scheme}://{}/product/水滴/%e8%bd%ae/?q=水&p=%2f",
            server.addr
        );
        assert_eq!(
            line_of(&server, Client::Curl, &url, Some("upper")),
            "GET /product/%E6%B0%B4%E6%BB%B4/%E8%BD%AE/?q=水&p=%2F HTTP/1.1"
        );
    }
}

/// §2.2 / E4: `off` repaints positionally from the command-line URL; an unknown value is `off`.
#[test]
fn off_and_unknown_values_repaint_from_the_command_line() {
    for (scheme, server) in servers() {
        let url = format!("{scheme}://{}/product/水滴/%e8%bd%ae/?q=水 x", server.addr);
        let own = line_of(&server, Client::Wget, &url, None);
        assert_eq!(
            own,
            "GET /product/%E6%B0%B4%E6%BB%B4/%e8%bd%ae/?q=%E6%B0%B4%20x HTTP/1.1"
        );
        for case in ["off", "OFF", "preserve", "bogus"] {
            assert_eq!(
                line_of(&server, Client::Wget, &url, Some(case)),
                "GET /product/%e6%b0%b4%E6%BB%B4/%e8%bd%ae/?q=%E6%B0%B4%20x HTTP/1.1",
                "{scheme} {case}"
            );
        }
        // The argv URL's own case comes back even where the client would change it:
        // the first triplet is upper-case on the command line.
        let url = format!("{scheme}://{}/m/%E6%b0%b4/", server.addr);
        for client in [Client::Wget, Client::Curl] {
            assert_eq!(
                line_of(&server, client, &url, Some("off")),
                "GET /m/%E6%b0%b4/ HTTP/1.1",
                "{client:?} {scheme}"
            );
            assert_eq!(
                line_of(&server, client, &url, Some("upper")),
                "GET /m/%E6%B0%B4/ HTTP/1.1"
            );
        }
    }
}

const HELPER: &str = r#"
use std::io::{Read, Write};
use std::os::fd::{FromRawFd, IntoRawFd};
fn main() {
    let a: Vec<String> = std::env::args().collect();
    let how = a[1].as_str();
    let chunks: Vec<Vec<u8>> = a[3..].iter().map(|c| c.replace("\\r", "\r").replace("\\n", "\n").into_bytes()).collect();
    match how {
        "file" => {
            let mut f = std::fs::File::create(&a[2]).unwrap();
            for c in &chunks { f.write_all(c).unwrap(); }
        }
        "pipe" => {
            let mut f = unsafe { std::fs::File::from_raw_fd(1) };
            for c in &chunks { f.write_all(c).unwrap(); }
        }
        _ => {
            let s = std::net::TcpStream::connect(&a[2]).unwrap();
            let mut r = s.try_clone().unwrap();
            match how {
                // TcpStream::write is send(2)
                "send" => { let mut s = s; for c in &chunks { s.write_all(c).unwrap(); std::thread::sleep(std::time::Duration::from_millis(20)); } }
                // a File over the socket is write(2)
                "write" => { let mut f = unsafe { std::fs::File::from_raw_fd(s.into_raw_fd()) }; for c in &chunks { f.write_all(c).unwrap(); } std::mem::forget(f); }
                // all chunks in one writev(2), continued after short counts
                "writev" => {
                    let mut s = s;
                    let all: Vec<u8> = chunks.concat();
                    let mut done = 0;
                    while done < all.len() {
                        let mut off = done;
                        let mut v = Vec::new();
                        let mut at = 0;
                        for c in &chunks { let end = at + c.len(); if end > off { v.push(std::io::IoSlice::new(&c[off - at..])); off = end; } at = end; }
                        done += s.write_vectored(&v).unwrap();
                    }
                }
                _ => panic!("mode"),
            }
            let _ = r.shutdown(std::net::Shutdown::Write);
            let mut out = Vec::new();
            let _ = r.read_to_end(&mut out);
        }
    }
}
"#;

fn helper() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let d = scratch();
        let src = d.join("client.rs");
        std::fs::write(&src, HELPER).unwrap();
        let bin = d.join("client");
        let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
        let out = Command::new(rustc)
            .args(["--edition", "2021", "-O", "-o"])
            .arg(&bin)
            .arg(&src)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "rustc: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        bin
    })
    .clone()
}

fn run_helper(args: &[&str], case: &str) -> Vec<u8> {
    let out = Command::new(helper())
        .args(args)
        .env_clear()
        .env("LD_PRELOAD", shim())
        .env("PCTNORM_CASE", case)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "helper {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// §7.4 / E5: a request line split over several writes (send, write, writev) is re-cased whole,
/// including splits inside a triplet and inside the method.
#[test]
fn split_request_lines_are_assembled() {
    let server = Server::start(None);
    let addr = server.addr.to_string();
    let splits: [&[&str]; 4] = [
        &["GET /p/%e6%b0%b4 HTTP/1.1\\r\\n", "Host: x\\r\\n\\r\\n"],
        &["GET /p/%e", "6%b0%b4 HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n"],
        &[
            "G",
            "ET /p/",
            "%",
            "e6%b",
            "0%b4 HTTP/1.",
            "1\\r",
            "\\nHost: x\\r\\n\\r\\n",
        ],
        &["GET /p/%e6%b0%b4 HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n"],
    ];
    for how in ["send", "write", "writev"] {
        for chunks in splits {
            server.take();
            let mut args = vec![how, addr.as_str()];
            args.extend_from_slice(chunks);
            run_helper(&args, "upper");
            let heads = server.heads.lock().unwrap().clone();
            assert_eq!(
                heads,
                vec![b"GET /p/%E6%B0%B4 HTTP/1.1\r\nHost: x\r\n\r\n".to_vec()],
                "{how} {chunks:?}"
            );
        }
    }
}

/// §7.5 / E9: bytes written to a regular file or a pipe are never changed.
#[test]
fn files_and_pipes_are_never_touched() {
    let line = "GET /x%2fy%e6 HTTP/1.1\\r\\n";
    let want = b"GET /x%2fy%e6 HTTP/1.1\r\n".to_vec();
    let f = scratch().join("out.txt");
    run_helper(&["file", f.to_str().unwrap(), line], "upper");
    assert_eq!(std::fs::read(&f).unwrap(), want);
    run_helper(
        &[
            "file",
            f.to_str().unwrap(),
            "GET /x%2f",
            "y%e6 HTTP/1.1\\r\\n",
        ],
        "upper",
    );
    assert_eq!(std::fs::read(&f).unwrap(), want);
    assert_eq!(run_helper(&["pipe", "-", line], "upper"), want);
    // wget saving a body that looks like a request line.
    let server = Server::start(None);
    let out = scratch().join("wget-body");
    let st = Command::new(tool("wget"))
        .args(["-q", "-O"])
        .arg(&out)
        .arg(format!("http://{}/%aa", server.addr))
        .env_clear()
        .env("LD_PRELOAD", shim())
        .status()
        .unwrap();
    assert!(st.success());
    assert_eq!(std::fs::read(&out).unwrap(), BODY);
    assert_eq!(server.lines(), vec![b"GET /%AA HTTP/1.1".to_vec()]);
}

/// A recursive wget (keep-alive, many requests on one connection) gets every request re-cased
/// (§A E10).
#[test]
fn every_request_of_a_keep_alive_connection_is_recased() {
    let server = Server::start(None);
    for case in ["upper", "lower"] {
        server.take();
        for _ in 0..3 {
            fetch(
                Client::Curl,
                &format!("http://{}/k/%e6%B0%b4/", server.addr),
                Some(case),
            );
        }
        let want = if case == "upper" {
            "/k/%E6%B0%B4/"
        } else {
            "/k/%e6%b0%b4/"
        };
        for l in server.take() {
            assert_eq!(target(&String::from_utf8_lossy(&l)), want);
        }
    }
    // Three URLs in one curl process: one connection, three requests.
    server.take();
    let u = |p: &str| format!("http://{}{p}", server.addr);
    let out = Command::new(tool("curl"))
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-o",
            "/dev/null",
            "-o",
            "/dev/null",
        ])
        .args([u("/a/%e6"), u("/b/%aB"), u("/c/%2f")])
        .env_clear()
        .env("LD_PRELOAD", shim())
        .env("PCTNORM_CASE", "upper")
        .output()
        .unwrap();
    assert!(out.status.success());
    let mut got: Vec<String> = server
        .take()
        .iter()
        .map(|l| String::from_utf8_lossy(l).into_owned())
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            "GET /a/%E6 HTTP/1.1",
            "GET /b/%AB HTTP/1.1",
            "GET /c/%2F HTTP/1.1"
        ]
    );
}

/// `nm -D`: the library exports the interposed functions and nothing else.
#[test]
fn exports_exactly_the_interposed_symbols() {
    let out = Command::new("nm")
        .args(["-D", "--defined-only"])
        .arg(shim())
        .output()
        .expect("nm (binutils)");
    assert!(out.status.success());
    let mut names: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2).map(str::to_string))
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "SSL_write",
            "SSL_write_ex",
            "gnutls_record_send",
            "send",
            "sendmsg",
            "sendto",
            "write",
            "writev"
        ]
    );
}
