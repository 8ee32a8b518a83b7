//! The whole cache lifecycle on a real WordPress (Debian's package, MariaDB, nginx FastCGI cache,
//! PHP-FPM as the site user): the must-use plugin drives the PHP client `php/`, which runs the
//! real setuid safexec. Preload All warms every sitemap URL; a post update refreshes the pages
//! that show the post before the request returns; the PHP client's own PHPUnit suite passes as
//! the site user against the real binaries.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use e2e::service::{fake_cache, root_dir, write_config, Service};
use e2e::wordpress::{http_get, WordPress, WpOptions};
use e2e::{alive, bins, must, proc_state, proc_status_field, workspace_root, User};

const PRELOAD_LIMIT: Duration = Duration::from_secs(150);

/// After Preload All, every sitemap URL (the non-ASCII ones included) is a HIT for a browser.
fn preload_and_check_every_url(wp: &WordPress) -> Vec<String> {
    let urls = wp.urls();
    let t0 = Instant::now();
    let p = wp.preload_all(PRELOAD_LIMIT);
    let took = t0.elapsed();
    assert_eq!(p["finished"], true, "the crawler printed no summary: {p}");
    assert_eq!(
        p["pages"].as_u64(),
        Some(urls.len() as u64),
        "pages fetched = sitemap URLs: {p}"
    );
    assert_eq!(p["ok"].as_u64(), Some(urls.len() as u64), "{p}");
    assert_eq!(p["failed"].as_u64(), Some(0), "{p}");
    let crawled = p["hits"].as_u64().unwrap_or(0) + p["misses"].as_u64().unwrap_or(0);
    assert_eq!(
        crawled,
        urls.len() as u64,
        "HIT+MISS counts cover every page: {p}"
    );
    let v = wp.visit_urls(&urls);
    let non_ascii = urls.iter().filter(|u| u.contains('%')).count();
    eprintln!(
        "preload all: {} pages in {:.1} s; browser HIT {}/{} ({:.1} %), {non_ascii} non-ASCII URLs",
        urls.len(),
        took.as_secs_f64(),
        v.hits,
        v.total,
        v.percent()
    );
    assert!(non_ascii >= 50, "only {non_ascii} non-ASCII sitemap URLs");
    assert_eq!(
        (v.hits, v.total),
        (urls.len(), urls.len()),
        "browser HIT {:.1} %; misses: {:?}",
        v.percent(),
        &v.misses[..v.misses.len().min(10)]
    );
    urls
}

/// nginx's cache is as nginx made it: every file www-data 0600, every directory www-data 0700,
/// no ACL, and PHP-FPM's namespace has no FUSE or bindfs mount.
fn assert_cache_is_nginx_own(wp: &WordPress) {
    let www = User::lookup("www-data").expect("www-data");
    let mut files = 0;
    let mut stack = vec![wp.cache_dir()];
    while let Some(d) = stack.pop() {
        let md = fs::symlink_metadata(&d).expect("stat cache dir");
        assert_eq!(
            (md.uid(), md.gid(), md.mode() & 0o7777),
            (www.uid, www.gid, 0o700),
            "{d:?}"
        );
        for e in fs::read_dir(&d).expect("read cache dir").flatten() {
            let md = fs::symlink_metadata(e.path()).expect("stat");
            if md.is_dir() {
                stack.push(e.path());
            } else {
                assert!(md.is_file(), "{:?} is not a regular file", e.path());
                assert_eq!(
                    (md.uid(), md.gid(), md.mode() & 0o7777),
                    (www.uid, www.gid, 0o600),
                    "{:?}",
                    e.path()
                );
                files += 1;
            }
        }
    }
    assert!(files > 0, "the cache is empty");
    // `ls -l` marks a file with an ACL with '+' after the mode.
    let out = must(Command::new("ls").arg("-lR").arg(wp.cache_dir()));
    let acl: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.len() > 10 && l.as_bytes()[10] == b'+')
        .map(str::to_owned)
        .collect();
    assert!(acl.is_empty(), "ACLs in the cache: {acl:?}");
    let fpm = wp.var("FPM_PID");
    let mounts = fs::read_to_string(format!("/proc/{fpm}/mountinfo")).expect("mountinfo");
    assert!(
        !mounts.contains("fuse") && !mounts.contains("bindfs"),
        "FUSE/bindfs mount in PHP-FPM's namespace"
    );
    eprintln!("cache: {files} files, all www-data 0600 in www-data 0700 dirs, no ACL, no FUSE");
}

