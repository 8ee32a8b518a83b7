//! A tiny HTTP/1.1 test server (std threads, blocking I/O) that records the
//! raw request lines it receives, plus helpers to run the binary.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One received request.
#[derive(Debug, Clone)]
pub struct Req {
    /// The request line exactly as received, without CRLF.
    pub line: Vec<u8>,
    /// The request-target bytes.
    pub target: Vec<u8>,
    /// Header lines (name lower-cased, value trimmed).
    pub headers: Vec<(String, String)>,
}

impl Req {
    pub fn target_str(&self) -> String {
        String::from_utf8_lossy(&self.target).into_owned()
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == &name.to_ascii_lowercase())
            .map(|(_, v)| v.as_str())
    }
    pub fn path(&self) -> String {
        let t = self.target_str();
        t.split('?').next().unwrap_or("").to_string()
    }
}

/// A response.
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Sleep before answering.
    pub delay: Duration,
}

impl Resp {
    pub fn new(status: u16, body: impl Into<Vec<u8>>) -> Self {
        Resp {
            status,
            headers: Vec::new(),
            body: body.into(),
            delay: Duration::ZERO,
        }
    }
    pub fn html(body: impl Into<Vec<u8>>) -> Self {
        Resp::new(200, body).header("Content-Type", "text/html; charset=utf-8")
    }
    pub fn redirect(status: u16, location: &str) -> Self {
        Resp::new(status, "").header("Location", location)
    }
    pub fn header(mut self, n: &str, v: &str) -> Self {
        self.headers.push((n.to_string(), v.to_string()));
        self
    }
    pub fn delay(mut self, d: Duration) -> Self {
        self.delay = d;
        self
    }
}

pub type Handler = Arc<dyn Fn(&Req) -> Resp + Send + Sync>;

/// The server: bound to 127.0.0.1 on an ephemeral port; lives as long as the test.
pub struct Server {
    pub addr: SocketAddr,
    pub log: Arc<Mutex<Vec<Req>>>,
}

impl Server {
    /// Binds 127.0.0.1:0 and runs `conn` on its own thread for every accepted connection,
    /// with the shared request log.
    fn listen(conn: impl Fn(TcpStream, Arc<Mutex<Vec<Req>>>) + Send + Sync + 'static) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().unwrap();
        let log: Arc<Mutex<Vec<Req>>> = Arc::default();
        let log2 = log.clone();
        let conn = Arc::new(conn);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let (c, l) = (conn.clone(), log2.clone());
                std::thread::spawn(move || c(stream, l));
            }
        });
        Server { addr, log }
    }

    pub fn start(handler: impl Fn(&Req) -> Resp + Send + Sync + 'static) -> Server {
        let handler: Handler = Arc::new(handler);
        Server::listen(move |stream, log| serve_tcp(stream, handler.clone(), log))
    }

    /// An HTTPS server with the self-signed test certificate
    /// (CN/SAN `site.invalid` and 127.0.0.1).
    pub fn start_tls(handler: impl Fn(&Req) -> Resp + Send + Sync + 'static) -> Server {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data");
        let certs = vec![CertificateDer::from_pem_file(format!("{dir}/test-cert.pem")).unwrap()];
        let key = PrivateKeyDer::from_pem_file(format!("{dir}/test-key.pem")).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = Arc::new(
            rustls::ServerConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(certs, key)
                .unwrap(),
        );
        let handler: Handler = Arc::new(handler);
        Server::listen(move |stream, log| {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
            let conn = rustls::ServerConnection::new(config.clone()).unwrap();
            serve(rustls::StreamOwned::new(conn, stream), handler.clone(), log)
        })
    }

    /// An HTTP proxy that records request lines and tunnels every CONNECT
    /// to `upstream` (whatever host was asked for).
    pub fn start_connect_proxy(upstream: SocketAddr) -> Server {
        Server::listen(move |client, l| {
            let mut reader = BufReader::new(client.try_clone().unwrap());
            let mut line = Vec::new();
            if reader.read_until(b'\n', &mut line).unwrap_or(0) == 0 {
                return;
            }
            while line.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                line.pop();
            }
            let mut headers = Vec::new();
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h).unwrap_or(0) == 0 {
                    return;
                }
                let h = h.trim_end().to_string();
                if h.is_empty() {
                    break;
                }
                if let Some((n, v)) = h.split_once(':') {
                    headers.push((n.trim().to_ascii_lowercase(), v.trim().to_string()));
                }
            }
            let target = line.split(|b| *b == b' ').nth(1).unwrap_or(&[]).to_vec();
            l.lock().unwrap().push(Req {
                line: line.clone(),
                target,
                headers,
            });
            let mut client = client;
            if !line.starts_with(b"CONNECT ") {
                let _ = client
                    .write_all(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n");
                return;
            }
            let up = TcpStream::connect(upstream).unwrap();
            let _ = client.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n");
            let (mut c2, mut u2) = (client.try_clone().unwrap(), up.try_clone().unwrap());
            // Bytes the BufReader already pulled from the client.
            let pending = reader.buffer().to_vec();
            let mut up_w = up;
            let _ = up_w.write_all(&pending);
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut u2, &mut c2);
            });
            let _ = std::io::copy(&mut reader.into_inner(), &mut up_w);
        })
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn requests(&self) -> Vec<Req> {
        self.log.lock().unwrap().clone()
    }

    /// Request targets in arrival order, without the `/robots.txt` read for its `Sitemap:`
    /// lines (every recursive run asks for it first).
    pub fn targets(&self) -> Vec<String> {
        self.all_targets()
            .into_iter()
            .filter(|t| t != "/robots.txt" && !t.ends_with("/robots.txt"))
            .collect()
    }

    /// Every request target in arrival order.
    pub fn all_targets(&self) -> Vec<String> {
        self.requests().iter().map(Req::target_str).collect()
    }
}

