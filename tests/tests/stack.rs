//! The stack itself, and GNU wget with NPP's flags as the reference the crawler is compared to.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use e2e::{alive, npp, require_root, Stack, User};

fn pids_of_children(parent: u32) -> Vec<u32> {
    let out = Command::new("pgrep")
        .args(["-P", &parent.to_string()])
        .output()
        .expect("pgrep");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

fn uid_of(pid: u32) -> u32 {
    e2e::proc_status_field(pid, "Uid")
        .and_then(|v| v.split_whitespace().nth(1).and_then(|u| u.parse().ok()))
        .unwrap_or_else(|| panic!("no Uid for {pid}"))
}

#[test]
fn stack_runs_nginx_and_php_as_different_users_and_tears_down() {
    let stack = Stack::start();
    let dir: PathBuf = stack.dir().to_path_buf();
    let nginx: u32 = stack.var("NGINX_PID").parse().unwrap();
    let fpm: u32 = stack.var("FPM_PID").parse().unwrap();
    assert!(alive(nginx) && alive(fpm));
    let site = stack.site_user();
    let www = User::lookup("www-data").expect("www-data");
    assert_ne!(
        site.uid, www.uid,
        "the site user must differ from nginx's user"
    );
    let workers = pids_of_children(fpm);
    assert_eq!(workers.len(), 8, "pm = static, pm.max_children = 8");
    assert!(
        workers.iter().all(|&p| uid_of(p) == site.uid),
        "PHP runs as {}",
        site.name
    );
    assert!(pids_of_children(nginx)
        .iter()
        .all(|&p| uid_of(p) == www.uid));
    assert!(stack.ctl("status", &[]).contains("nginx: running"));

    // The site: >= 1,000 sitemap pages, non-ASCII slugs with lower-case hex.
    let urls = stack.urls();
    assert!(urls.len() >= 1000, "{} sitemap URLs", urls.len());
    let non_ascii: Vec<&String> = urls.iter().filter(|u| u.contains('%')).collect();
    assert!(non_ascii.len() >= 50, "{} non-ASCII pages", non_ascii.len());
    assert!(non_ascii
        .iter()
        .all(|u| !u.chars().any(|c| c.is_ascii_uppercase()) && u.is_ascii()));
    assert!(urls.contains(&format!("{}product/%e6%b0%b4%e6%bb%b4/", stack.base_url())));

    // One page: MISS then HIT; the file nginx wrote is 0600 www-data, its KEY line as configured.
    let page = format!("{}product/%e6%b0%b4%e6%bb%b4/", stack.base_url());
    let status = |url: &str| {
        let out = Command::new("curl")
            .args([
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code} %header{x-fastcgi-cache}",
            ])
            .arg(url)
            .output()
            .expect("curl");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_eq!(status(&page), "200 MISS");
    assert_eq!(status(&page), "200 HIT");
    assert_eq!(status(&format!("{page}?nocache=1")), "200 BYPASS");
    let files = stack.cache_files();
    assert_eq!(files.len(), 1, "{files:?}");
    let md = fs::metadata(&files[0]).unwrap();
    assert_eq!((md.uid(), md.mode() & 0o777), (www.uid, 0o600));
    let body = fs::read(&files[0]).unwrap();
    let key = "\nKEY: httpGET127.0.0.1/product/%e6%b0%b4%e6%bb%b4/\n";
    assert!(
        body.windows(key.len()).any(|w| w == key.as_bytes()),
        "cache file lacks {key:?}"
    );
    // PHP got the port in HTTP_HOST: its absolute links carry it.
    let html = Command::new("curl")
        .arg("-s")
        .arg(stack.base_url())
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&html.stdout)
        .contains(&format!("href=\"{}shop/\"", stack.base_url())));

    let mut all = vec![nginx, fpm];
    all.extend(pids_of_children(nginx));
    all.extend(pids_of_children(fpm));
    drop(stack);
    std::thread::sleep(Duration::from_millis(100));
    let left: Vec<u32> = all.into_iter().filter(|&p| alive(p)).collect();
    assert!(left.is_empty(), "still running after Drop: {left:?}");
    assert!(!dir.exists(), "stack dir left behind");
}