#[test]
fn preload_all_from_wordpress_warms_every_sitemap_url_for_a_browser() {
    let wp = WordPress::start();
    preload_and_check_every_url(&wp);
    // The job is gone and the state file says so: a later request (another worker) sees it.
    let p = wp.rest_ok("GET", "npp-cache/v1/preload", None);
    assert_eq!(p["running"], false, "{p}");
    assert_cache_is_nginx_own(&wp);
}

/// A Preload All started from a PHP-FPM worker survives the reload of the whole pool (every
/// worker replaced), is seen running by the new workers, and finishes; a second start while it
/// runs is refused, and no worker is left holding a zombie of it.
#[test]
fn preload_all_survives_a_php_fpm_reload_and_new_workers_find_it() {
    let wp = WordPress::start();
    let pid = wp.start_preload_all();
    let comm = |pid: u32| {
        fs::read_to_string(format!("/proc/{pid}/comm"))
            .map(|c| c.trim().to_owned())
            .unwrap_or_default()
    };
    assert_eq!(comm(pid), "cache-preload", "the PID is the crawler's");
    let nobody = User::lookup("nobody").expect("nobody");
    let uid = proc_status_field(pid, "Uid").unwrap_or_default();
    assert!(
        uid.split_whitespace().all(|u| u == nobody.uid.to_string()),
        "the crawler runs as nobody: {uid:?}"
    );
    wp.reload_fpm();
    assert_eq!(comm(pid), "cache-preload", "the reload stopped the preload");
    assert_ne!(
        proc_state(pid),
        Some('Z'),
        "the crawler is a zombie after the reload"
    );
    let p = wp.rest_ok("GET", "npp-cache/v1/preload", None);
    assert_eq!(p["job"].as_u64(), Some(u64::from(pid)), "{p}");
    assert_eq!(p["running"], true, "a new worker does not see the job: {p}");
    let urls = wp.urls();
    assert_eq!(
        p["expected_total"].as_u64(),
        Some(urls.len() as u64),
        "the plugin's estimate is the sitemap's size: {p}"
    );
    assert!(
        p["pages"].as_u64().unwrap_or(0) == 0 || p["eta"].as_f64().is_some(),
        "pages done but no ETA: {p}"
    );
    let (status, _, body) = wp.rest("POST", "npp-cache/v1/preload", None);
    assert_eq!(status, 409, "a second Preload All started: {body}");
    assert!(body.contains("already running"), "{body}");
    let done = wp.wait_preload(PRELOAD_LIMIT);
    assert_eq!(done["finished"], true, "{done}");
    assert_eq!(done["pages"].as_u64(), Some(urls.len() as u64), "{done}");
    // Its parent worker is gone: the job now belongs to init (or a subreaper), not to the pool,
    // so no PHP-FPM worker keeps a zombie of it.
    assert!(!alive(pid), "PID {pid} still runs");
    if proc_state(pid) == Some('Z') {
        let ppid: u32 = proc_status_field(pid, "PPid")
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        assert!(
            !wp.fpm_workers().contains(&ppid) && ppid.to_string() != wp.var("FPM_PID"),
            "a zombie of PID {pid} is kept by PHP-FPM ({ppid})"
        );
    }
    let v = wp.visit_urls(&urls);
    assert_eq!(
        (v.hits, v.total),
        (urls.len(), urls.len()),
        "{:?}",
        v.misses
    );
    eprintln!(
        "preload across a PHP-FPM reload: {} pages, browser HIT {}/{}",
        urls.len(),
        v.hits,
        v.total
    );
}