fn serve_tcp(stream: TcpStream, handler: Handler, log: Arc<Mutex<Vec<Req>>>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let _ = stream.set_nodelay(true);
    serve(stream, handler, log)
}

fn serve<S: Read + Write>(stream: S, handler: Handler, log: Arc<Mutex<Vec<Req>>>) {
    let mut reader = BufReader::new(stream);
    loop {
        let mut line = Vec::new();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        while line.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
            line.pop();
        }
        let mut headers = Vec::new();
        loop {
            let mut h = Vec::new();
            if reader.read_until(b'\n', &mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = String::from_utf8_lossy(&h).trim_end().to_string();
            if h.is_empty() {
                break;
            }
            if let Some((n, v)) = h.split_once(':') {
                headers.push((n.trim().to_ascii_lowercase(), v.trim().to_string()));
            }
        }
        let parts: Vec<&[u8]> = line.split(|b| *b == b' ').collect();
        let target = parts.get(1).map(|t| t.to_vec()).unwrap_or_default();
        let req = Req {
            line: line.clone(),
            target,
            headers,
        };
        log.lock().unwrap().push(req.clone());
        let resp = handler(&req);
        if !resp.delay.is_zero() {
            std::thread::sleep(resp.delay);
        }
        let mut out = format!(
            "HTTP/1.1 {} {}\r\nContent-Length: {}\r\n",
            resp.status,
            reason(resp.status),
            resp.body.len()
        );
        for (n, v) in &resp.headers {
            out.push_str(&format!("{n}: {v}\r\n"));
        }
        out.push_str("\r\n");
        // One write: a header/body split would meet Nagle + delayed ACK.
        let mut bytes = out.into_bytes();
        bytes.extend_from_slice(&resp.body);
        let w = reader.get_mut();
        if w.write_all(&bytes).is_err() {
            return;
        }
        let _ = w.flush();
        if req.header("connection") == Some("close") {
            return;
        }
    }
}

fn reason(s: u16) -> &'static str {
    match s {
        200 => "OK",
        301 => "Moved Permanently",
        302 => "Found",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Other",
    }
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_cache-preload")
}

/// Run the binary with `args` (argv[0] = cache-preload) and a clean,
/// deterministic environment.
pub fn run(args: &[&str]) -> Output {
    run_env(args, &[])
}

pub fn run_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(bin());
    c.args(args)
        .env_clear()
        .env("TZ", "UTC")
        .env("LANG", "C")
        .stdin(Stdio::null());
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("run cache-preload")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The fixed first arguments of NPP's command B (npp-usage.md §1.7), shared by every crate's tests.
const NPP_PRELOAD_FIXED: &str = include_str!("../../../tests/fixtures/npp-preload-fixed.args");

/// NPP command B (npp-usage.md §1.7) for `url`, with `extra` flags before `--`.
pub fn npp_command_b<'a>(extra: &[&'a str], url: &'a str) -> Vec<&'a str> {
    let mut v: Vec<&'a str> = NPP_PRELOAD_FIXED.lines().collect();
    v.extend_from_slice(&[
        "-e",
        "use_proxy=no",
        "-e",
        "http_proxy=http://127.0.0.1:3434",
        "-e",
        "https_proxy=http://127.0.0.1:3434",
        "-P",
        "/tmp",
        "--limit-rate=5120k",
        "--wait=0",
        "--reject-regex=/wp-admin/|/feed/",
        "--reject=*.css,*.js,*.png",
        "--domains=127.0.0.1",
        "--header=Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
        "--user-agent=Mozilla/5.0 (Windows NT 10.0; Win64; x64) NPP-test",
    ]);
    v.extend_from_slice(extra);
    v.push("--");
    v.push(url);
    v
}

pub fn read_all(mut r: impl Read) -> String {
    let mut s = String::new();
    let _ = r.read_to_string(&mut s);
    s
}
