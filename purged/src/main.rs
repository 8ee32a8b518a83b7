//! `cache-purged`: the purge service. Runs as the cache owner (never root), started by systemd
//! socket activation, exits when idle. See purged/PROTOCOL.md for the wire protocols.
#![deny(unsafe_code)]

mod activation;
mod engine;
mod error;
mod http;
mod peer;
mod preload;
mod proto;
mod queue;
mod server;
mod sites;
mod spinup;
mod warm;

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use error::Error;

const USAGE: &str = "\
usage: cache-purged [options]

Purge service for nginx page caches (see PROTOCOL.md). Runs as the cache owner, never as root.
Sockets come from systemd (LISTEN_FDS; a Unix socket, and a TCP socket named `spinupwp` for
the SpinupWP protocol) or from --socket/--spinupwp.

  --config FILE          site list (cache_root lines) [/etc/safexec.conf]
  --socket PATH          listen on this Unix socket (mode 0666) when not socket-activated
  --spinupwp ADDR        serve SpinupWP's protocol on this loopback TCP address (off by default)
  --idle-exit SECS       exit after SECS without connections or work; 0 = never [60]
  --variants SET         re-warm variants: desktop, mobile or both [both]
  --connect-to HOST=ADDR send re-warm requests for HOST to ADDR (IP:PORT); repeatable
  --warm-direct          resolve other hosts normally (default: re-warm through 127.0.0.1 at
                         the URL's port, the local nginx; the unit allows only loopback)
  --no-warm              never re-request purged pages
  --index-dir DIR        keep cache-purge's key indexes there (must be writable; the unit's
                         ReadWritePaths= then needs it too); default: none, variants by scan
  --refresh-header NAME  header that makes nginx bypass and replace an entry [X-Cache-Purged-Refresh]
  --window-ms N          coalescing window [5]
  --max-jobs N           distinct queued jobs before requests are refused [20000]
  --max-site-jobs N      distinct queued jobs of one site [5000]
  --workers N            purge workers [4]
  --warmers N            background re-warm workers [4]
  --max-conns N          open connections [512]; per caller uid: a quarter
  --preload-bin PATH     preload command the service runs itself (e.g. /usr/bin/cache-preload)
  --preload-arg ARG      an argument of it, {url} = the site's base URL; repeatable
                         [{url}/ --sitemap {url}/sitemap.xml]
  --send JSON            client mode: send one request to --socket [/run/cache-purged/purged.sock],
                         print the answer; exit 0 when it says ok (the timer units use it)
  --help, --version";

struct Options {
    config: PathBuf,
    socket: Option<PathBuf>,
    spinupwp: Option<SocketAddr>,
    idle_exit: u64,
    variants: warm::Variants,
    connect_to: Vec<(String, SocketAddr)>,
    warm_direct: bool,
    warm: bool,
    refresh_header: String,
    limits: queue::Limits,
    workers: usize,
    warmers: usize,
    max_conns: usize,
    preload_bin: Option<PathBuf>,
    preload_args: Vec<String>,
    send: Option<String>,
    index_dir: Option<PathBuf>,
}