/// One visitor request during the update.
#[derive(Debug, Clone)]
struct Sample {
    sent: Duration,
    url: usize,
    status: u16,
    cache: String,
    fresh: bool,
}

/// The pages that show post `id` (first pages): itself, home, its terms, its author.
fn affected_urls(wp: &WordPress, id: u64) -> (Vec<String>, String) {
    let post = wp.rest_ok("GET", &format!("wp/v2/posts/{id}?_embed=1"), None);
    let mut urls = vec![
        wp.base_url().to_owned(),
        post["link"].as_str().expect("link").to_owned(),
    ];
    for group in post["_embedded"]["wp:term"].as_array().expect("terms") {
        for t in group.as_array().expect("term group") {
            urls.push(t["link"].as_str().expect("term link").to_owned());
        }
    }
    urls.push(
        post["_embedded"]["author"][0]["link"]
            .as_str()
            .expect("author link")
            .to_owned(),
    );
    let title = post["title"]["rendered"].as_str().unwrap_or("").to_owned();
    (urls, title)
}

/// What a visitor saw around one post update.
struct Watch {
    request: Duration,
    plugin: String,
    samples: usize,
    during: usize,
    misses: usize,
    worst: Duration,
}

/// Updates post `id`'s title through the REST API (as the block editor saves) while a visitor
/// polls `urls`; asserts that once the request returned every answer is a HIT with the new title,
/// and measures the MISS answers and the worst MISS window (first non-HIT to the next HIT).
fn update_and_watch(wp: &WordPress, id: u64, urls: &[String], new_title: &str) -> Watch {
    let port = wp.var("PORT").to_owned();
    let stop = Arc::new(AtomicBool::new(false));
    let t0 = Instant::now();
    let poller = {
        let (stop, urls, needle) = (stop.clone(), urls.to_vec(), new_title.to_owned());
        std::thread::spawn(move || {
            let mut samples = Vec::new();
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let sent = t0.elapsed();
                let a = http_get(&port, &urls[i % urls.len()]);
                samples.push(Sample {
                    sent,
                    url: i % urls.len(),
                    status: a.status,
                    cache: a.cache,
                    fresh: a.body.contains(&needle),
                });
                i += 1;
            }
            samples
        })
    };
    std::thread::sleep(Duration::from_millis(300));
    let begin = t0.elapsed();
    let (status, head, body) = wp.rest(
        "POST",
        &format!("wp/v2/posts/{id}"),
        Some(&format!("{{\"title\":\"{new_title}\"}}")),
    );
    let end = t0.elapsed();
    std::thread::sleep(Duration::from_millis(1500));
    stop.store(true, Ordering::Relaxed);
    let samples = poller.join().expect("poller");
    assert_eq!(status, 200, "update: {head}\n{body}\n{}", wp.php_errors());
    let plugin = head
        .lines()
        .find_map(|l| l.strip_prefix("X-Npp-Cache-Refresh: "))
        .unwrap_or("")
        .to_owned();
    assert!(
        plugin.contains("\"urls\":") && !plugin.contains("error"),
        "the plugin refreshed nothing: {plugin:?}\n{}",
        wp.php_errors()
    );

    // After the update request returned: every answer is a HIT with the new title.
    let after: Vec<&Sample> = samples.iter().filter(|s| s.sent > end).collect();
    assert!(
        after.len() >= 2 * urls.len(),
        "too few samples after the update: {}",
        after.len()
    );
    let stale: Vec<String> = after
        .iter()
        .filter(|s| !(s.status == 200 && s.cache == "HIT" && s.fresh))
        .map(|s| format!("{} {} fresh={} {}", s.status, s.cache, s.fresh, urls[s.url]))
        .collect();
    assert!(
        stale.is_empty(),
        "after the update returned ({plugin}): {:?}",
        &stale[..stale.len().min(10)]
    );
    for (i, u) in urls.iter().enumerate() {
        assert!(
            after.iter().any(|s| s.url == i),
            "{u} never polled after the update"
        );
    }
    let mut worst = Duration::ZERO;
    let mut misses = 0;
    for i in 0..urls.len() {
        let mut open: Option<Duration> = None;
        for s in samples.iter().filter(|s| s.url == i) {
            if s.cache == "HIT" && s.status == 200 {
                if let Some(o) = open.take() {
                    worst = worst.max(s.sent - o);
                }
            } else {
                misses += 1;
                open.get_or_insert(s.sent);
            }
        }
    }
    let during = samples
        .iter()
        .filter(|s| s.sent >= begin && s.sent <= end)
        .count();
    assert!(during > 0, "no visitor request ran during the update");
    let w = Watch {
        request: end - begin,
        plugin,
        samples: samples.len(),
        during,
        misses,
        worst,
    };
    eprintln!(
        "post update: request {:.0} ms, {} affected URLs, plugin {}; visitor samples: {} total, {} during the request; MISS answers {}, worst MISS window {:.0} ms",
        w.request.as_secs_f64() * 1000.0,
        urls.len(),
        w.plugin,
        w.samples,
        w.during,
        w.misses,
        w.worst.as_secs_f64() * 1000.0
    );
    w
}

