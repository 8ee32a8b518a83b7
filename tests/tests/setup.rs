//! cache-setup end to end (issue 18): `detect`, `doctor` and `apply` on real configurations —
//! the project's nginx + PHP-FPM stack and the fixture hosts of tests/fixtures/nginx-confs/
//! (each checked with `nginx -t -c` and `php-fpm -t -y`) — then site users purging and preloading
//! through the setuid safexec with the file `apply` wrote. Needs root; never skips.

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, Output};

use e2e::setup::{cache_setup, ensure_user, tools, Host};
use e2e::{must, Stack, User};

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn show(o: &Output) -> String {
    format!(
        "status {}\n--- stdout\n{}\n--- stderr\n{}",
        o.status,
        text(&o.stdout),
        text(&o.stderr)
    )
}

/// `cache-setup SUB HOST_ARGS... EXTRA...`.
fn cs(sub: &str, host_args: &[String], extra: &[&str]) -> Output {
    let mut v: Vec<&str> = vec![sub];
    v.extend(host_args.iter().map(String::as_str));
    v.extend_from_slice(extra);
    cache_setup(&v)
}

/// `doctor --json`: the exit code and the (id, subject) → fix of every trap.
fn doctor(host_args: &[String], extra: &[&str]) -> (i32, Vec<(String, String, String)>) {
    let mut a = vec!["--json"];
    a.extend_from_slice(extra);
    let out = cs("doctor", host_args, &a);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("doctor --json: {e}\n{}", show(&out)));
    let traps = v["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .filter(|c| c["trap"] == true)
        .map(|c| {
            (
                c["id"].as_str().unwrap().to_string(),
                c["subject"].as_str().unwrap().to_string(),
                c["fix"].as_str().unwrap().to_string(),
            )
        })
        .collect::<Vec<_>>();
    assert_eq!(v["traps"].as_u64(), Some(traps.len() as u64));
    (out.status.code().unwrap_or(-1), traps)
}

fn site_trap_ids(traps: &[(String, String, String)]) -> BTreeSet<String> {
    // Host and safexec.conf checks depend on the machine; the site traps on the fixture.
    traps
        .iter()
        .map(|t| t.0.clone())
        .filter(|id| {
            !id.starts_with("safexec") && !id.starts_with("cgroup") && !id.starts_with("landlock")
        })
        .collect()
}

