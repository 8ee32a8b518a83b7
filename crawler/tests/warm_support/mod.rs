//! A tiny in-process HTTP/1.1 server that imitates nginx's FastCGI cache for the warm tests:
//! MISS on first request for a key then HIT, `Vary` handling, Set-Cookie / private / BYPASS
//! pages, a redirect, and an optional 429 limiter on requests in flight. Loopback only.

#![allow(dead_code)]

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

/// One request as the server saw it.
#[derive(Clone, Debug)]
pub struct Seen {
    /// The raw request target.
    pub target: String,
    /// Headers, names lower-cased.
    pub headers: HashMap<String, String>,
    /// The status answered.
    pub status: u16,
}

/// Behaviour switches.
#[derive(Clone, Debug, Default)]
pub struct SiteOptions {
    /// Number of plain pages /p/0/ … linked from /.
    pub pages: usize,
    /// Add the special pages (cookie, private, bypass, vary, redirect) to /.
    pub specials: bool,
    /// Answer 429 (Retry-After: 0) when more than this many requests are in flight.
    pub max_in_flight: Option<usize>,
    /// Delay before answering each request.
    pub delay: Duration,
    /// Extra raw request targets linked from / (exact bytes).
    pub extra_links: Vec<String>,
    /// `/vary/` sends `Vary: Accept-Encoding` but is stored under one key, as nginx does with
    /// `fastcgi_ignore_headers Vary` while its own `gzip_vary on` adds the header.
    pub vary_ignored: bool,
}

/// The server's shared state.
#[derive(Debug, Default)]
pub struct State {
    /// Every request, in arrival order.
    pub log: Mutex<Vec<Seen>>,
    /// Cache keys "stored".
    pub stored: Mutex<HashSet<String>>,
    in_flight: AtomicUsize,
    /// Highest number of requests in flight at once.
    pub max_seen_in_flight: AtomicUsize,
    /// 429s answered.
    pub throttled: AtomicUsize,
    stop: AtomicBool,
}

/// A running server.
pub struct Server {
    /// Its address.
    pub addr: SocketAddr,
    /// Shared state.
    pub state: Arc<State>,
}

impl Server {
    /// Starts a server on `ip`:0 (or `ip`:`port`).
    pub fn start(ip: &str, port: u16, opts: SiteOptions) -> Server {
        let listener = TcpListener::bind((ip, port)).expect("bind loopback");
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(State::default());
        let st = state.clone();
        let opts = Arc::new(opts);
        thread::spawn(move || {
            for stream in listener.incoming() {
                if st.stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let st = st.clone();
                let opts = opts.clone();
                thread::spawn(move || serve(stream, &st, &opts));
            }
        });
        Server { addr, state }
    }

    /// Base URL `http://ip:port/`.
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// Requests seen so far.
    pub fn log(&self) -> Vec<Seen> {
        self.state.log.lock().unwrap().clone()
    }

    /// How many requests had this exact target.
    pub fn hits_on(&self, target: &str) -> usize {
        self.log().iter().filter(|s| s.target == target).count()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
    }
}

fn serve(stream: TcpStream, st: &State, opts: &SiteOptions) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let (_method, target) = (
            parts.next().unwrap_or(""),
            parts.next().unwrap_or("").to_owned(),
        );
        let mut headers = HashMap::new();
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
            }
        }
        let now = st.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        st.max_seen_in_flight.fetch_max(now, Ordering::SeqCst);
        thread::sleep(opts.delay);
        let (status, extra, body) = respond(&target, &headers, st, opts, now);
        st.in_flight.fetch_sub(1, Ordering::SeqCst);
        st.log.lock().unwrap().push(Seen {
            target: target.clone(),
            headers,
            status,
        });
        let reason = match status {
            200 => "OK",
            301 => "Moved Permanently",
            404 => "Not Found",
            429 => "Too Many Requests",
            _ => "Other",
        };
        let mut resp = format!("HTTP/1.1 {status} {reason}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\n", body.len());
        for (k, v) in extra {
            resp.push_str(&format!("{k}: {v}\r\n"));
        }
        resp.push_str("\r\n");
        if writer.write_all(resp.as_bytes()).is_err() || writer.write_all(body.as_bytes()).is_err()
        {
            return;
        }
        let _ = writer.flush();
    }
}

fn respond(
    target: &str,
    headers: &HashMap<String, String>,
    st: &State,
    opts: &SiteOptions,
    in_flight: usize,
) -> (u16, Vec<(String, String)>, String) {
    let mut extra: Vec<(String, String)> = Vec::new();
    if let Some(max) = opts.max_in_flight {
        if in_flight > max {
            st.throttled.fetch_add(1, Ordering::SeqCst);
            extra.push(("Retry-After".into(), "0".into()));
            return (429, extra, "slow down".into());
        }
    }
    let path = target.split('?').next().unwrap_or("");
    let ae = headers.get("accept-encoding").cloned().unwrap_or_default();
    // nginx stores a key unless the response is uncacheable; Vary adds the header value.
    let mut cacheable = true;
    let mut key = target.to_owned();
    let mut status = 200;
    let body;
    match path {
        "/" => {
            let mut links = String::new();
            for i in 0..opts.pages {
                links.push_str(&format!("<a href=\"/p/{i}/\">p{i}</a>\n"));
            }
            if opts.specials {
                for s in ["/cookie/", "/private/", "/bypass/", "/vary/", "/redirect/"] {
                    links.push_str(&format!("<a href=\"{s}\">{s}</a>\n"));
                }
            }
            for l in &opts.extra_links {
                links.push_str(&format!("<a href=\"{l}\">x</a>\n"));
            }
            body = format!("<!doctype html><html><body>{links}</body></html>");
        }
        "/cookie/" => {
            extra.push(("Set-Cookie".into(), "session=abc; Path=/".into()));
            cacheable = false;
            body = "<html><body>cookie</body></html>".into();
        }
        "/private/" => {
            extra.push(("Cache-Control".into(), "private, max-age=0".into()));
            cacheable = false;
            body = "<html><body>private</body></html>".into();
        }
        "/vary/" => {
            extra.push(("Vary".into(), "Accept-Encoding".into()));
            if !opts.vary_ignored {
                key = format!("{target}|{ae}");
            }
            body = "<html><body>vary</body></html>".into();
        }
        "/redirect/" => {
            status = 301;
            extra.push(("Location".into(), "/p/0/".into()));
            body = String::new();
        }
        "/bypass/" => {
            extra.push(("X-FastCGI-Cache".into(), "BYPASS".into()));
            return (200, extra, "<html><body>bypass</body></html>".into());
        }
        p if p.starts_with("/p/") || p.starts_with("/k/") => {
            body = format!("<html><body>{p}</body></html>");
        }
        _ => {
            return (404, extra, "nope".into());
        }
    }
    let hit = {
        let mut stored = st.stored.lock().unwrap();
        if stored.contains(&key) {
            true
        } else {
            if cacheable {
                stored.insert(key);
            }
            false
        }
    };
    extra.push((
        "X-FastCGI-Cache".into(),
        if hit { "HIT" } else { "MISS" }.into(),
    ));
    (status, extra, body)
}

/// Path of the binary under test.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_cache-preload"))
}

/// Runs the binary with `args`, English output, a 60 s guard.
pub fn run(args: &[&str]) -> Output {
    let mut child = Command::new(bin())
        .args(args)
        .env("LC_ALL", "C")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn cache-preload");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "cache-preload ran over 60 s: {args:?}"
        );
        thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

/// stdout + stderr as text.
pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A fresh temp dir for one test.
pub fn tempdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("warm-it-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}