fn parse_args(args: Vec<String>) -> Result<Option<Options>, Error> {
    let mut o = Options {
        config: PathBuf::from(safexec_conf::DEFAULT_PATH),
        socket: None,
        spinupwp: None,
        idle_exit: 60,
        variants: warm::Variants::Both,
        connect_to: Vec::new(),
        warm_direct: false,
        warm: true,
        refresh_header: "X-Cache-Purged-Refresh".into(),
        limits: queue::Limits::default(),
        workers: 4,
        warmers: 4,
        max_conns: 512,
        preload_bin: None,
        preload_args: Vec::new(),
        send: None,
        index_dir: None,
    };
    let mut it = args.into_iter();
    let num = |name: &str, v: Option<String>| -> Result<u64, Error> {
        v.as_deref()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| Error::Usage(format!("{name} needs a number")))
    };
    while let Some(a) = it.next() {
        let (name, inline) = match a.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n.to_owned(), Some(v.to_owned())),
            _ => (a.clone(), None),
        };
        let mut val = || inline.clone().or_else(|| it.next());
        match name.as_str() {
            "--help" | "-h" => {
                println!("{USAGE}");
                return Ok(None);
            }
            "--version" => {
                println!("cache-purged {}", env!("CARGO_PKG_VERSION"));
                return Ok(None);
            }
            "--config" => {
                o.config = val()
                    .ok_or_else(|| Error::Usage("--config needs a file".into()))?
                    .into()
            }
            "--socket" => {
                o.socket = Some(
                    val()
                        .ok_or_else(|| Error::Usage("--socket needs a path".into()))?
                        .into(),
                )
            }
            "--spinupwp" => {
                let v = val().unwrap_or_default();
                let addr: SocketAddr = v
                    .parse()
                    .map_err(|_| Error::Usage(format!("--spinupwp needs IP:PORT, not {v:?}")))?;
                if !addr.ip().is_loopback() {
                    return Err(Error::Usage("--spinupwp must be a loopback address".into()));
                }
                o.spinupwp = Some(addr);
            }
            "--idle-exit" => o.idle_exit = num(&name, val())?,
            "--variants" => {
                let v = val().unwrap_or_default();
                o.variants = warm::parse_variants(&v).ok_or_else(|| {
                    Error::Usage(format!("--variants: desktop, mobile or both, not {v:?}"))
                })?;
            }
            "--connect-to" => {
                let v = val().unwrap_or_default();
                let (h, a) = v.split_once('=').ok_or_else(|| {
                    Error::Usage(format!("--connect-to needs HOST=IP:PORT, not {v:?}"))
                })?;
                let addr = a
                    .parse()
                    .map_err(|_| Error::Usage(format!("--connect-to: bad address {a:?}")))?;
                o.connect_to.push((h.to_ascii_lowercase(), addr));
            }
            "--no-warm" => o.warm = false,
            "--warm-direct" => o.warm_direct = true,
            "--refresh-header" => {
                o.refresh_header =
                    val().ok_or_else(|| Error::Usage("--refresh-header needs a name".into()))?
            }
            "--window-ms" => o.limits.window = Duration::from_millis(num(&name, val())?),
            "--max-jobs" => o.limits.jobs = num(&name, val())?.max(1) as usize,
            "--max-site-jobs" => o.limits.site_jobs = num(&name, val())?.max(1) as usize,
            "--workers" => o.workers = num(&name, val())?.clamp(1, 64) as usize,
            "--warmers" => o.warmers = num(&name, val())?.clamp(1, 64) as usize,
            "--max-conns" => o.max_conns = num(&name, val())?.clamp(4, 65_536) as usize,
            "--index-dir" => o.index_dir = val().map(PathBuf::from),
            "--preload-bin" => o.preload_bin = val().map(PathBuf::from),
            "--preload-arg" => o.preload_args.push(val().unwrap_or_default()),
            "--send" => {
                o.send =
                    Some(val().ok_or_else(|| Error::Usage("--send needs a JSON request".into()))?)
            }
            other => {
                return Err(Error::Usage(format!(
                    "unknown option {other:?} (see --help)"
                )))
            }
        }
    }
    if o.preload_args.is_empty() {
        o.preload_args = vec![
            "{url}/".into(),
            "--sitemap".into(),
            "{url}/sitemap.xml".into(),
        ];
    }
    o.limits.waiters = o.limits.jobs.saturating_mul(5);
    Ok(Some(o))
}

fn main() -> ExitCode {
    // Sockets first, before anything could open a descriptor over fd 3.
    let passed = activation::take();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = passed.and_then(|p| match parse_args(args)? {
        Some(o) => run(o, p),
        None => Ok(()),
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cache-purged: {e}");
            ExitCode::from(if matches!(e, Error::Usage(_)) { 2 } else { 1 })
        }
    }
}

/// Default socket path of the units.
const DEFAULT_SOCKET: &str = "/run/cache-purged/purged.sock";

/// `--send`: one request, one answer line on stdout.
fn send(o: &Options, request: &str) -> Result<(), Error> {
    use std::io::{BufRead, Write};
    let path = o.socket.clone().unwrap_or_else(|| DEFAULT_SOCKET.into());
    let shown = path.display().to_string();
    let mut s = std::os::unix::net::UnixStream::connect(&path)
        .map_err(|e| Error::Io(format!("connect {shown}"), e))?;
    s.set_read_timeout(Some(Duration::from_secs(600)))
        .map_err(|e| Error::Io(shown.clone(), e))?;
    let line = request.replace('\n', " ");
    s.write_all(format!("{line}\n").as_bytes())
        .map_err(|e| Error::Io(format!("send to {shown}"), e))?;
    let mut answer = String::new();
    std::io::BufReader::new(s)
        .read_line(&mut answer)
        .map_err(|e| Error::Io(format!("read from {shown}"), e))?;
    print!("{answer}");
    let v: serde_json::Value = serde_json::from_str(&answer)
        .map_err(|_| Error::Setup(format!("{shown}: no JSON answer")))?;
    if v["ok"] == true {
        Ok(())
    } else {
        Err(Error::Setup(format!(
            "request refused: {}",
            v["error"].as_str().unwrap_or("no reason given")
        )))
    }
}

