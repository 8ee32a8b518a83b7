//! The whole lifecycle as NPP drives it: the PHP-FPM site user runs the real setuid `safexec`
//! with `nohup cache-preload` and NPP's wget flags, redirected into a log; NPP's parsers read the
//! log; a browser then hits the cache. Also `--kill`, the mobile pass, `--json` and the cache index.

use std::collections::HashSet;
use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use e2e::{alive, bins, npp, proc_status_field, wait_comm, wait_gone, SiteShell, Stack, User};

const CRAWL_LIMIT: Duration = Duration::from_secs(180);

fn nobody() -> User {
    User::lookup("nobody").expect("nobody")
}

/// Spawns NPP's Preload All through safexec, checks the PID is the crawler running as nobody,
/// waits for it and returns the log text.
fn npp_preload(stack: &Stack, ua: &str, log_name: &str) -> String {
    let sh = SiteShell::new(stack.site_user());
    let log = stack.runtime_dir().join(log_name);
    let args = npp::preload_all_args(stack.base_url(), stack.host(), ua, "/tmp", "0");
    let pid = sh.spawn_preload(&args, &log);
    check_job_identity(pid, &log);
    wait_gone(pid, CRAWL_LIMIT);
    fs::read_to_string(&log).expect("read log")
}

/// `$!` must be the crawler itself (safexec and nohup exec in place), run as `nobody` with
/// NO_NEW_PRIVS: NPP's Purge All checks `ps -o user=` for `nobody`.
fn check_job_identity(pid: u32, log: &Path) {
    assert!(
        wait_comm(pid, "cache-preload", Duration::from_secs(10)),
        "PID {pid} printed by `$!` never became cache-preload (comm {:?}); log:\n{}",
        fs::read_to_string(format!("/proc/{pid}/comm")).ok(),
        fs::read_to_string(log).unwrap_or_default()
    );
    let uid = proc_status_field(pid, "Uid").unwrap_or_default();
    let want = nobody().uid.to_string();
    if !uid.is_empty() {
        assert!(
            uid.split_whitespace().all(|u| u == want),
            "crawler ids {uid:?}, want nobody ({want}) for real, effective, saved, fs"
        );
        assert_eq!(
            proc_status_field(pid, "NoNewPrivs").as_deref(),
            Some("1"),
            "NoNewPrivs"
        );
    }
}

fn assert_npp_log(stack: &Stack, text: &str, urls: &[String]) -> npp::LogReport {
    assert!(
        npp::format_violations(text).is_empty(),
        "log format: {:?}",
        npp::format_violations(text)
    );
    let r = npp::parse_log(text, stack.host());
    let tail: String = text.lines().rev().take(8).collect::<Vec<_>>().join("\n");
    assert!(
        r.complete,
        "no FINISHED line (log_complete false); tail:\n{tail}"
    );
    assert!(
        r.finished.is_some(),
        "FINISHED line fails the trimmed-line regex; tail:\n{tail}"
    );
    assert!(
        r.wall_clock.is_some(),
        "Total wall clock time unparsable; tail:\n{tail}"
    );
    assert!(
        r.checked >= urls.len(),
        "checked {} < {} sitemap pages",
        r.checked,
        urls.len()
    );
    assert_eq!(
        r.downloaded_files,
        Some(r.checked as u64),
        "Downloaded: N files = fetched pages; tail:\n{tail}"
    );
    assert!(
        r.downloaded_size.is_some(),
        "Downloaded size unparsable; tail:\n{tail}"
    );
    assert!(
        r.downloaded_speed.is_some(),
        "Downloaded speed unparsable; tail:\n{tail}"
    );
    assert_eq!(
        r.errors, 1,
        "exactly the one broken link (/old-page/): {r:?}"
    );
    assert_eq!(r.errors_404_stats, 1);
    assert_eq!(r.broken_urls, [format!("{}old-page/", stack.base_url())]);
    assert!(
        r.advanced_invalid.is_empty(),
        "URLs PHP would refuse: {:?}",
        r.advanced_invalid
    );
    let seen: HashSet<&str> = r.advanced_urls.iter().map(String::as_str).collect();
    let missing: Vec<&String> = urls.iter().filter(|u| !seen.contains(u.as_str())).collect();
    assert!(
        missing.is_empty(),
        "sitemap URLs not in the Advanced-tab parse: {:?}",
        &missing[..missing.len().min(5)]
    );
    r
}