#[test]
fn project_stack_detect_doctor_and_apply() {
    let stack = Stack::start();
    let dir = stack.dir().display().to_string();
    let port = stack.var("PORT").to_string();
    let host_args: Vec<String> = [
        "--nginx-conf",
        &format!("{dir}/nginx.conf"),
        "--fpm-conf",
        &format!("{dir}/php-fpm.conf"),
        "--php-dir",
        "/nonexistent",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();

    // detect, from the files and from `nginx -T` of the same configuration: the same sites.
    let out = cs("detect", &host_args, &["--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let files: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let dump = must(
        Command::new("nginx")
            .arg("-T")
            .arg("-c")
            .arg(format!("{dir}/nginx.conf")),
    );
    fs::write(format!("{dir}/nginx-T.txt"), &dump.stdout).expect("write dump");
    let mut a = vec!["detect", "--json", "--nginx-dump"];
    let dump_path = format!("{dir}/nginx-T.txt");
    a.push(&dump_path);
    a.extend(host_args[2..].iter().map(String::as_str));
    let out = cache_setup(&a);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let dumped: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(files["sites"], dumped["sites"], "files and nginx -T agree");
    assert_eq!(files["caches"], dumped["caches"]);

    // The default source: `nginx -T` run by cache-setup itself (through --nginx-bin, here a
    // wrapper that points nginx at the stack's file).
    let wrapper = format!("{dir}/nginx-wrapper");
    fs::write(
        &wrapper,
        format!("#!/bin/sh\nexec nginx -c {dir}/nginx.conf \"$@\"\n"),
    )
    .unwrap();
    fs::set_permissions(
        &wrapper,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let out = cache_setup(
        &["detect", "--json", "--nginx-bin", &wrapper]
            .into_iter()
            .chain(host_args[2..].iter().map(String::as_str))
            .collect::<Vec<_>>(),
    );
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let live: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(
        files["sites"], live["sites"],
        "files and a live nginx -T agree"
    );
    assert!(live["source"]
        .as_str()
        .unwrap()
        .ends_with("nginx-wrapper -T"));

    let cache = &files["caches"][0];
    assert_eq!(cache["path"], format!("{dir}/cache"));
    assert_eq!(cache["zone"], "e2e");
    assert_eq!(cache["levels"], "1:2");
    assert_eq!(cache["inactive"], "1d");
    assert_eq!(cache["use_temp_path"], "off");
    let sites = files["sites"].as_array().expect("sites");
    assert_eq!(sites.len(), 1, "one cached location: {sites:?}");
    let s = &sites[0];
    assert_eq!(s["context"], "location /");
    assert_eq!(
        s["key"]["template"],
        "$scheme$request_method$host$request_uri"
    );
    assert_eq!(s["key"]["origin"], "inherited from http");
    assert_eq!(s["pool_user"], stack.var("SITE_USER"));
    assert_eq!(
        s["listens"][0]["port"].as_u64(),
        Some(port.parse().unwrap())
    );
    assert_eq!(files["worker_user"], "www-data");

    // The human table names the same facts.
    let out = cs("detect", &host_args, &[]);
    let table = text(&out.stdout);
    assert!(
        table.contains(&format!("{dir}/cache")) && table.contains("nppsite:nppsite"),
        "{table}"
    );

    // doctor: the stack's Vary and /tmp traps, not the port one (it passes $host:$server_port).
    let conf = format!("{dir}/safexec.conf");
    let (code, traps) = doctor(&host_args, &["--config", &conf]);
    assert_eq!(code, 1);
    let ids = site_trap_ids(&traps);
    assert_eq!(
        ids,
        ["cache-under-world-writable", "vary-honoured"]
            .iter()
            .map(|s| s.to_string())
            .collect(),
        "{traps:?}"
    );
    assert!(
        traps.iter().all(|t| !t.2.is_empty()),
        "every trap has a fix: {traps:?}"
    );
    assert!(
        traps.iter().any(|t| t.0 == "safexec-conf-missing"),
        "{traps:?}"
    );

    // apply: --dry-run shows the diff and writes nothing; then the line; then nothing to do.
    fs::write(&conf, "# the administrator's note\nmemory_max = 256M\n").unwrap();
    let out = cs("apply", &host_args, &["--config", &conf, "--dry-run"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let line = format!(
        "cache_root = {dir}/cache www-data allow={} key=$scheme$request_method$host$request_uri levels=1:2 url=http://127.0.0.1:{port}",
        stack.var("SITE_USER")
    );
    assert!(
        text(&out.stdout).contains(&format!("\n+{line}\n")),
        "{}",
        show(&out)
    );
    assert_eq!(
        fs::read_to_string(&conf).unwrap(),
        "# the administrator's note\nmemory_max = 256M\n"
    );
    let out = cs("apply", &host_args, &["--config", &conf]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let written = fs::read_to_string(&conf).unwrap();
    assert!(
        written.starts_with("# the administrator's note\nmemory_max = 256M\n"),
        "{written}"
    );
    assert!(written.lines().any(|l| l == line), "{written}");
    assert_eq!(
        fs::read_to_string(format!("{conf}.bak")).unwrap(),
        "# the administrator's note\nmemory_max = 256M\n"
    );
    let (code, traps) = doctor(&host_args, &["--config", &conf]);
    assert_eq!(code, 1);
    assert!(
        !traps.iter().any(|t| t.0.starts_with("safexec-conf")),
        "{traps:?}"
    );
}

#[test]
fn fixture_hosts_report_each_trap_with_its_fix() {
    let want: [(&str, &[&str]); 4] = [
        ("two-sites", &[]),
        ("port", &["port-dropped-from-host"]),
        ("vary", &["vary-honoured", "zlib-output-compression"]),
        (
            "tmp",
            &[
                "cache-under-world-writable",
                "key-uses-http-host",
                "key-without-scheme",
                "open-file-cache",
                "pool-runs-as-nginx-user",
                "proc-open-disabled",
            ],
        ),
    ];
    for (name, ids) in want {
        let host = Host::new(name);
        let (code, traps) = doctor(&host.sources(), &["--config", &host.path("safexec.conf")]);
        assert_eq!(code, 1, "{name}: safexec.conf is missing at least");
        let got = site_trap_ids(&traps);
        let want: BTreeSet<String> = ids.iter().map(|s| s.to_string()).collect();
        assert_eq!(got, want, "{name}: {traps:#?}");
        let fix = |id: &str| {
            traps
                .iter()
                .find(|t| t.0 == id)
                .map(|t| t.2.clone())
                .unwrap_or_default()
        };
        match name {
            "port" => assert!(
                fix("port-dropped-from-host")
                    .contains("fastcgi_param HTTP_HOST $host:$server_port;"),
                "{traps:?}"
            ),
            "vary" => {
                assert!(
                    fix("vary-honoured")
                        .contains("fastcgi_ignore_headers Cache-Control Expires Vary;"),
                    "{traps:?}"
                );
                assert!(
                    fix("zlib-output-compression")
                        .contains("php_admin_flag[zlib.output_compression] = off"),
                    "{traps:?}"
                );
            }
            "tmp" => {
                assert!(
                    fix("open-file-cache").contains("open_file_cache off;"),
                    "{traps:?}"
                );
                assert!(
                    fix("key-uses-http-host").contains("$request_method$host$request_uri"),
                    "{traps:?}"
                );
                assert!(
                    fix("proc-open-disabled").contains("exec,passthru,shell_exec"),
                    "{traps:?}"
                );
                assert!(
                    fix("cache-under-world-writable").contains("/var/cache/nginx/tmpc"),
                    "{traps:?}"
                );
            }
            _ => {}
        }
        // The human form prints each trap with a `fix:` line, and exits 1 too.
        let out = cs(
            "doctor",
            &host.sources(),
            &["--config", &host.path("safexec.conf")],
        );
        assert_eq!(out.status.code(), Some(1));
        let t = text(&out.stdout);
        assert_eq!(
            t.matches("TRAP ").count(),
            t.matches("     fix: ").count(),
            "{t}"
        );
    }
}

#[test]
fn two_sites_detect_through_includes_and_upstream() {
    let host = Host::new("two-sites");
    let out = cs("detect", &host.sources(), &["--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let cache = host.cache.display().to_string();
    let caches = v["caches"].as_array().unwrap();
    assert_eq!(caches.len(), 2);
    assert_eq!(
        caches[1]["path"],
        format!("{cache}/b"),
        "quoted path unquoted"
    );
    assert_eq!(caches[1]["levels"], "2");
    let sites = v["sites"].as_array().unwrap();
    let brief: Vec<(String, String, String, String)> = sites
        .iter()
        .map(|s| {
            (
                s["names"][0].as_str().unwrap().to_string(),
                s["key"]["template"].as_str().unwrap().to_string(),
                s["key"]["origin"].as_str().unwrap().to_string(),
                s["pool_user"].as_str().unwrap_or("-").to_string(),
            )
        })
        .collect();
    assert_eq!(
        brief,
        [
            (
                "localhost".into(),
                "$scheme$request_method$host$request_uri".into(),
                "inherited from http".into(),
                "setupa".into()
            ),
            (
                "127.0.0.1".into(),
                "$scheme$host$request_uri".into(),
                "inherited from server".into(),
                "setupb".into()
            ),
        ]
    );
    assert_eq!(
        sites[1]["endpoints"][0],
        format!("unix:{}", host.path("run/b.sock")),
        "upstream resolved"
    );
    assert_eq!(sites[1]["pool_group"], "setupb");
}

/// Purge and preload as each site user through the setuid safexec, with the file apply wrote.
#[test]
fn apply_lets_each_site_user_purge_and_preload_its_own_cache_only() {
    let mut host = Host::new("two-sites");
    host.start();
    let (pa, pb) = host.ports;
    let cache = host.cache.display().to_string();
    let conf = host.path("safexec.conf");
    let admin = format!(
        "# kept by apply\nmemory_max = 256M\ncache_root = {cache}/b www-data allow=@setupadmins key=$scheme$request_method$host$request_uri levels=1:2\n"
    );
    fs::write(&conf, &admin).unwrap();
    // doctor sees B's line out of date (key, levels, setupb not allowed) and A's missing.
    let (_, traps) = doctor(&host.sources(), &["--config", &conf]);
    let conf_traps: Vec<(&str, &str)> = traps
        .iter()
        .filter(|t| t.0.starts_with("safexec-conf"))
        .map(|t| (t.0.as_str(), t.1.as_str()))
        .collect();
    let (ca, cb) = (format!("{cache}/a"), format!("{cache}/b"));
    assert_eq!(
        conf_traps,
        [
            ("safexec-conf-no-root", ca.as_str()),
            ("safexec-conf-stale", cb.as_str()),
            ("safexec-conf-stale", cb.as_str())
        ],
        "{traps:?}"
    );
    let out = cs("apply", &host.sources(), &["--config", &conf]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let written = fs::read_to_string(&conf).unwrap();
    assert_eq!(
        written,
        format!(
            "# kept by apply\nmemory_max = 256M\n\
             cache_root = {cache}/b www-data allow=setupb,@setupadmins key=$scheme$host$request_uri levels=2 url=http://127.0.0.1:{pb}\n\
             \n# cache_root lines written by cache-setup apply\n\
             cache_root = {cache}/a www-data allow=setupa key=$scheme$request_method$host$request_uri levels=1:2 url=http://localhost:{pa}\n"
        )
    );
    let md = fs::metadata(&conf).unwrap();
    assert_eq!((md.uid(), md.gid(), md.mode() & 0o7777), (0, 0, 0o644));
    assert_eq!(fs::read_to_string(format!("{conf}.bak")).unwrap(), admin);
    // Idempotent: nothing changes on a second run (not even the backup).
    let out = cs("apply", &host.sources(), &["--config", &conf]);
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stdout).contains("up to date"), "{}", show(&out));
    assert_eq!(fs::read_to_string(&conf).unwrap(), written);
    assert_eq!(fs::read_to_string(format!("{conf}.bak")).unwrap(), admin);

    let (a, b) = (ensure_user("setupa"), ensure_user("setupb"));
    let conf = Path::new(&conf);
    let ok = |o: &Output, what: &str| assert_eq!(o.status.code(), Some(0), "{what}: {}", show(o));
    let url_a = |p: &str| format!("http://localhost:{pa}{p}");
    let url_b = |p: &str| format!("http://127.0.0.1:{pb}{p}");

    // Preload: each user warms its own site through safexec (cache-preload runs as nobody).
    let preload = |u: &User, urls: &[String]| {
        let mut a = vec!["cache-preload", "--no-recursive", "--no-progress"];
        a.extend(urls.iter().map(String::as_str));
        host.safexec_as(u, conf, &a)
    };
    let before_a = host.cache_files("a").len();
    ok(
        &preload(&a, &[url_a("/one/"), url_a("/two/")]),
        "setupa preloads site A",
    );
    ok(&preload(&b, &[url_b("/one/")]), "setupb preloads site B");
    assert_eq!(
        host.cache_files("a").len(),
        before_a + 2,
        "A's pages cached"
    );
    let b_files = host.cache_files("b");
    assert_eq!(
        b_files.len(),
        2,
        "B holds the warm-up and /one/: {b_files:?}"
    );
    assert!(
        b_files
            .iter()
            .all(|f| f.parent().unwrap().parent().unwrap() == host.cache.join("b")),
        "levels=2: one directory level: {b_files:?}"
    );
    let status = |url: &str| {
        let o = must(Command::new("curl").args(["-s", "-o", "/dev/null", "-D", "-", url]));
        text(&o.stdout)
            .lines()
            .find_map(|l| {
                l.strip_prefix("X-FastCGI-Cache: ")
                    .or_else(|| l.strip_prefix("x-fastcgi-cache: "))
            })
            .unwrap_or("")
            .trim()
            .to_string()
    };
    assert_eq!(status(&url_a("/one/")), "HIT");

    // Purge: own URL works; the other site's URL, root or everything is refused.
    let purge = |u: &User, args: &[&str]| {
        let mut a = vec!["cache-purge"];
        a.extend_from_slice(args);
        host.safexec_as(u, conf, &a)
    };
    ok(&purge(&a, &[&url_a("/one/")]), "setupa purges its URL");
    assert_eq!(host.cache_files("a").len(), before_a + 1);
    assert_eq!(status(&url_a("/one/")), "MISS", "purged entry refetched");
    // B's URL through setupa's only root is looked up in A's cache: nothing of B is touched.
    let o = purge(&a, &[&url_b("/one/")]);
    assert!(
        text(&o.stdout).contains("not cached") || o.status.code() != Some(0),
        "{}",
        show(&o)
    );
    // Naming B's cache, or purging everything, reaches only setupa's own root or is refused.
    let o = purge(&a, &["--cache-path", &format!("{cache}/b"), "--all"]);
    assert_ne!(
        o.status.code(),
        Some(0),
        "setupa must not purge B's root: {}",
        show(&o)
    );
    assert_eq!(host.cache_files("b").len(), 2, "B untouched by setupa");
    let o = purge(&b, &[&url_a("/two/")]);
    assert!(
        text(&o.stdout).contains("not cached") || o.status.code() != Some(0),
        "{}",
        show(&o)
    );
    assert_eq!(
        host.cache_files("a").len(),
        before_a + 2,
        "A untouched by setupb (the MISS above stored /one/ again)"
    );
    ok(&purge(&b, &["--all"]), "setupb purges all of B");
    assert_eq!(host.cache_files("b").len(), 0);
    assert_eq!(
        host.cache_files("a").len(),
        before_a + 2,
        "A untouched by setupb"
    );
}

#[test]
fn malformed_configurations_fail_with_file_and_line_and_write_nothing() {
    let host = Host::new("two-sites");
    let d = &host.dir;
    let conf = host.path("safexec.conf");
    let original = "# untouched\n";
    fs::write(&conf, original).unwrap();
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "include loop",
            format!("{}/sites/loop.conf", d.display()),
            "include loop:",
        ),
        (
            "unterminated quote",
            format!("{}/sites/a.conf", d.display()),
            "unterminated quoted string",
        ),
    ];
    // An include loop through two files, and a quote never closed.
    fs::write(
        d.join("sites/loop.conf"),
        "# loops back\ninclude sites/loop2.conf;\n",
    )
    .unwrap();
    fs::write(d.join("sites/loop2.conf"), "\ninclude sites/*.conf;\n").unwrap();
    let run = |what: &str, file: &str, want: &str| {
        let out = cs("apply", &host.sources(), &["--config", &conf]);
        assert_eq!(out.status.code(), Some(2), "{what}: {}", show(&out));
        let err = text(&out.stderr);
        assert_eq!(err.lines().count(), 1, "{what}: one line: {err}");
        assert!(
            err.starts_with(&format!("cache-setup: {file}:")) || err.contains(&format!("{file}:")),
            "{what}: {err}"
        );
        assert!(err.contains(want), "{what}: {err}");
        assert_eq!(
            fs::read_to_string(&conf).unwrap(),
            original,
            "{what}: nothing written"
        );
        assert!(!Path::new(&format!("{conf}.bak")).exists());
        let stray: Vec<_> = fs::read_dir(d)
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().contains("cache-setup"))
            .collect();
        assert!(stray.is_empty(), "{what}: temp files left: {stray:?}");
    };
    run(
        cases[0].0,
        &format!("{}/sites/loop2.conf", d.display()),
        cases[0].2,
    );
    fs::remove_file(d.join("sites/loop.conf")).unwrap();
    fs::remove_file(d.join("sites/loop2.conf")).unwrap();
    let a = fs::read_to_string(d.join("sites/a.conf")).unwrap();
    fs::write(
        d.join("sites/a.conf"),
        a.replace("server_name localhost;", "server_name \"localhost;"),
    )
    .unwrap();
    run(cases[1].0, &cases[1].1, cases[1].2);
    fs::write(d.join("sites/a.conf"), a).unwrap();

    // nginx -T itself refusing the configuration: its message, on one line.
    let wrapper = host.path("nginx-wrapper");
    fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nexec nginx -c {} \"$@\"\n",
            host.path("broken.conf")
        ),
    )
    .unwrap();
    fs::set_permissions(
        &wrapper,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    fs::write(
        host.path("broken.conf"),
        "events {}\nhttp { bogus_directive on; }\n",
    )
    .unwrap();
    let out = cache_setup(&[
        "apply",
        "--config",
        &conf,
        "--nginx-bin",
        &wrapper,
        "--php-dir",
        "/nonexistent",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    let err = text(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("-T failed") && err.contains("unknown directive \"bogus_directive\""),
        "{err}"
    );
    assert!(err.contains("broken.conf:2"), "{err}");
    assert_eq!(fs::read_to_string(&conf).unwrap(), original);

    // apply never writes nginx's or PHP-FPM's own files.
    let fpm_conf = host.path("php-fpm.conf");
    let before = fs::read(&fpm_conf).unwrap();
    let out = cs("apply", &host.sources(), &["--config", &fpm_conf]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(
        text(&out.stderr).contains("one of nginx's or PHP-FPM's own files"),
        "{}",
        show(&out)
    );
    assert_eq!(fs::read(&fpm_conf).unwrap(), before);

    // A pool file PHP-FPM's include names but this user cannot read: run as an unprivileged
    // user, the error names the include line and the file.
    let pool = d.join("pool.d/b.conf");
    fs::set_permissions(&pool, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let nobody = User::lookup("nobody").expect("nobody");
    let mut cmd = Command::new(nobody.setpriv()[0].clone());
    cmd.args(&nobody.setpriv()[1..])
        .arg(&tools().cache_setup)
        .arg("detect")
        .args(host.sources());
    let out = cmd.output().expect("run as nobody");
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    let err = text(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains(&format!(
            "{}/php-fpm.conf:6: include: cannot read {}: Permission denied",
            d.display(),
            pool.display()
        )),
        "{err}"
    );
}

#[test]
fn host_checks_follow_the_given_paths() {
    let host = Host::new("two-sites");
    let setuid = e2e::bins().safexec.display().to_string();
    let plain = host.path("safexec-plain");
    fs::copy(&setuid, &plain).unwrap();
    // fs::copy keeps the setuid bit: drop it, this copy is the "not setuid" case.
    fs::set_permissions(&plain, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let controllers = host.dir.join("cg2");
    fs::create_dir(&controllers).unwrap();
    fs::write(controllers.join("cgroup.controllers"), "cpu memory io\n").unwrap();
    let good = host.path("mountinfo-good");
    fs::write(
        &good,
        format!(
            "1 0 8:1 / / rw,relatime - ext4 /dev/sda rw\n2 1 0:9 / {} rw - cgroup2 cgroup2 rw\n",
            controllers.display()
        ),
    )
    .unwrap();
    fs::write(controllers.join("cgroup.controllers"), "cpu memory pids\n").unwrap();
    let nosuid = host.path("mountinfo-nosuid");
    fs::write(
        &nosuid,
        format!(
            "1 0 8:1 / / rw,nosuid,relatime - ext4 /dev/sda rw\n2 1 0:9 / {} rw - cgroup2 cgroup2 rw\n",
            controllers.display()
        ),
    )
    .unwrap();
    let host_ids = |extra: &[&str]| -> BTreeSet<String> {
        let mut a = vec!["--config", "/nonexistent/safexec.conf"];
        a.extend_from_slice(extra);
        let (_, traps) = doctor(&host.sources(), &a);
        traps
            .into_iter()
            .map(|t| t.0)
            .filter(|id| !id.starts_with("safexec-conf"))
            .collect()
    };
    let set = |ids: &[&str]| -> BTreeSet<String> { ids.iter().map(|s| s.to_string()).collect() };
    // The setuid copy on a plain mount, cgroup v2 with memory and pids, Landlock ABI 4: clean.
    assert_eq!(
        host_ids(&[
            "--safexec",
            &setuid,
            "--mountinfo",
            &good,
            "--landlock-abi",
            "4"
        ]),
        set(&[])
    );
    let out = cs(
        "doctor",
        &host.sources(),
        &[
            "--safexec",
            &setuid,
            "--mountinfo",
            &good,
            "--landlock-abi",
            "4",
        ],
    );
    let t = text(&out.stdout);
    assert!(t.contains("ok   cgroups: unified (cgroup v2)"), "{t}");
    assert!(t.contains("ok   landlock: ABI 4"), "{t}");
    assert_eq!(
        host_ids(&[
            "--safexec",
            &plain,
            "--mountinfo",
            &nosuid,
            "--landlock-abi",
            "0"
        ]),
        set(&[
            "landlock-unavailable",
            "safexec-not-setuid",
            "safexec-nosuid-mount"
        ])
    );
    fs::write(controllers.join("cgroup.controllers"), "cpu memory\n").unwrap();
    assert_eq!(
        host_ids(&[
            "--safexec",
            "/nonexistent/safexec",
            "--mountinfo",
            &good,
            "--landlock-abi",
            "4"
        ]),
        set(&["safexec-missing", "cgroup-controllers"])
    );
}