fn run(o: Options, passed: Vec<activation::Passed>) -> Result<(), Error> {
    if let Some(r) = &o.send {
        return send(&o, r);
    }
    let uid = rustix::process::geteuid().as_raw();
    if uid == 0 {
        return Err(Error::Setup(
            "refusing to run as root: run as the cache owner (User= in cache-purged.service)"
                .into(),
        ));
    }
    let gid = rustix::process::getegid().as_raw();
    let me = peer::Caller::identify(uid, gid, uid).name;
    let (sites, notes) = sites::Sites::load(&o.config, &me)?;
    for n in notes {
        eprintln!("cache-purged: {n}");
    }
    if sites.all.is_empty() && !o.config.exists() {
        return Err(Error::Setup(format!(
            "{}: no such file: nothing to serve",
            o.config.display()
        )));
    }
    if sites.all.is_empty() {
        return Err(Error::Setup(format!(
            "{}: no cache_root line is owned by {me}: nothing to serve",
            o.config.display()
        )));
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(8)
        .enable_all()
        .build()
        .map_err(|e| Error::Io("tokio runtime".into(), e))?;
    rt.block_on(serve(o, passed, sites, uid))
}

async fn serve(
    o: Options,
    passed: Vec<activation::Passed>,
    sites: sites::Sites,
    uid: u32,
) -> Result<(), Error> {
    let mut unix = Vec::new();
    let mut tcp = Vec::new();
    for p in passed {
        if p.unix {
            let std_l = std::os::unix::net::UnixListener::from(p.fd);
            std_l
                .set_nonblocking(true)
                .map_err(|e| Error::Io("passed socket".into(), e))?;
            unix.push(
                tokio::net::UnixListener::from_std(std_l)
                    .map_err(|e| Error::Io("passed socket".into(), e))?,
            );
        } else {
            let std_l = std::net::TcpListener::from(p.fd);
            std_l
                .set_nonblocking(true)
                .map_err(|e| Error::Io("passed socket".into(), e))?;
            tcp.push(
                tokio::net::TcpListener::from_std(std_l)
                    .map_err(|e| Error::Io("passed socket".into(), e))?,
            );
        }
    }
    if let Some(path) = &o.socket {
        let _ = std::fs::remove_file(path);
        let l = tokio::net::UnixListener::bind(path)
            .map_err(|e| Error::Io(format!("bind {}", path.display()), e))?;
        // Any local user may connect; SO_PEERCRED decides what each may do.
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666))
            .map_err(|e| Error::Io(format!("chmod {}", path.display()), e))?;
        unix.push(l);
    }
    if let Some(addr) = o.spinupwp {
        tcp.push(
            tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| Error::Io(format!("bind {addr}"), e))?,
        );
    }
    if unix.is_empty() && tcp.is_empty() {
        return Err(Error::Setup(
            "no socket: start through cache-purged.socket or give --socket".into(),
        ));
    }
    let warmer = if o.warm {
        Some(
            warm::Warmer::new(warm::WarmOptions {
                variants: o.variants,
                connect_to: o.connect_to.clone(),
                loopback: !o.warm_direct,
                timeout: Duration::from_secs(30),
                refresh_header: o.refresh_header.clone(),
            })
            .map_err(Error::Setup)?,
        )
    } else {
        None
    };
    let bases = sites
        .all
        .iter()
        .map(|s| (!s.bases.is_empty()).then(|| s.name()))
        .collect();
    let preloads = Arc::new(preload::Preloads::new(
        o.preload_bin.clone(),
        o.preload_args.clone(),
        bases,
    ));
    let index = match &o.index_dir {
        Some(d) => cache_purge::IndexMode::Auto(d.clone()),
        None => cache_purge::IndexMode::Off,
    };
    let backend: Arc<dyn engine::PurgeBackend> = Arc::new(engine::CacheBackend::new(uid, index));
    let q = queue::Queue::new(sites, backend, warmer, preloads.clone(), o.limits);
    let mut workers = Vec::new();
    for _ in 0..o.workers {
        workers.push(tokio::spawn(q.clone().worker()));
    }
    for _ in 0..o.warmers {
        workers.push(tokio::spawn(q.clone().warm_worker()));
    }
    let ctx = Arc::new(proto::Ctx {
        queue: q.clone(),
        preloads: preloads.clone(),
    });
    let srv = server::Server::new(
        ctx,
        uid,
        server::ConnLimits {
            total: o.max_conns,
            per_uid: (o.max_conns / 4).max(1),
            idle_exit: (o.idle_exit > 0).then(|| Duration::from_secs(o.idle_exit)),
        },
    );
    let mut accepts = Vec::new();
    for l in unix {
        accepts.push(tokio::spawn(srv.clone().unix_loop(l)));
    }
    for l in tcp {
        accepts.push(tokio::spawn(srv.clone().tcp_loop(l)));
    }
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| Error::Io("SIGTERM handler".into(), e))?;
    tokio::select! {
        _ = srv.clone().idle() => {}
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    // Stop accepting (with socket activation the socket stays with systemd, so new clients
    // wait for the next start), answer what was accepted, then exit.
    for a in &accepts {
        a.abort();
    }
    q.close();
    preloads.stop_all().await;
    let drain = async {
        for w in workers {
            let _ = w.await;
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(10), drain).await;
    Ok(())
}