/// Issue 7, main case: `safexec nohup cache-preload <NPP flags> > LOG 2>&1 < /dev/null & echo $!`
/// as the site user, with the Vary switch on; the log satisfies NPP's parsers; a browser then
/// hits 100 % of the sitemap, the non-ASCII pages included.
#[test]
fn npp_preload_through_safexec_warms_every_page_for_a_browser_with_vary() {
    let mut stack = Stack::start();
    stack.set("vary", true);
    let urls = stack.urls();
    stack.purge();
    let t0 = Instant::now();
    let text = npp_preload(&stack, npp::UA_DESKTOP, "nppp-wget.log");
    let took = t0.elapsed();
    assert_npp_log(&stack, &text, &urls);
    eprintln!("preload through safexec: {} pages in {took:?}", urls.len());

    // The crawler asked for the non-ASCII pages with the bytes the links carry (lower-case hex).
    let access = stack.access_log();
    assert!(
        access.contains("\"GET /product/%e6%b0%b4%e6%bb%b4/ HTTP/1.1\" 200 MISS"),
        "crawler request for 水滴 not lower-case"
    );
    assert!(!access.contains("%E6%B0%B4"), "upper-case %XX on the wire");

    let v = stack.visit(false);
    assert_eq!(
        (v.hits, v.total),
        (urls.len(), urls.len()),
        "browser HIT {:.1} %; misses: {:?}",
        v.percent(),
        &v.misses[..v.misses.len().min(10)]
    );
    let non_ascii = urls.iter().filter(|u| u.contains('%')).count();
    assert!(non_ascii >= 50);
    // The visitor's requests went out lower-case as well, and they were HITs.
    let access = stack.access_log();
    let hit_line = format!(
        "\"GET /product/%e6%b0%b4%e6%bb%b4/ HTTP/1.1\" 200 HIT \"gzip, deflate, br, zstd\" \"{}\"",
        e2e::BROWSER_UA
    );
    assert!(
        access.contains(&hit_line),
        "visitor line {hit_line:?} missing"
    );
}

/// The mobile pass (NPP's second run with the mobile UA) warms the mobile cache key.
#[test]
fn mobile_pass_warms_the_mobile_cache_key() {
    let mut stack = Stack::start();
    stack.set("mobile-key", true);
    let urls = stack.urls();
    stack.purge();
    let text = npp_preload(&stack, npp::UA_DESKTOP, "nppp-wget.log");
    assert_npp_log(&stack, &text, &urls);
    let pages = stack.cache_files().len();
    // NPP rewrites the same log for the mobile pass.
    let text = npp_preload(&stack, npp::UA_MOBILE, "nppp-wget.log");
    assert_npp_log(&stack, &text, &urls);
    assert_eq!(
        stack.cache_files().len(),
        2 * pages,
        "the mobile pass stores a second key per page"
    );
    let m = stack.visit(true);
    assert_eq!(
        (m.hits, m.total),
        (urls.len(), urls.len()),
        "mobile misses: {:?}",
        &m.misses[..m.misses.len().min(10)]
    );
    let d = stack.visit(false);
    assert_eq!(
        (d.hits, d.total),
        (urls.len(), urls.len()),
        "desktop misses: {:?}",
        &d.misses[..d.misses.len().min(10)]
    );
}