/// A post update, three ways: refreshed in place by cache-preload (no service), refreshed in place
/// by the purge service, and purged then re-warmed by the service. Visitors never miss after the
/// update returned; in place, they never miss at all.
#[test]
fn post_update_refreshes_every_page_that_shows_it_and_visitors_never_miss() {
    let sdir = root_dir("wp-update");
    let socket = sdir.join("purged.sock");
    let wp = WordPress::start_with(&WpOptions {
        purge_socket: Some(socket.clone()),
        ..WpOptions::default()
    });
    preload_and_check_every_url(&wp);
    let newest = wp.rest_ok("GET", "wp/v2/posts?per_page=1&_fields=id", None);
    let id = newest[0]["id"].as_u64().expect("a post id");
    let (urls, old_title) = affected_urls(&wp, id);
    assert!(urls.len() >= 5, "{urls:?}");
    assert!(
        urls.iter().any(|u| u.contains('%')),
        "the newest post has a non-ASCII slug or term: {urls:?}"
    );
    for u in &urls {
        let a = wp.get(u);
        assert_eq!((a.status, a.cache.as_str()), (200, "HIT"), "{u} before");
        assert!(a.body.contains(&old_title), "{u} shows {old_title:?}");
    }

    // 1. No purge service yet: the plugin refreshes in place with cache-preload through safexec.
    let w = update_and_watch(
        &wp,
        id,
        &urls,
        &format!("Refreshed by cache-preload {}", std::process::id()),
    );
    assert!(
        w.plugin.contains("refresh via cache-preload"),
        "{}",
        w.plugin
    );
    assert_eq!(
        w.misses, 0,
        "visitors saw MISS answers (worst window {:?})",
        w.worst
    );

    // 2. The purge service (www-data) serves the site: refresh in place through it.
    let base = wp.base_url().trim_end_matches('/').to_owned();
    let conf = write_config(
        &sdir,
        &format!(
            "cache_root = {} www-data allow=wpsite url={base}\n",
            wp.cache_dir().display()
        ),
    );
    let service = Service::start(&sdir, &conf, &["--idle-exit", "0"]);
    let w = update_and_watch(
        &wp,
        id,
        &urls,
        &format!("Refreshed by the service {}", std::process::id()),
    );
    assert!(
        w.plugin.contains("refresh via service"),
        "{}\n{}",
        w.plugin,
        service.log()
    );
    assert_eq!(
        w.misses, 0,
        "visitors saw MISS answers (worst window {:?})",
        w.worst
    );

    // 3. Purge, then re-warm (the service waits for the re-warm before answering): visitors may
    //    miss while the request runs, never after it.
    wp.rest_ok(
        "POST",
        "npp-cache/v1/strategy",
        Some(r#"{"strategy":"purge"}"#),
    );
    let w = update_and_watch(
        &wp,
        id,
        &urls,
        &format!("Purged and re-warmed {}", std::process::id()),
    );
    assert!(
        w.plugin.contains("purge+warm via service"),
        "{}\n{}",
        w.plugin,
        service.log()
    );
    eprintln!(
        "purge+re-warm: worst MISS window {:.0} ms during a {:.0} ms update ({} MISS answers of {} during it)",
        w.worst.as_secs_f64() * 1000.0,
        w.request.as_secs_f64() * 1000.0,
        w.misses,
        w.during
    );

    // 4. Publishing a new post: once the request returned, home shows it as a HIT, and so does
    //    the post itself (refreshed in place through the service again).
    wp.rest_ok(
        "POST",
        "npp-cache/v1/strategy",
        Some(r#"{"strategy":"refresh"}"#),
    );
    let title = format!("Brand new {}", std::process::id());
    let created = wp.rest_ok(
        "POST",
        "wp/v2/posts",
        Some(&format!(
            r#"{{"title":"{title}","status":"publish","content":"new"}}"#
        )),
    );
    let link = created["link"].as_str().expect("link").to_owned();
    for u in [wp.base_url().to_owned(), link.clone()] {
        let a = wp.get(&u);
        assert_eq!(
            (a.status, a.cache.as_str()),
            (200, "HIT"),
            "{u} after publish"
        );
        assert!(a.body.contains(&title), "{u} does not show the new post");
    }

    // 5. Moving it to the trash: its old URL is purged (no stale HIT), home no longer lists it.
    let new_id = created["id"].as_u64().expect("id");
    wp.rest_ok("DELETE", &format!("wp/v2/posts/{new_id}"), None);
    let gone = wp.get(&link);
    assert!(
        !(gone.cache == "HIT" && gone.body.contains(&title)),
        "the trashed post is still served from the cache"
    );
    let home = wp.get(wp.base_url());
    assert_eq!(home.cache, "HIT", "home after the trash");
    assert!(
        !home.body.contains(&title),
        "home still lists the trashed post"
    );
    assert_cache_is_nginx_own(&wp);
}

/// Every regular file below `root` with its size (to see that nothing was touched).
fn files_of(root: &Path) -> Vec<(String, u64)> {
    let out = must(
        Command::new("find")
            .arg(root)
            .args(["-type", "f", "-printf", "%p %s\n"]),
    );
    let mut v: Vec<(String, u64)> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.rsplit_once(' '))
        .map(|(p, n)| (p.to_owned(), n.parse().unwrap_or(0)))
        .collect();
    v.sort();
    v
}

/// The PHP client's PHPUnit suite (unit and live) as the site user, in PHP-FPM's namespace, with
/// the real setuid safexec, cache-preload, cache-purge and the purge service (as www-data). The
/// site user's /etc/safexec.conf allows it its own cache only; another site's cache (allow=nobody)
/// sits next to it and must come out untouched.
#[test]
fn php_client_phpunit_suite_passes_as_the_site_user_against_the_real_stack() {
    let wp = WordPress::start_with(&WpOptions {
        safexec_conf: vec![
            "cache_root = {cache} www-data allow=wpsite".into(),
            "cache_root = {top}/other-cache www-data allow=nobody url=http://other.test".into(),
        ],
        ..WpOptions::default()
    });
    let user = wp.site_user();
    let other = wp.top().join("other-cache");
    let other_keys: Vec<String> = (0..5)
        .map(|i| format!("httpGETother.test/page-{i}/"))
        .collect();
    fake_cache(&other, &other_keys);
    let other_before = files_of(&other);
    assert_eq!(other_before.len(), 5);

    // The purge service, as www-data, for both sites (url= maps the site's host and port).
    let sdir = root_dir("wp");
    let base = wp.base_url().trim_end_matches('/').to_owned();
    let conf = write_config(
        &sdir,
        &format!(
            "cache_root = {} www-data allow=wpsite url={base}\ncache_root = {} www-data allow=nobody url=http://other.test\n",
            wp.cache_dir().display(),
            other.display()
        ),
    );
    let service = Service::start(&sdir, &conf, &["--idle-exit", "0"]);
    let pong = service.ask(&[r#"{"op":"ping"}"#.to_owned()]);
    assert_eq!(pong[0]["ok"], true, "ping: {pong:?}\n{}", service.log());
    let svc_uid = proc_status_field(service.pid(), "Uid").unwrap_or_default();
    let www = User::lookup("www-data").expect("www-data");
    assert!(
        svc_uid.split_whitespace().all(|u| u == www.uid.to_string()),
        "the purge service runs as www-data, not root: {svc_uid:?}"
    );

    let state = wp.dir().join("phpunit-state");
    fs::create_dir(&state).expect("state dir");
    must(
        Command::new("chown")
            .arg(format!("{}:{}", user.uid, user.gid))
            .arg(&state),
    );
    let php = workspace_root().join("php");
    let safexec = bins().safexec.to_string_lossy().into_owned();
    let state_s = state.to_string_lossy().into_owned();
    let socket = service.socket.to_string_lossy().into_owned();
    let other_s = other.to_string_lossy().into_owned();
    let sitemap = format!("{}wp-sitemap.xml", wp.base_url());
    let t0 = Instant::now();
    let out = wp.exec(
        &[
            ("NPP_E2E_SAFEXEC", &safexec),
            ("NPP_E2E_STATE", &state_s),
            ("NPP_E2E_BASE_URL", wp.base_url()),
            ("NPP_E2E_SITEMAP", &sitemap),
            ("NPP_E2E_PAGES", wp.var("PAGES")),
            ("NPP_E2E_SOCKET", &socket),
            ("NPP_E2E_OTHER_URL", "http://other.test/page-1/"),
            ("NPP_E2E_OTHER_ROOT", &other_s),
        ],
        &[
            "phpunit",
            "--colors=never",
            "-c",
            &php.join("phpunit.xml.dist").to_string_lossy(),
        ],
    );
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!(
        "phpunit as {} ({:.1} s):\n{text}",
        user.name,
        t0.elapsed().as_secs_f64()
    );
    assert!(
        out.status.success(),
        "phpunit failed; purge service log:\n{}",
        service.log()
    );
    let ok = text.lines().find(|l| l.starts_with("OK (")).unwrap_or("");
    assert!(ok.contains("tests"), "no OK line: {text}");
    assert_eq!(
        files_of(&other),
        other_before,
        "another site's cache was touched"
    );

    // The same from a PHP-FPM worker: the plugin's purge route (no service configured for it,
    // so safexec cache-purge), one page and then the whole site.
    let home = wp.base_url().to_owned();
    wp.get(&home);
    assert_eq!(wp.get(&home).cache, "HIT");
    let r = wp.rest_ok(
        "POST",
        "npp-cache/v1/purge",
        Some(&format!(r#"{{"urls":["{home}"]}}"#)),
    );
    assert_eq!(r["via"], "safexec", "{r}");
    assert_eq!(r["results"][0]["status"], "purged", "{r}");
    assert_eq!(wp.get(&home).cache, "MISS");
    let r = wp.rest_ok("POST", "npp-cache/v1/purge", Some(r#"{"all":true}"#));
    assert!(r["files"].as_u64().unwrap_or(0) >= 1, "{r}");
    assert_eq!(wp.get(&home).cache, "MISS");
    assert_eq!(
        files_of(&other),
        other_before,
        "another site's cache was touched"
    );
    assert_cache_is_nginx_own(&wp);
}