#[test]
fn stack_start_fails_loudly_without_root() {
    require_root();
    let stack = Stack::start(); // makes sure the site user exists
    let user = stack.site_user();
    let out = Command::new("/usr/bin/setpriv")
        .args(user.setpriv().iter().skip(1))
        .arg(e2e::workspace_root().join("scripts/stack.sh"))
        .args(["start", "/tmp"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("needs root"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The stack validated with the reference tool: GNU wget with NPP's exact Preload All flags,
/// run by the site user, warms every sitemap page for a browser.
#[test]
fn gnu_wget_with_npp_flags_warms_every_sitemap_page() {
    let stack = Stack::start();
    let user = stack.site_user();
    let log = stack.runtime_dir().join("wget.log");
    let pdir = stack.runtime_dir().join("pdir");
    let args = npp::preload_all_args(
        stack.base_url(),
        stack.host(),
        npp::UA_DESKTOP,
        &pdir.to_string_lossy(),
        "0",
    );
    let out = Command::new("/usr/bin/setpriv")
        .args(user.setpriv().iter().skip(1))
        .args([
            "/usr/bin/env",
            "-i",
            "PATH=/usr/bin:/bin",
            "LANG=C.UTF-8",
            "wget",
        ])
        .args(&args)
        .stdout(fs::File::create(&log).unwrap())
        .stderr(fs::File::options().append(true).open(&log).unwrap())
        .status()
        .unwrap();
    let text = fs::read_to_string(&log).unwrap();
    let r = npp::parse_log(&text, stack.host());
    // wget exits 8 because /old-page/ is a 404.
    assert_eq!(out.code(), Some(8), "wget: {out:?}\n{text}");
    let urls = stack.urls();
    assert!(r.complete && r.checked >= urls.len(), "{r:?}");
    assert_eq!(r.broken_urls, [format!("{}old-page/", stack.base_url())]);
    let v = stack.visit(false);
    assert_eq!(
        (v.hits, v.total),
        (urls.len(), urls.len()),
        "misses: {:?}",
        v.misses
    );
}

/// The Vary switch: with `Vary: Accept-Encoding`, wget's `Accept-Encoding: identity` warms a
/// variant no browser asks for (NPP's "double cache"); a browser-encoding request warms the
/// browser's.
#[test]
fn vary_switch_makes_wget_warm_the_wrong_variant() {
    let mut stack = Stack::start();
    stack.set("vary", true);
    let urls = stack.urls();
    let some: Vec<&String> = urls.iter().filter(|u| u.contains('%')).take(5).collect();
    for u in &some {
        let args = npp::preload_single_args(u, stack.host(), npp::UA_DESKTOP, "/tmp/e2e-wget-pdir");
        let st = Command::new("wget").args(&args).status().unwrap();
        assert!(st.success());
    }
    let access = stack.access_log();
    assert!(
        access.contains("\"identity\""),
        "wget sends Accept-Encoding: identity"
    );
    let some: Vec<String> = some.into_iter().cloned().collect();
    let v = stack.visit_urls(&some, false);
    assert_eq!(v.hits, 0, "a browser must miss the identity variant: {v:?}");
    // A browser-like warm request for the same pages makes the next visit hit them.
    for u in &some {
        let st = Command::new("curl")
            .args([
                "-s",
                "-o",
                "/dev/null",
                "-H",
                "Accept-Encoding: gzip, deflate, br, zstd",
            ])
            .arg(u)
            .status()
            .unwrap();
        assert!(st.success());
    }
    let v = stack.visit_urls(&some, false);
    assert_eq!(v.hits, some.len(), "{v:?}");
    let _ = fs::remove_dir_all("/tmp/e2e-wget-pdir");
}

/// A server that cannot start fails `start` loudly, with the log tail, and leaves nothing running.
#[test]
fn stack_start_failure_shows_the_log_tail_and_leaves_nothing_running() {
    require_root();
    let dir = std::env::temp_dir().join(format!("e2e-failing-stack.{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir(&dir).unwrap();
    let out = Command::new(e2e::workspace_root().join("scripts/stack.sh"))
        .arg("start")
        .arg(&dir)
        .env("STACK_WORKERS", "0")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    let running = Command::new("pgrep")
        .args(["-f", &dir.to_string_lossy()])
        .output()
        .unwrap();
    let _ = fs::remove_dir_all(&dir);
    assert!(!out.status.success(), "start must fail");
    assert!(err.contains("php-fpm failed to start"), "{err}");
    assert!(
        err.contains("pm.max_children must be a positive value"),
        "log tail missing: {err}"
    );
    assert!(
        running.stdout.is_empty(),
        "left running: {}",
        String::from_utf8_lossy(&running.stdout)
    );
}