/// Purge All stops a preload: `safexec --kill=<pid>` from the site user ends the running crawl,
/// which then has no FINISHED line (NPP shows "interrupted").
#[test]
fn safexec_kill_from_the_site_user_stops_a_running_crawl() {
    let stack = Stack::start();
    stack.purge();
    let sh = SiteShell::new(stack.site_user());
    let log = stack.runtime_dir().join("nppp-wget.log");
    // --wait=0.3: one request at a time with a pause, so the crawl is still running.
    let args = npp::preload_all_args(
        stack.base_url(),
        stack.host(),
        npp::UA_DESKTOP,
        "/tmp",
        "0.3",
    );
    let pid = sh.spawn_preload(&args, &log);
    check_job_identity(pid, &log);
    let t0 = Instant::now();
    while npp::parse_log(&fs::read_to_string(&log).unwrap_or_default(), stack.host()).checked < 3 {
        assert!(
            alive(pid),
            "crawl ended early:\n{}",
            fs::read_to_string(&log).unwrap_or_default()
        );
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "no progress in the log"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let (code, out) = sh.safexec_kill(pid);
    assert_eq!(code, 0, "safexec --kill={pid}: {out}");
    assert!(
        out.contains("Killed PID"),
        "NPP looks for `Killed PID`: {out:?}"
    );
    assert!(out.contains(&format!("Killed PID {pid}")), "{out:?}");
    // NPP waits 250 ms and re-checks liveness.
    wait_gone(pid, Duration::from_secs(3));
    std::thread::sleep(Duration::from_millis(200));
    let text = fs::read_to_string(&log).unwrap();
    let r = npp::parse_log(&text, stack.host());
    assert!(
        !r.complete && r.finished.is_none(),
        "a killed crawl must not print FINISHED:\n{text}"
    );
    assert!(
        r.checked > 0,
        "interrupted = done && log_found && !complete && checked > 0"
    );
    assert!(r.checked < stack.urls().len());
}

fn json_lines(out: &str) -> Vec<serde_json::Value> {
    out.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

/// `cache-preload --json` (native dialect, run by the site user through safexec) reports counts
/// that match the cache files nginx wrote.
#[test]
fn json_summary_counts_match_cache_files_on_disk() {
    let stack = Stack::start();
    stack.purge();
    let sh = SiteShell::new(stack.site_user());
    let script = format!(
        "{} cache-preload --json --no-progress --reject-regex {} {}",
        e2e::sh_quote(&bins().safexec.to_string_lossy()),
        e2e::sh_quote(npp::REJECT_REGEX),
        e2e::sh_quote(stack.base_url())
    );
    let (code, out, err) = sh.run(&script);
    let events = json_lines(&out);
    let summary = events
        .iter()
        .rev()
        .find(|e| e["event"] == "summary")
        .unwrap_or_else(|| panic!("no summary event (exit {code}); stderr: {err}"));
    // Exit 8 = partial: the one 404 (/old-page/).
    assert_eq!(code, 8, "exit code; summary {summary}; stderr {err}");
    let files = stack.cache_files().len() as u64;
    let ok = summary["ok"].as_u64().expect("ok");
    let pages_events = events
        .iter()
        .filter(|e| e["event"] == "page" && e["status"] == 200)
        .count() as u64;
    assert_eq!(
        ok, files,
        "summary ok vs cache files on disk; summary {summary}"
    );
    assert_eq!(pages_events, files, "200 page events vs cache files");
    assert_eq!(summary["http_errors"].as_u64(), Some(1), "{summary}");
    assert_eq!(summary["failed"].as_u64(), Some(0), "{summary}");
    let cache = &summary["cache"];
    assert_eq!(
        cache["MISS"].as_u64(),
        Some(files + 1),
        "every page a MISS (+ the 404); {summary}"
    );
    assert_eq!(cache["HIT"].as_u64(), Some(0), "{summary}");
    assert!(files as usize >= stack.urls().len());
}

/// The computed cache index (`--cache-path/--cache-key/--levels --index-out`) names files that
/// exist and carry that key, and covers every file on disk.
#[test]
fn cache_index_names_files_that_exist() {
    let stack = Stack::start();
    stack.purge();
    let index = stack.dir().join("index.jsonl");
    // As nginx's user: the cache files are 0600 www-data (no safexec: it is a local admin tool here).
    let www = User::lookup("www-data").expect("www-data");
    fs::write(&index, "").unwrap();
    Command::new("chown")
        .arg("www-data")
        .arg(&index)
        .status()
        .unwrap();
    let out = Command::new("/usr/bin/setpriv")
        .args(www.setpriv().iter().skip(1))
        .arg(&bins().cache_preload_built)
        .args([
            "--json",
            "--no-progress",
            "--reject-regex",
            npp::REJECT_REGEX,
        ])
        .arg("--cache-path")
        .arg(stack.cache_dir())
        .args([
            "--cache-key",
            stack.var("CACHE_KEY"),
            "--levels",
            stack.var("CACHE_LEVELS"),
        ])
        .arg("--index-out")
        .arg(&index)
        .arg(stack.base_url())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let summary = json_lines(&stdout)
        .into_iter()
        .rev()
        .find(|e| e["event"] == "summary")
        .unwrap_or_else(|| panic!("no summary: {}", String::from_utf8_lossy(&out.stderr)));
    let entries = json_lines(&fs::read_to_string(&index).unwrap());
    let on_disk: HashSet<String> = stack
        .cache_files()
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    assert!(!entries.is_empty(), "empty index; summary {summary}");
    let mut named = HashSet::new();
    for e in &entries {
        let file = e["file"].as_str().expect("file");
        let key = e["key"].as_str().expect("key");
        assert!(Path::new(file).is_file(), "index names a missing file: {e}");
        let body = fs::read(file).unwrap();
        let line = format!("\nKEY: {key}\n");
        assert!(
            body.windows(line.len()).any(|w| w == line.as_bytes()),
            "{file} lacks {line:?}"
        );
        assert_eq!(e["on_disk"], "match", "{e}");
        named.insert(file.to_owned());
    }
    assert_eq!(named, on_disk, "index files vs cache files on disk");
    assert_eq!(
        summary["index"]["match"].as_u64(),
        Some(on_disk.len() as u64),
        "{summary}"
    );
    assert_eq!(
        summary["index"]["missing_or_different"].as_u64(),
        Some(0),
        "{summary}"
    );
    // The 水滴 page's file is where nginx's levels=1:2 put it.
    let want = "httpGET127.0.0.1/product/%e6%b0%b4%e6%bb%b4/";
    let e = entries
        .iter()
        .find(|e| e["key"] == want)
        .expect("index entry for 水滴");
    let md5 = e["md5"].as_str().unwrap();
    let rel = format!("{}/{}/{md5}", &md5[31..], &md5[29..31]);
    assert_eq!(
        e["file"].as_str().unwrap(),
        stack.cache_dir().join(rel).to_string_lossy()
    );
}

/// NPP's 300 ms start test (§2.2): `proc_open('exec <safexec> cache-preload --quiet … --no-cache
/// …')`, wait 300 ms, `proc_get_status`. A valid configuration must still run then; a bad
/// "Exclude Endpoints" regex must already have exited non-zero.
#[test]
fn npp_start_test_valid_runs_past_300ms_and_bad_regex_fails_fast() {
    let stack = Stack::start();
    let sh = SiteShell::new(stack.site_user());
    let sx = e2e::sh_quote(&bins().safexec.to_string_lossy());
    let run = |regex: &str| {
        let args = npp::start_test_args(stack.base_url(), stack.host(), regex);
        let quoted: Vec<String> = args.iter().map(|a| e2e::sh_quote(a)).collect();
        let script = format!("exec {sx} cache-preload {}", quoted.join(" "));
        let mut cmd = sh.command(&script);
        cmd.stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
        let mut child = cmd.spawn().expect("spawn start test");
        std::thread::sleep(Duration::from_millis(300));
        let status = child.try_wait().expect("try_wait");
        (child, status)
    };

    let (mut child, status) = run(npp::REJECT_REGEX);
    assert!(
        status.is_none(),
        "a valid crawl exited within 300 ms: {status:?}"
    );
    let pid = child.id();
    assert!(
        wait_comm(pid, "cache-preload", Duration::from_secs(2)),
        "exec in place: PID {pid} is not the crawler"
    );
    // The plugin then stops the test process: `safexec --kill=<pid>`.
    let (code, out) = sh.safexec_kill(pid);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(&format!("Killed PID {pid}")), "{out:?}");
    let st = child.wait().expect("wait");
    assert!(!st.success());

    let (mut child, status) = run("(unclosed");
    let st = match status {
        Some(st) => st,
        None => {
            let _ = child.kill();
            panic!("a bad reject regex did not exit within 300 ms");
        }
    };
    let mut err = String::new();
    use std::io::Read;
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(!st.success(), "bad regex must exit non-zero");
    assert!(
        err.contains("--reject-regex") && err.lines().count() == 1,
        "one clear error line: {err:?}"
    );
}
