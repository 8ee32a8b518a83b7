//! The purge service end to end: started as its systemd units would start it (same binary, as
//! www-data, sockets inherited through LISTEN_FDS), on the real nginx + PHP-FPM stack.

use std::collections::HashMap;
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use e2e::service::{self, Service};
use e2e::{ensure_user, must, Stack, User};
use serde_json::{json, Value};

/// Patches the stack's nginx config with the shipped snippets (socket path adjusted) and
/// reloads nginx; waits until the old workers are gone.
fn install_snippets(stack: &Stack, socket: &std::path::Path) {
    let snip = |name: &str| {
        let text = fs::read_to_string(e2e::workspace_root().join("packaging/nginx").join(name))
            .expect("snippet");
        let text = text.replace(
            "/run/cache-purged/purged.sock",
            &socket.display().to_string(),
        );
        let p = stack.dir().join(name);
        fs::write(&p, text).expect("write snippet");
        p
    };
    let (h, l, r) = (
        snip("cache-purged-http.conf"),
        snip("cache-purged-location.conf"),
        snip("cache-purged-refresh.conf"),
    );
    let conf_path = stack.dir().join("nginx.conf");
    let conf = fs::read_to_string(&conf_path).expect("nginx.conf");
    let conf = conf
        .replacen(
            "    server {",
            &format!("    include {};\n    server {{", h.display()),
            1,
        )
        .replacen(
            "        location / {",
            &format!(
                "        include {};\n        location / {{\n            include {};",
                l.display(),
                r.display()
            ),
            1,
        );
    fs::write(&conf_path, conf).expect("write nginx.conf");
    must(
        Command::new("nginx")
            .args(["-t", "-q", "-c"])
            .arg(&conf_path),
    );
    let pid = stack.var("NGINX_PID").to_owned();
    let children = |p: &str| -> Vec<String> {
        let out = Command::new("pgrep")
            .args(["-P", p])
            .output()
            .expect("pgrep");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_owned)
            .collect()
    };
    let before = children(&pid);
    must(Command::new("kill").args(["-HUP", &pid]));
    let t0 = Instant::now();
    loop {
        let now = children(&pid);
        if !now.is_empty() && before.iter().all(|b| !now.contains(b)) {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "nginx did not reload"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn req(v: Value) -> String {
    v.to_string()
}

/// A visitor polling `path` every 2 ms until `stop`: (non-HIT answers, ms from the first to
/// the last non-HIT answer).
fn visitor(addr: String, host: String, path: String, stop: Arc<AtomicBool>) -> (usize, u128) {
    let mut misses = 0;
    let (mut first, mut last) = (None, None);
    while !stop.load(Ordering::SeqCst) {
        let t = Instant::now();
        let (status, cache) = service::get(&addr, &host, &path, &[]);
        if status != 200 || cache != "HIT" {
            misses += 1;
            first.get_or_insert(t);
            last = Some(Instant::now());
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let span = match (first, last) {
        (Some(f), Some(l)) => (l - f).as_millis(),
        _ => 0,
    };
    (misses, span)
}

/// Polls a cache file every 0.2 ms until `stop`: (longest absence in ms, absent at the end).
fn prober(path: std::path::PathBuf, stop: Arc<AtomicBool>) -> (f64, bool) {
    let mut gone_since: Option<Instant> = None;
    let mut longest = 0.0f64;
    while !stop.load(Ordering::SeqCst) {
        let exists = path.exists();
        match (exists, gone_since) {
            (false, None) => gone_since = Some(Instant::now()),
            (true, Some(t)) => {
                longest = longest.max(t.elapsed().as_secs_f64() * 1000.0);
                gone_since = None;
            }
            _ => {}
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    (longest, gone_since.is_some())
}

#[test]
fn spinupwp_http_socket_clients_and_cold_windows() {
    let mut stack = Stack::start();
    let site = stack.site_user();
    let other = ensure_user("e2epurgeb");
    let dir = service::root_dir("clients");
    let other_root = dir.join("other-cache");
    let other_keys: Vec<String> = (0..5)
        .map(|i| format!("httpGETother.test/b/{i}/"))
        .collect();
    service::fake_cache(&other_root, &other_keys);
    let base = stack.base_url().trim_end_matches('/').to_owned();
    let cache = stack.cache_dir();
    let config = service::write_config(
        &dir,
        &format!(
            "cache_root = {} www-data allow={} url={base}\ncache_root = {} www-data allow={} url=http://other.test\n",
            cache.display(),
            site.name,
            other_root.display(),
            other.name
        ),
    );
    let svc = Service::start(&dir, &config, &["--idle-exit", "0"]);
    install_snippets(&stack, &svc.socket);
    let addr = format!("127.0.0.1:{}", stack.var("PORT"));
    let host = "127.0.0.1";
    let urls = stack.urls();
    let path_of = |u: &str| u.strip_prefix(&base).unwrap_or(u).to_owned();
    let warm = |p: &str| {
        service::get(&addr, host, p, &[]);
        let (s, c) = service::get(&addr, host, p, &[]);
        assert_eq!((s, c.as_str()), (200, "HIT"), "{p} is cached");
    };

    // --- SpinupWP's documented PHP client, run as the site user.
    let php = format!(
        "$fp = fsockopen('127.0.0.1', {}, $errno, $errstr, 5);\n\
         if (!$fp) {{ echo \"CONNECT-FAILED\\n\"; exit(2); }}\n\
         fwrite($fp, $argv[1] . \"\\n\");\n\
         $result = fread($fp, 512);\n\
         fclose($fp);\n\
         echo preg_match('/^Purge:\\sSuccess/', $result) ? \"SUCCESS\\n\" : \"ERROR\\n\";",
        svc.tcp_addr.port()
    );
    let spinup = |path: &str| -> String {
        let mut cmd = Command::new(&site.setpriv()[0]);
        cmd.args(&site.setpriv()[1..])
            .args(["/usr/bin/php", "-r", &php, "--", path]);
        let out = must(&mut cmd);
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    let p0 = path_of(&urls[1]);
    warm(&p0);
    // SpinupWP computes md5(scheme . 'GET' . host . path); nginx's $host has no port.
    let file = service::cache_path(&cache, &format!("httpGET{host}{p0}"));
    assert!(file.exists(), "{file:?} is the cache file of {p0}");
    assert_eq!(spinup(&file.display().to_string()), "SUCCESS");
    assert!(!file.exists(), "SpinupWP path purge removed the file");
    assert_eq!(service::get(&addr, host, &p0, &[]).1, "MISS");
    assert_eq!(
        spinup(&file.display().to_string()),
        "SUCCESS",
        "absent in-root path = success"
    );
    // The traps of purge-spec test 18; nothing outside the root may change.
    let victim_dir = dir.join("victim");
    fs::create_dir_all(&victim_dir).unwrap();
    let victim = victim_dir.join("0123456789abcdef0123456789abcd0a");
    fs::write(&victim, "keep").unwrap();
    must(
        Command::new("chown")
            .args(["-R", "www-data:"])
            .arg(&victim_dir),
    );
    // A symlink planted as a second-level directory (a name nginx has not created).
    let level1 = file.parent().unwrap().parent().unwrap().to_path_buf();
    let link_name = (0..256)
        .map(|i| format!("{i:02x}"))
        .find(|n| !level1.join(n).exists())
        .unwrap();
    let link = level1.join(&link_name);
    std::os::unix::fs::symlink(&victim_dir, &link).unwrap();
    let via_link = format!("{}/0123456789abcdef0123456789abcd0a", link.display());
    let c = cache.display().to_string();
    for bad in [
        format!("{c}/../../etc/passwd"),
        format!("{c}/./7/93/0c6d84446df30d38c2c682134d5ee937"),
        format!("{c}2/x"),
        format!("{}", cache.parent().unwrap().display()),
        "relative/7/93/0c6d84446df30d38c2c682134d5ee937".to_owned(),
        via_link.clone(),
        format!("{c}/7/93/../../../x"),
        format!("{c}/zz/93/0c6d84446df30d38c2c682134d5ee937"),
        "/etc/passwd".to_owned(),
    ] {
        assert_eq!(spinup(&bad), "ERROR", "{bad}");
    }
    assert!(victim.exists(), "nothing followed the symlink");
    fs::remove_file(&link).unwrap();

    // --- ngx_cache_purge's HTTP interface through nginx (Nginx Helper's get_request mode).
    let p1 = path_of(&urls[2]);
    warm(&p1);
    let out = must(
        Command::new("curl")
            .args(["-s", "-w", "\n%{http_code}"])
            .arg(format!("http://{addr}/purge{p1}")),
    );
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        text.ends_with("\n200") && text.contains("Successful purge"),
        "{text}"
    );
    assert!(text.contains(&format!("Key : httpGET{host}{p1}")), "{text}");
    let out = must(
        Command::new("curl")
            .args(["-s", "-o", "/dev/null", "-w", "%{http_code}"])
            .arg(format!("http://{addr}/purge{p1}")),
    );
    // The first answer queued a re-warm; wait for it, then purge twice: the second is 412.
    std::thread::sleep(Duration::from_millis(300));
    let _ = out;
    let code = |m: &str, u: String| {
        let o = must(
            Command::new("curl")
                .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", m])
                .arg(u),
        );
        String::from_utf8_lossy(&o.stdout).to_string()
    };
    assert_eq!(
        code("GET", format!("http://{addr}/purge{p1}")),
        "200",
        "re-warmed, so cached again"
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        code("PURGE", format!("http://{addr}{p1}")),
        "200",
        "PURGE method"
    );
    assert_eq!(
        code(
            "GET",
            format!("http://{addr}/purge/not-cached-{}/", std::process::id())
        ),
        "412"
    );
    // ngx_cache_purge's wildcard: a prefix, then everything of the Host's site.
    let (pa, pb) = (path_of(&urls[4]), path_of(&urls[5]));
    warm(&pa);
    warm(&pb);
    let prefix = &pa[..pa.len().min(3)];
    assert_eq!(code("GET", format!("http://{addr}/purge{prefix}*")), "200");
    assert_eq!(
        service::get(&addr, host, &pa, &[]).1,
        "MISS",
        "prefix {prefix} purged {pa}"
    );
    std::thread::sleep(Duration::from_millis(300));
    assert!(!stack.cache_files().is_empty());
    assert_eq!(code("GET", format!("http://{addr}/purge/*")), "200");
    assert!(
        stack.cache_files().is_empty(),
        "/purge/* emptied the site's cache"
    );
    assert!(
        service::cache_path(&other_root, &other_keys[0]).exists(),
        "and only that site's"
    );

    // --- The Unix socket from two site users: each purges only its own site.
    let p2 = path_of(&urls[3]);
    warm(&p2);
    let a = svc.ask_as(&site, &[req(json!({"op": "purge", "urls": [format!("{base}{p2}"), "http://other.test/b/0/"], "rewarm": false}))]);
    assert_eq!(a[0]["ok"], true, "{a:?}");
    assert_eq!(a[0]["results"][0]["status"], "purged", "{a:?}");
    assert_eq!(a[0]["results"][1]["status"], "refused", "{a:?}");
    let a = svc.ask_as(
        &site,
        &[req(json!({"op": "all", "site": "http://other.test"}))],
    );
    assert_eq!(a[0]["ok"], false, "{a:?}");
    assert!(service::cache_path(&other_root, &other_keys[0]).exists());
    let p3 = path_of(&urls[7]);
    warm(&p3);
    // One request per connection: requests of one connection run concurrently, so a Purge
    // All sent with them could absorb the others.
    let a: Vec<Value> = [
        json!({"op": "purge", "urls": ["http://other.test/b/0/"]}),
        json!({"op": "purge", "urls": [format!("{base}{p2}")]}),
        json!({"op": "prefix", "url": "http://other.test/b/1"}),
        json!({"op": "all"}),
    ]
    .into_iter()
    .map(|r| svc.ask_as(&other, &[req(r)]).remove(0))
    .collect();
    assert_eq!(a[0]["results"][0]["status"], "purged", "{a:?}");
    assert_eq!(a[1]["results"][0]["status"], "refused", "{a:?}");
    assert_eq!(
        (a[2]["ok"].clone(), a[2]["files"].clone()),
        (json!(true), json!(1)),
        "{a:?}"
    );
    assert_eq!(
        (a[3]["ok"].clone(), a[3]["files"].clone()),
        (json!(true), json!(3)),
        "{a:?}"
    );
    assert!(
        service::cache_path(&cache, &format!("httpGET{host}{p3}")).exists(),
        "the other user's Purge All left site A alone"
    );

    // --- Bad input: clear errors, closed connections, other clients unaffected.
    let slow = UnixStream::connect(&svc.socket).unwrap();
    let a = svc.ask_as(
        &site,
        &[
            "not json".to_owned(),
            req(json!({"op": "explode"})),
            req(json!({"op": "purge", "urls": ["http://127.0.0.1:1/../etc/passwd\n"]})),
            req(json!({"op": "purge", "urls": []})),
        ],
    );
    assert_eq!(a.len(), 4, "{a:?}");
    for x in &a {
        let refused = x["ok"] == false || x["results"][0]["status"] == "refused";
        assert!(refused, "{x}");
    }
    assert!(
        a[1]["error"].as_str().unwrap().contains("unknown op"),
        "{a:?}"
    );
    let a = svc.ask(&["x".repeat(70_000)]);
    assert!(
        a[0]["error"].as_str().unwrap().contains("longer than"),
        "{a:?}"
    );
    // A flood from one uid: connections past its share are closed, another uid still works.
    let flood: Vec<UnixStream> = (0..200)
        .filter_map(|_| UnixStream::connect(&svc.socket).ok())
        .collect();
    let a = svc.ask_as(&site, &[req(json!({"op": "ping"}))]);
    assert_eq!(
        a[0]["ok"], true,
        "served during a flood and a slow client: {a:?}"
    );
    drop(flood);
    drop(slow);

    // --- Vary: every variant of a URL goes (the page answers with `Vary: Accept-Encoding`).
    stack.set("vary", true);
    let pv = path_of(&urls[6]);
    for ae in ["gzip, deflate, br, zstd", "identity", "gzip"] {
        service::get(&addr, host, &pv, &[("Accept-Encoding", ae)]);
    }
    let keyed: Vec<_> = stack
        .cache_files()
        .into_iter()
        .filter(|f| {
            fs::read(f)
                .map(|b| String::from_utf8_lossy(&b).contains(&format!("KEY: httpGET{host}{pv}\n")))
                .unwrap_or(false)
        })
        .collect();
    assert!(keyed.len() >= 2, "variants stored: {keyed:?}");
    let a = svc.ask_as(
        &site,
        &[req(
            json!({"op": "purge", "urls": [format!("{base}{pv}")], "rewarm": false}),
        )],
    );
    assert_eq!(a[0]["results"][0]["files"], keyed.len(), "{a:?}");
    assert!(keyed.iter().all(|f| !f.exists()), "every variant purged");
    stack.set("vary", false);

    // --- Cold windows: purge only, purge + re-warm, refresh in place.
    let mut figures = Vec::new();
    for (i, strategy) in ["purge only", "purge + re-warm", "refresh in place"]
        .iter()
        .enumerate()
    {
        let p = path_of(&urls[10 + i]);
        warm(&p);
        // Without visitors: how long the entry is missing from the cache.
        let file = service::cache_path(&cache, &format!("httpGET{host}{p}"));
        assert!(file.exists());
        let stop = Arc::new(AtomicBool::new(false));
        let probe = {
            let (f, s) = (file.clone(), stop.clone());
            std::thread::spawn(move || prober(f, s))
        };
        let url = format!("{base}{p}");
        let request = match i {
            0 => json!({"op": "purge", "urls": [url], "rewarm": false}),
            1 => json!({"op": "purge", "urls": [url], "rewarm": "queue"}),
            _ => json!({"op": "refresh", "urls": [url]}),
        };
        let a = svc.ask_as(&site, &[req(request.clone())]);
        assert_eq!(a[0]["ok"], true, "{a:?}");
        std::thread::sleep(Duration::from_millis(500));
        stop.store(true, Ordering::SeqCst);
        let (gap, still_missing) = probe.join().unwrap();
        // With a visitor polling every 2 ms: how many got something other than a HIT.
        let p2 = path_of(&urls[30 + i]);
        warm(&p2);
        let stop = Arc::new(AtomicBool::new(false));
        let v = {
            let (a, h, pp, s) = (addr.clone(), host.to_owned(), p2.clone(), stop.clone());
            std::thread::spawn(move || visitor(a, h, pp, s))
        };
        std::thread::sleep(Duration::from_millis(50));
        let mut r2 = request;
        r2["urls"] = json!([format!("{base}{p2}")]);
        svc.ask_as(&site, &[req(r2)]);
        std::thread::sleep(Duration::from_millis(300));
        stop.store(true, Ordering::SeqCst);
        let (misses, span) = v.join().unwrap();
        let window = if still_missing {
            "missing until a visitor requests it (still missing after 500 ms)".to_owned()
        } else {
            format!("missing for {gap:.1} ms")
        };
        figures.push(format!(
            "{strategy}: entry {window}; a visitor polling every 2 ms got {misses} non-HIT answers ({span} ms)"
        ));
        match i {
            0 => assert!(still_missing, "purge only leaves the page cold"),
            1 => assert!(!still_missing, "re-warm brings the entry back"),
            _ => {
                assert!(
                    !still_missing && gap == 0.0,
                    "refresh never removes the entry ({gap} ms)"
                );
                assert_eq!(misses, 0, "refresh-in-place: visitors only see HITs");
            }
        }
    }
    // Without visitors, a purge-only page stays cold: the next visitor, however late, misses.
    let p = path_of(&urls[20]);
    warm(&p);
    svc.ask_as(
        &site,
        &[req(
            json!({"op": "purge", "urls": [format!("{base}{p}")], "rewarm": false}),
        )],
    );
    std::thread::sleep(Duration::from_millis(300));
    let t = Instant::now();
    let first = service::get(&addr, host, &p, &[]);
    figures.push(format!(
        "purge only, first visitor 300 ms later: {} ({} ms)",
        first.1,
        t.elapsed().as_millis()
    ));
    assert_eq!(first.1, "MISS");
    let p = path_of(&urls[21]);
    warm(&p);
    let a = svc.ask_as(
        &site,
        &[req(
            json!({"op": "purge", "urls": [format!("{base}{p}")], "rewarm": "wait"}),
        )],
    );
    let t = Instant::now();
    let after = service::get(&addr, host, &p, &[]);
    figures.push(format!(
        "purge + re-warm (answer after the re-warm), next visitor: {} ({} ms); re-warm {}",
        after.1,
        t.elapsed().as_millis(),
        a[0]["results"][0]["rewarm"]
    ));
    assert_eq!(after.1, "HIT", "re-warmed before the answer: {a:?}");
    eprintln!("cold windows:\n  {}", figures.join("\n  "));
    let log = svc.log();
    assert!(!log.contains("panicked"), "{log}");
}

/// What one storm client saw.
struct Seen {
    /// Answers by request id.
    done: HashMap<usize, Value>,
    /// Microseconds from a request's first send to its answer (retries included).
    lat: Vec<u64>,
    /// Connections that ended before every request on them was answered.
    broken: usize,
    /// Requests sent again on a new connection.
    resent: usize,
    /// When the last answer came.
    last: Option<Instant>,
}

/// One storm client: sends its requests pipelined on one connection, reconnecting and re-sending
/// what was not answered when the connection breaks.
fn storm_client(
    socket: std::path::PathBuf,
    work: Vec<(usize, String)>,
    answered: Arc<AtomicUsize>,
) -> Seen {
    let mut done: HashMap<usize, Value> = HashMap::new();
    let mut lat = Vec::new();
    let mut broken = 0;
    let mut resent = 0;
    let mut round = 0;
    let mut last = None;
    let sent: Arc<Mutex<HashMap<usize, Instant>>> = Arc::default();
    while done.len() < work.len() {
        let todo: Vec<&(usize, String)> =
            work.iter().filter(|(i, _)| !done.contains_key(i)).collect();
        let Ok(s) = UnixStream::connect(&socket) else {
            std::thread::sleep(Duration::from_millis(20));
            continue;
        };
        s.set_read_timeout(Some(Duration::from_secs(20))).ok();
        if round > 0 {
            resent += todo.len();
        }
        round += 1;
        let mut w = s.try_clone().unwrap();
        let lines: Vec<(usize, String)> = todo
            .iter()
            .map(|(i, u)| {
                (
                    *i,
                    json!({"id": i, "op": "purge", "urls": [u], "rewarm": false}).to_string(),
                )
            })
            .collect();
        let sent2 = sent.clone();
        let writer = std::thread::spawn(move || {
            for (i, l) in lines {
                sent2.lock().unwrap().entry(i).or_insert_with(Instant::now);
                if w.write_all(format!("{l}\n").as_bytes()).is_err() {
                    return;
                }
            }
        });
        let mut ok_this_round = 0;
        for line in BufReader::new(s).lines() {
            let Ok(line) = line else { break };
            let v: Value = serde_json::from_str(&line).expect("answer is JSON");
            let id = v["id"].as_u64().expect("answer has the id") as usize;
            if let Some(t) = sent.lock().unwrap().get(&id) {
                lat.push(t.elapsed().as_micros() as u64);
            }
            done.insert(id, v);
            last = Some(Instant::now());
            answered.fetch_add(1, Ordering::SeqCst);
            ok_this_round += 1;
            if ok_this_round == todo.len() {
                break;
            }
        }
        let _ = writer.join();
        if done.len() < work.len() {
            broken += 1;
        }
    }
    Seen {
        done,
        lat,
        broken,
        resent,
        last,
    }
}

fn run_storm(
    svc: &Service,
    urls: &[String],
    clients: usize,
    per: usize,
) -> (usize, f64, u64, usize) {
    let answered = Arc::new(AtomicUsize::new(0));
    let t0 = Instant::now();
    let handles: Vec<_> = (0..clients)
        .map(|c| {
            let work: Vec<(usize, String)> = (0..per)
                .map(|j| {
                    let id = c * per + j;
                    (id, urls[(id * 7) % urls.len()].clone())
                })
                .collect();
            let (s, a) = (svc.socket.clone(), answered.clone());
            std::thread::spawn(move || storm_client(s, work, a))
        })
        .collect();
    let mut all_lat = Vec::new();
    let mut broken = 0;
    let mut n = 0;
    for h in handles {
        let seen = h.join().unwrap();
        for v in seen.done.values() {
            assert_eq!(v["ok"], true, "{v}");
            let st = v["results"][0]["status"].as_str().unwrap();
            assert!(st == "purged" || st == "not_cached", "{v}");
        }
        n += seen.done.len();
        all_lat.extend(seen.lat);
        broken += seen.broken;
    }
    let secs = t0.elapsed().as_secs_f64();
    all_lat.sort_unstable();
    let p99 = all_lat.get(all_lat.len() * 99 / 100).copied().unwrap_or(0);
    (n, n as f64 / secs, p99, broken)
}

#[test]
fn storm_of_10000_requests_then_a_kill_mid_storm() {
    let dir = service::root_dir("storm");
    let root = dir.join("cache");
    let urls: Vec<String> = (0..1000)
        .map(|i| format!("http://storm.test/p/{i}/"))
        .collect();
    let keys: Vec<String> = (0..1000)
        .map(|i| format!("httpGETstorm.test/p/{i}/"))
        .collect();
    service::fake_cache(&root, &keys);
    let config = service::write_config(
        &dir,
        &format!(
            "cache_root = {} www-data url=http://storm.test\n",
            root.display()
        ),
    );
    let mut svc = Service::start(&dir, &config, &["--idle-exit", "0", "--no-warm"]);
    let (n, rps, p99, broken) = run_storm(&svc, &urls, 16, 625);
    assert_eq!(n, 10_000, "every request answered");
    assert_eq!(broken, 0);
    let left: Vec<_> = keys
        .iter()
        .filter(|k| service::cache_path(&root, k).exists())
        .collect();
    assert!(left.is_empty(), "every URL purged; left: {}", left.len());
    let rss = svc.peak_rss_kib();
    assert!(
        rss > 0 && rss < 128 * 1024,
        "service memory bounded: VmHWM {rss} KiB"
    );
    let stats = svc.ask(&[json!({"op": "stats"}).to_string()]);
    eprintln!("storm: 10000 requests for 1000 URLs from 16 pipelining clients: {rps:.0} requests/s, p99 (send to answer, pipelined) {:.1} ms, VmHWM {rss} KiB, {}", p99 as f64 / 1000.0, stats[0]["stats"]);

    // Kill mid-storm (SIGKILL), restart on the kept sockets as systemd's Restart= would.
    service::fake_cache(&root, &keys);
    let answered = Arc::new(AtomicUsize::new(0));
    let handles: Vec<_> = (0..8)
        .map(|c| {
            let work: Vec<(usize, String)> = (0..1250)
                .map(|j| {
                    let id = c * 1250 + j;
                    (id, urls[(id * 7) % urls.len()].clone())
                })
                .collect();
            let (s, a) = (svc.socket.clone(), answered.clone());
            std::thread::spawn(move || storm_client(s, work, a))
        })
        .collect();
    let t0 = Instant::now();
    while answered.load(Ordering::SeqCst) < 3000 {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "storm did not progress"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    let at_kill = answered.load(Ordering::SeqCst);
    svc.kill();
    let killed = Instant::now();
    std::thread::sleep(Duration::from_millis(100));
    svc.spawn();
    let (mut broken, mut resent, mut n) = (0, 0, 0);
    let mut lat = Vec::new();
    let mut last_answer = killed;
    for h in handles {
        let seen = h.join().unwrap();
        last_answer = last_answer.max(seen.last.unwrap_or(killed));
        for v in seen.done.values() {
            assert_eq!(v["ok"], true, "{v}");
        }
        n += seen.done.len();
        broken += seen.broken;
        resent += seen.resent;
        lat.extend(seen.lat);
    }
    lat.sort_unstable();
    let longest = lat.last().copied().unwrap_or(0) as f64 / 1000.0;
    assert_eq!(n, 10_000, "every request answered after the restart");
    let left = keys
        .iter()
        .filter(|k| service::cache_path(&root, k).exists())
        .count();
    assert_eq!(left, 0, "every URL purged across the restart");
    eprintln!(
        "kill mid-storm: {at_kill} answers before SIGKILL; {broken} client connections ended with EOF and no answer for {resent} requests, which the clients re-sent on a new connection (it waited in the kept socket's backlog until the restart 100 ms later); the longest a request waited from first send to answer: {longest:.0} ms; the last answer came {} ms after the kill",
        (last_answer - killed).as_millis()
    );
}

/// Copies the units and the binary into a private root (with the system's own units, which
/// they depend on) and runs `systemd-analyze verify` and `security --offline` there.
#[test]
fn systemd_units_verify_and_the_service_lifecycle() {
    let dir = service::root_dir("units");
    let root = dir.join("root");
    for d in ["usr/bin", "etc/systemd/system", "usr/lib/systemd"] {
        fs::create_dir_all(root.join(d)).unwrap();
    }
    fs::copy(service::purged_bin(), root.join("usr/bin/cache-purged")).unwrap();
    let units = [
        "cache-purged.socket",
        "cache-purged.service",
        "cache-purged-spinupwp.socket",
        "cache-preload@.service",
        "cache-preload@.timer",
    ];
    for u in units {
        fs::copy(
            e2e::workspace_root().join("packaging/systemd").join(u),
            root.join("etc/systemd/system").join(u),
        )
        .unwrap();
    }
    must(
        Command::new("cp")
            .arg("-r")
            .arg("/usr/lib/systemd/system")
            .arg(root.join("usr/lib/systemd/")),
    );
    let verify = |names: &[&str]| {
        Command::new("systemd-analyze")
            .args(["verify", "--man=no"])
            .arg(format!("--root={}", root.display()))
            .args(names)
            .output()
            .expect("systemd-analyze (install-deps installs systemd)")
    };
    let out = verify(&units);
    let text =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.trim().is_empty(),
        "verify: {text}"
    );
    // The check is live: a unit with a typo is reported.
    fs::write(
        root.join("etc/systemd/system/broken-purged.service"),
        "[Service]\nExecStart=/usr/bin/cache-purged\nNoNewPrivilegez=yes\n",
    )
    .unwrap();
    let out = verify(&["broken-purged.service"]);
    let text = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        text.contains("NoNewPrivilegez"),
        "verify reports the typo: {text}"
    );
    let out = must(
        Command::new("systemd-analyze")
            .args(["security", "--offline=true", "--no-pager"])
            .arg(format!("--root={}", root.display()))
            .arg("cache-purged.service"),
    );
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    let score = text
        .lines()
        .find_map(|l| l.split("cache-purged.service: ").nth(1))
        .unwrap_or("?")
        .to_owned();
    eprintln!("systemd-analyze security: cache-purged.service exposure {score}");
    let value: f64 = score
        .split_whitespace()
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10.0);
    assert!(value <= 2.0, "exposure {score}");

    // Never as root.
    let out = Command::new(service::purged_bin())
        .args(["--socket", "/nonexistent/s"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("refusing to run as root"));

    // Lifecycle: idle exit, activation by a waiting client, preloads around Purge All, SIGTERM.
    let cache = dir.join("cache");
    let keys: Vec<String> = (0..20).map(|i| format!("httpGETlife.test/{i}/")).collect();
    service::fake_cache(&cache, &keys);
    let config = service::write_config(
        &dir,
        &format!(
            "cache_root = {} www-data url=http://life.test\n",
            cache.display()
        ),
    );
    let mut svc = Service::start(
        &dir,
        &config,
        &[
            "--idle-exit",
            "1",
            "--no-warm",
            "--preload-bin",
            "/bin/sleep",
            "--preload-arg",
            "30",
        ],
    );
    assert_eq!(svc.ask(&[req(json!({"op": "ping"}))])[0]["ok"], true);
    assert_eq!(svc.wait_exit(Duration::from_secs(10)), Some(0), "idle exit");
    // A client connecting while the service is down waits in the kept socket's backlog.
    let sock = svc.socket.clone();
    let client = std::thread::spawn(move || {
        let mut s = UnixStream::connect(&sock).unwrap();
        s.write_all(b"{\"op\":\"purge\",\"urls\":[\"http://life.test/0/\"]}\n")
            .unwrap();
        let mut line = String::new();
        BufReader::new(s).read_line(&mut line).unwrap();
        line
    });
    std::thread::sleep(Duration::from_millis(300));
    svc.spawn();
    let line = client.join().unwrap();
    assert!(line.contains("\"purged\""), "{line}");
    // --send (the timer's client) starts a service-owned preload; Purge All restarts it.
    let www = User::lookup("www-data").unwrap();
    let mut send = Command::new(&www.setpriv()[0]);
    send.args(&www.setpriv()[1..])
        .arg(service::purged_bin())
        .arg("--socket")
        .arg(&svc.socket)
        .args(["--send", "{\"op\":\"preload\"}"]);
    let out = must(&mut send);
    let first: Value = serde_json::from_slice(&out.stdout).unwrap();
    let pid1 = first["pid"].as_u64().expect("preload pid") as u32;
    assert!(e2e::alive(pid1));
    let a = svc.ask(&[req(json!({"op": "all"}))]);
    assert_eq!(a[0]["files"], 19, "{a:?}");
    let st = svc.ask(&[req(json!({"op": "preload_status"}))]);
    let pid2 = st[0]["pid"].as_u64().expect("preload restarted") as u32;
    assert_ne!(pid1, pid2, "a new preload after the purge");
    e2e::wait_gone(pid1, Duration::from_secs(5));
    // SIGTERM: prompt exit, the preload child stopped with it.
    let t = Instant::now();
    must(Command::new("kill").args(["-TERM", &svc.pid().to_string()]));
    assert_eq!(svc.wait_exit(Duration::from_secs(10)), Some(0));
    eprintln!("SIGTERM to exit: {} ms", t.elapsed().as_millis());
    e2e::wait_gone(pid2, Duration::from_secs(5));
    assert!(!svc.log().contains("panicked"), "{}", svc.log());
}
