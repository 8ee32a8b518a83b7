//! Issue 15 (classes 1, 3, 4, 5, 6, 7's job identity, 8) and issue 13 (`safexec cache-purge`):
//! one regression test per class, each running the real setuid binary as created users (two
//! tenants where the case needs two). Each test fails against the binary of the commit before
//! these fixes: run `TENANTS_SAFEXEC=/path/to/old/safexec cargo test -p safexec --test tenants`
//! to see that (the variable names an unprivileged build; it is installed 4755 like ours).
//!
//! Cache roots live under `/var/lib/safexec-tests/` (root-owned ancestors), not `/tmp`.
mod common;
use common::*;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The binary under test: ours, or the one `TENANTS_SAFEXEC` names, installed 4755 root.
fn bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| match std::env::var_os("TENANTS_SAFEXEC") {
        None => setuid_safexec().to_path_buf(),
        Some(other) => {
            let dir = PathBuf::from(format!(
                "/tmp/safexec-tests/{}-tenants-alt",
                std::process::id()
            ));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
            let b = dir.join("safexec");
            std::fs::copy(other, &b).unwrap();
            must(Command::new("chown").arg("root:root").arg(&b));
            std::fs::set_permissions(&b, std::fs::Permissions::from_mode(0o4755)).unwrap();
            b
        }
    })
}

fn safexec() -> Invocation {
    Invocation::new(bin())
}

fn uid_of(out: &Output) -> Option<u32> {
    probe_value(out, "Uid").and_then(|v| v.split('\t').next()?.parse().ok())
}

fn chown(path: &str, u: &User) {
    must(
        Command::new("chown")
            .arg(format!("{}:{}", u.uid, u.gid))
            .arg(path),
    );
}

fn chmod(path: &str, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// A fresh root-owned 0755 directory `/var/lib/safexec-tests/<pid>-<tag>`.
fn fixture(tag: &str) -> String {
    let top = "/var/lib/safexec-tests";
    std::fs::create_dir_all(top).unwrap();
    chmod(top, 0o755);
    // Fixtures of test processes that are gone.
    for e in std::fs::read_dir(top).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let pid = name.split('-').next().unwrap_or("").to_string();
        if !pid.is_empty() && !Path::new("/proc").join(&pid).exists() {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
    let base = format!("{top}/{}-{tag}", std::process::id());
    let _ = std::fs::remove_dir_all(&base);
    std::fs::create_dir(&base).unwrap();
    chmod(&base, 0o755);
    base
}

/// A cache directory owned by `owner`, 0700 (as nginx makes them).
fn cache_dir(path: &str, owner: &User) {
    std::fs::create_dir_all(path).unwrap();
    chown(path, owner);
    chmod(path, 0o700);
}

/// The account that owns the test caches (nginx's worker user in real life).
fn cache_owner() -> User {
    ensure_user("sxcache")
}

/// A group `sxgrp` that lists `sxtest2` as a member in /etc/group.
fn group_with_second_user() -> &'static str {
    static G: OnceLock<()> = OnceLock::new();
    G.get_or_init(|| {
        second_user();
        let _ = Command::new("groupadd").args(["-f", "sxgrp"]).output();
        must(Command::new("gpasswd").args(["-a", "sxtest2", "sxgrp"]));
    });
    "sxgrp"
}

// ---------------------------------------------------------------------------------------------
// Class 1: files named by the caller are never opened as the job user.

#[test]
fn class_1_url_list_is_opened_as_the_caller_and_handed_over_as_stdin() {
    let base = fixture("c1");
    let nobody = nobody();
    // A file only the job user can read (another tenant's job output, a nobody process's
    // /proc/<pid>/environ), and a file only the caller can read.
    let theirs = format!("{base}/nobody-only");
    std::fs::write(&theirs, "https://secret.example/token\n").unwrap();
    chown(&theirs, &nobody);
    chmod(&theirs, 0o600);
    let mine = format!("{base}/mine");
    std::fs::write(&mine, "https://127.0.0.1/a\n").unwrap();
    chown(&mine, test_user());
    chmod(&mine, 0o600);
    without_config(|| {
        for form in [
            vec!["--url-list".to_string(), theirs.clone()],
            vec![format!("--url-list={theirs}")],
        ] {
            let out = safexec()
                .arg("cache-preload")
                .args(&form)
                .arg("https://127.0.0.1/")
                .as_user(test_user())
                .in_namespace(&probe_as("cache-preload"))
                .run();
            out.assert_refused_without_running(&form);
            assert!(out.stderr_str().contains("as the caller"), "{out}");
        }
        // Another tenant's job: a process running as nobody. Its environ is not the caller's
        // to read, so it is not the job's either (its cmdline is, without hidepid).
        let mut other = Command::new("setpriv")
            .args([
                &format!("--reuid={}", nobody.uid),
                &format!("--regid={}", nobody.gid),
                "--clear-groups",
                "sleep",
                "30",
            ])
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(200));
        let target = format!("/proc/{}/environ", other.id());
        let out = safexec()
            .args(["cache-preload", "--url-list", &target, "https://127.0.0.1/"])
            .as_user(test_user())
            .in_namespace(&probe_as("cache-preload"))
            .run();
        out.assert_refused_without_running(&target);
        let _ = other.kill();
        let _ = other.wait();
        let out = safexec()
            .args(["cache-preload", "--url-list", &mine, "https://127.0.0.1/"])
            .as_user(test_user())
            .in_namespace(&probe_as("cache-preload"))
            .run();
        assert_eq!(out.status, 0, "{out}");
        assert_eq!(uid_of(&out), Some(nobody.uid), "{out}");
        assert_eq!(probe_value(&out, "argv1").as_deref(), Some("--url-list"));
        assert_eq!(probe_value(&out, "argv2").as_deref(), Some("-"), "{out}");
        assert_eq!(probe_value(&out, "fd0"), Some(mine.clone()), "{out}");
        // sha256sum would read any operand as the job user: only /dev/null and - remain.
        let out = safexec()
            .args(["sha256sum", &theirs])
            .as_user(test_user())
            .run();
        assert_eq!(out.status, 1, "{out}");
        assert!(out.stdout.is_empty(), "{out}");
        let out = safexec()
            .args(["sha256sum", "/dev/null"])
            .env("SAFEXEC_QUIET", "1")
            .as_user(test_user())
            .run();
        assert_eq!(out.status, 0, "{out}");
    });
}

// ---------------------------------------------------------------------------------------------
// Class 3: a job never starts in the caller's directory.

#[test]
fn class_3_every_job_starts_in_its_own_fresh_private_directory() {
    let base = fixture("c3");
    let nobody = nobody();
    // The caller's cwd, writable by everyone, with a planted symlink where wget -r would write.
    let cwd = format!("{base}/callers-dir");
    std::fs::create_dir(&cwd).unwrap();
    chown(&cwd, test_user());
    chmod(&cwd, 0o777);
    let victim = format!("{base}/nobody-file");
    std::fs::write(&victim, "precious").unwrap();
    chown(&victim, &nobody);
    std::os::unix::fs::symlink(&victim, format!("{cwd}/index.html")).unwrap();
    without_config(|| {
        for safe_cwd in ["0", "1"] {
            let out = safexec()
                .args(["wget", "-r", "http://127.0.0.1/"])
                .env("SAFEXEC_SAFE_CWD", safe_cwd)
                .cwd(&cwd)
                .as_user(test_user())
                .in_namespace(&probe_as("wget"))
                .run();
            assert_eq!(out.status, 0, "{out}");
            let pid = probe_value(&out, "pid").unwrap();
            let job_cwd = probe_value(&out, "cwd").unwrap();
            assert!(
                job_cwd.starts_with(&format!("/run/safexec-jobs/job.{pid}.")),
                "SAFEXEC_SAFE_CWD={safe_cwd}: {out}"
            );
        }
    });
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
}

// ---------------------------------------------------------------------------------------------
// Class 4: cache roots with swappable ancestors are refused; tools get the checked directory.

#[test]
fn class_4_cache_root_below_a_writable_ancestor_is_refused() {
    let owner = second_user();
    // Under /tmp (1777), and under a root-owned but world-writable directory.
    let tmp_base = format!("/tmp/safexec-tests/{}-c4", std::process::id());
    let _ = std::fs::remove_dir_all(&tmp_base);
    std::fs::create_dir_all(&tmp_base).unwrap();
    chmod(&tmp_base, 0o755);
    let base = fixture("c4");
    let open_dir = format!("{base}/open");
    std::fs::create_dir(&open_dir).unwrap();
    chmod(&open_dir, 0o777);
    for root in [format!("{tmp_base}/cache"), format!("{open_dir}/cache")] {
        cache_dir(&root, owner);
        let conf = format!(
            "cache_root = {root} {} allow={}\n",
            owner.name,
            test_user().name
        );
        with_config(&conf, || {
            let out = safexec()
                .args(["rg", "-l", "KEY", &format!("{root}/")])
                .as_user(test_user())
                .in_namespace(&probe_as("rg"))
                .run();
            out.assert_refused_without_running(&root);
            assert!(
                out.stderr_str().contains("is not a root-owned directory"),
                "{out}"
            );
        });
    }
    // A sound root: rg runs as the owner in the checked directory, given '.', so the path is
    // not resolved a second time.
    let root = format!("{base}/cache");
    cache_dir(&root, owner);
    std::fs::create_dir(format!("{root}/a")).unwrap();
    chown(&format!("{root}/a"), owner);
    let conf = format!(
        "cache_root = {root} {} allow={}\n",
        owner.name,
        test_user().name
    );
    with_config(&conf, || {
        let out = safexec()
            .args(["rg", "-l", "KEY", &format!("{root}/a")])
            .as_user(test_user())
            .in_namespace(&probe_as("rg"))
            .run();
        assert_eq!(out.status, 0, "{out}");
        assert_eq!(uid_of(&out), Some(owner.uid), "{out}");
        assert_eq!(probe_value(&out, "cwd"), Some(format!("{root}/a")), "{out}");
        assert_eq!(probe_value(&out, "argv3").as_deref(), Some("."), "{out}");
    });
}

// ---------------------------------------------------------------------------------------------
// Class 5: no fail-open fallback for the private directory.

#[test]
fn class_5_job_is_refused_when_its_private_directory_cannot_be_made() {
    let bin_dir = bin().parent().unwrap().display().to_string();
    let probe = probe_binary();
    let u = test_user();
    // After a "reboot" (fresh /tmp and /run in a private namespace) a user got there first:
    // /tmp/nppp-cache is theirs, and /run/safexec-jobs too (which in real life only root can
    // create; here it stands for any failure to set up the private directory).
    let setup = format!(
        "mount --bind {bin_dir} /mnt\nmount --bind {probe} /usr/bin/wget\n\
         mount -t tmpfs -o mode=1777 none /tmp\nmount -t tmpfs -o mode=0755 none /run\n\
         mkdir /tmp/nppp-cache /run/safexec-jobs\n\
         chown {uid} /tmp/nppp-cache /run/safexec-jobs",
        probe = probe.display(),
        uid = u.uid
    );
    without_config(|| {
        for args in [
            &["wget", "-P", "/tmp", "http://127.0.0.1/"][..],
            &["wget", "http://127.0.0.1/"],
        ] {
            let out = Invocation::new("/mnt/safexec")
                .args(args)
                .as_user(u)
                .in_namespace(&setup)
                .run();
            out.assert_refused_without_running(&args);
            assert!(out.stderr_str().contains("private directory"), "{out}");
        }
    });
}

// ---------------------------------------------------------------------------------------------
// Class 6: job records never leak.

#[test]
fn class_6_failed_record_writes_leave_no_record_behind() {
    let u = test_user();
    let entries = || -> Vec<String> {
        std::fs::read_dir("/run/safexec")
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    };
    without_config(|| {
        let mut pids = Vec::new();
        for _ in 0..3 {
            // RLIMIT_FSIZE 0: the record write fails (EFBIG or SIGXFSZ).
            let out = Invocation::shell(
                bin(),
                "echo $$; ulimit -f 0; exec \"$SAFEXEC\" wget http://127.0.0.1/",
            )
            .as_user(u)
            .in_namespace(&probe_as("wget"))
            .run();
            assert_ne!(out.status, 0, "the job must not run: {out}");
            assert!(!out.stdout_str().contains("pid="), "{out}");
            pids.push(out.stdout_str().lines().next().unwrap().trim().to_string());
        }
        // The next job's sweep removes whatever a killed write left.
        let out = safexec()
            .args(["wget", "http://127.0.0.1/"])
            .as_user(u)
            .in_namespace(&probe_as("wget"))
            .run();
        assert_eq!(out.status, 0, "{out}");
        let left = entries();
        for pid in &pids {
            assert!(
                !left.iter().any(|n| n == pid || *n == format!(".{pid}.tmp")),
                "record of failed job {pid} left behind: {left:?}"
            );
        }
    });
}

// ---------------------------------------------------------------------------------------------
// Class 7 (job identity): each caller can have its own job user; nobody stays the default.

#[test]
fn class_7_caller_job_user_keeps_two_tenants_apart() {
    let job1 = ensure_user("sxjob1");
    let nobody = nobody();
    let conf = format!("caller_job_user = {} {}\n", test_user().name, job1.name);
    with_config(&conf, || {
        let a = safexec()
            .args(["wget", "-P", "/tmp", "http://127.0.0.1/"])
            .as_user(test_user())
            .in_namespace(&probe_as("wget"))
            .run();
        assert_eq!(a.status, 0, "{a}");
        assert_eq!(uid_of(&a), Some(job1.uid), "{a}");
        // Its private directory belongs to its own job user.
        let dir = probe_value(&a, "argv2").unwrap();
        if let Ok(md) = std::fs::metadata(&dir) {
            assert_eq!(md.uid(), job1.uid);
        }
        let b = safexec()
            .args(["wget", "http://127.0.0.1/"])
            .as_user(second_user())
            .in_namespace(&probe_as("wget"))
            .run();
        assert_eq!(b.status, 0, "{b}");
        assert_eq!(
            uid_of(&b),
            Some(nobody.uid),
            "the default stays nobody: {b}"
        );
    });
    // A mapping to an account that does not exist is refused, never "continuing as caller".
    let conf = format!("caller_job_user = {} sx-no-such-user\n", test_user().name);
    with_config(&conf, || {
        let out = safexec()
            .args(["wget", "http://127.0.0.1/"])
            .as_user(test_user())
            .in_namespace(&probe_as("wget"))
            .run();
        out.assert_refused_without_running(&"missing job user");
    });
}

// ---------------------------------------------------------------------------------------------
// Class 8: a cache root is usable only by the callers its allow= names.

#[test]
fn class_8_cache_roots_bind_their_allowed_callers_only() {
    let owner = cache_owner();
    let group = group_with_second_user();
    let base = fixture("c8");
    let (a, b, c) = (
        format!("{base}/a"),
        format!("{base}/b"),
        format!("{base}/c"),
    );
    for r in [&a, &b, &c] {
        cache_dir(r, &owner);
    }
    let conf = format!(
        "cache_root = {a} {o} allow={u1}\ncache_root = {b} {o} allow=@{group}\ncache_root = {c} {o}\n",
        o = owner.name,
        u1 = test_user().name
    );
    let rg = |root: &str, who: &User| {
        safexec()
            .args(["rg", "-l", "KEY", root])
            .as_user(who)
            .in_namespace(&probe_as("rg"))
            .run()
    };
    with_config(&conf, || {
        // Tenant 1 on its root, tenant 2 (through its group in /etc/group) on its root.
        for (root, who) in [(&a, test_user()), (&b, second_user())] {
            let out = rg(root, who);
            assert_eq!(out.status, 0, "{root} as {}: {out}", who.name);
            assert_eq!(uid_of(&out), Some(owner.uid), "{out}");
        }
        // Each on the other's root, and both on the root without allow= (root only).
        for (root, who) in [
            (&b, test_user()),
            (&a, second_user()),
            (&c, test_user()),
            (&c, second_user()),
        ] {
            let out = rg(root, who);
            out.assert_refused_without_running(&(root, &who.name));
            assert!(out.stderr_str().contains("does not allow"), "{out}");
        }
    });
}

#[test]
fn class_4_8_version_output_warns_about_lines_that_grant_nothing() {
    let owner = cache_owner();
    let base = fixture("v");
    let good = format!("{base}/good");
    let bare = format!("{base}/bare");
    cache_dir(&good, &owner);
    cache_dir(&bare, &owner);
    let under_tmp = format!("/tmp/safexec-tests/{}-v/cache", std::process::id());
    cache_dir(&under_tmp, &owner);
    let conf = format!(
        "cache_root = {good} {o} allow={u}\ncache_root = {bare} {o}\ncache_root = {under_tmp} {o} allow={u}\ncaller_job_user = {u} sx-no-such-user\n",
        o = owner.name,
        u = test_user().name
    );
    with_config(&conf, || {
        let out = safexec().arg("-v").as_user(test_user()).run();
        assert_eq!(out.status, 0, "{out}");
        assert!(out.stdout_str().starts_with("safexec 1.9.6\n"), "{out}");
        let err = out.stderr_str();
        assert_eq!(err.lines().count(), 3, "{out}");
        assert!(
            err.contains(&format!("cache_root '{bare}' has no allow=")),
            "{out}"
        );
        assert!(
            err.contains(&format!(
                "cache_root '{under_tmp}' will be refused: its ancestor '/tmp'"
            )),
            "{out}"
        );
        assert!(err.contains("sx-no-such-user"), "{out}");
    });
}

// ---------------------------------------------------------------------------------------------
// Issue 13: `safexec cache-purge`.

#[test]
fn cache_purge_runs_as_the_owner_in_the_callers_checked_root() {
    let owner = cache_owner();
    let base = fixture("purge");
    let (a, a2, b) = (
        format!("{base}/a"),
        format!("{base}/a2"),
        format!("{base}/b"),
    );
    for r in [&a, &a2, &b] {
        cache_dir(r, &owner);
    }
    let (t1, t2) = (test_user(), second_user());
    let conf = format!(
        "cache_root = {a} {o} allow={t1} key=$scheme$host$request_uri levels=2 url=https://a.example,https://www.a.example\n\
         cache_root = {a2} {o} allow={t1} url=http://a2.example:8080\n\
         cache_root = {b} {o} allow={t2} url=https://b.example\n",
        o = owner.name,
        t1 = t1.name,
        t2 = t2.name
    );
    let purge = |who: &User, args: &[&str]| {
        safexec()
            .arg("cache-purge")
            .args(args)
            .as_user(who)
            .in_namespace(&probe_as("cache-purge"))
            .run()
    };
    with_config(&conf, || {
        // The URL's host chooses among tenant 1's roots; key and levels come from its line.
        let out = purge(t1, &["--json", "https://WWW.a.example/p?x=1"]);
        assert_eq!(out.status, 0, "{out}");
        assert_eq!(uid_of(&out), Some(owner.uid), "{out}");
        assert_eq!(probe_value(&out, "cwd"), Some(a.clone()), "{out}");
        let argv: Vec<String> = (1..=10)
            .map(|i| probe_value(&out, &format!("argv{i}")).unwrap_or_default())
            .collect();
        let index_dir = format!("/var/lib/cache-purge/{}", owner.name);
        assert_eq!(
            argv,
            [
                "--cache-path",
                ".",
                "--cache-key",
                "$scheme$host$request_uri",
                "--levels",
                "2",
                "--index-dir",
                &index_dir,
                "--json",
                "https://WWW.a.example/p?x=1"
            ],
            "{out}"
        );
        let out = purge(t1, &["--prefix", "http://a2.example:8080/blog/"]);
        assert_eq!(out.status, 0, "{out}");
        assert_eq!(probe_value(&out, "cwd"), Some(a2.clone()), "{out}");
        assert_eq!(
            probe_value(&out, "argv4").as_deref(),
            Some("$scheme$request_method$host$request_uri")
        );
        // Naming its own root works; naming tenant 2's root does not.
        let out = purge(t1, &["--cache-path", &format!("{a2}/"), "--all"]);
        assert_eq!(out.status, 0, "{out}");
        assert_eq!(probe_value(&out, "cwd"), Some(a2.clone()), "{out}");
        for args in [
            &["--cache-path", b.as_str(), "--all"][..],
            &["--all"],
            &["https://b.example/"],
            &["--cache-key", "$host", "https://a.example/"],
            &["--levels=1", "https://a.example/"],
            &["--cache-path", "/var/cache/nginx", "--all"],
        ] {
            let out = purge(t1, args);
            out.assert_refused_without_running(&args);
            let errors = out.stderr_str();
            let errors: Vec<&str> = errors.lines().filter(|l| !l.starts_with("Info:")).collect();
            assert_eq!(errors.len(), 1, "one line: {out}");
            assert!(errors[0].starts_with("Error: "), "{out}");
        }
        // Tenant 2 reaches only its own root; an account bound to no root gets nothing.
        let out = purge(t2, &["--all"]);
        assert_eq!(out.status, 0, "{out}");
        assert_eq!(probe_value(&out, "cwd"), Some(b.clone()), "{out}");
        let out = purge(&nobody(), &["--all"]);
        out.assert_refused_without_running(&"unbound caller");
        assert!(out.stderr_str().contains("no cache_root"), "{out}");
    });
    // A cache root under a world-writable ancestor is refused for purges too.
    let tmp_root = format!("/tmp/safexec-tests/{}-purge-tmp", std::process::id());
    cache_dir(&tmp_root, &owner);
    let conf = format!("cache_root = {tmp_root} {} allow={}\n", owner.name, t1.name);
    with_config(&conf, || {
        let out = purge(t1, &["--all"]);
        out.assert_refused_without_running(&"root under /tmp");
    });
}

/// Writes an nginx cache entry (header version 5, LP64 layout, see nginx-cache's header.rs) for
/// `key` named `name` under levels `1:2`, with a `Vary: Accept-Encoding` header, owned by `owner`.
fn put_vary_entry(root: &str, name: &str, key: &str, owner: &User) -> PathBuf {
    let mut b = vec![0u8; 336];
    b[..8].copy_from_slice(&5u64.to_le_bytes());
    let header_start = u16::try_from(336 + 6 + key.len() + 1).unwrap();
    b[54..56].copy_from_slice(&header_start.to_le_bytes());
    b[56..58].copy_from_slice(&header_start.to_le_bytes());
    let vary = b"Accept-Encoding";
    b[187] = vary.len() as u8;
    b[188..188 + vary.len()].copy_from_slice(vary);
    b.extend_from_slice(b"\nKEY: ");
    b.extend_from_slice(key.as_bytes());
    b.extend_from_slice(b"\nStatus: 200 OK\r\n\r\n<html>");
    let l1 = &name[31..];
    let l2 = &name[29..31];
    let mut dir = PathBuf::from(root);
    for level in [l1, l2] {
        dir.push(level);
        if !dir.exists() {
            cache_dir(dir.to_str().unwrap(), owner);
        }
    }
    let path = dir.join(name);
    std::fs::write(&path, b).unwrap();
    chown(path.to_str().unwrap(), owner);
    chmod(path.to_str().unwrap(), 0o600);
    path
}

fn md5_hex(text: &str) -> String {
    let out = must(
        Command::new("sh")
            .arg("-c")
            .arg("printf %s \"$1\" | md5sum")
            .arg("sh")
            .arg(text),
    );
    String::from_utf8_lossy(&out.stdout)[..32].to_string()
}

#[test]
fn cache_purge_keeps_its_key_index_in_the_owners_directory_under_var_lib() {
    let owner = cache_owner();
    let base = fixture("purge-index");
    let root = format!("{base}/cache");
    cache_dir(&root, &owner);
    let t1 = test_user();
    // The main entry and a Vary variant of the same key, for two URLs.
    let entries = |path: &str| {
        let key = format!("httpGETv.example{path}");
        vec![
            put_vary_entry(&root, &md5_hex(&key), &key, &owner),
            put_vary_entry(&root, &md5_hex(&format!("{key}#gzip")), &key, &owner),
        ]
    };
    let first = entries("/one/");
    let second = entries("/two/");
    let other = put_vary_entry(
        &root,
        &md5_hex("httpGETv.example/other/"),
        "httpGETv.example/other/",
        &owner,
    );
    let conf = format!(
        "cache_root = {root} {} allow={} key=$scheme$request_method$host$request_uri levels=1:2 url=http://v.example\n",
        owner.name, t1.name
    );
    // The real cache-purge, where safexec looks for tools that are not installed.
    let tool = cargo_build("cache-purge", "cache-purge");
    let setup = format!(
        "mount -t tmpfs -o mode=0755,uid=0,gid=0 none /usr/local/bin\ncp {} /usr/local/bin/cache-purge\nchmod 0755 /usr/local/bin/cache-purge",
        tool.display()
    );
    let purge = |url: &str| {
        safexec()
            .args(["cache-purge", "--json", url])
            .as_user(t1)
            .in_namespace(&setup)
            .run()
    };
    let index_dir = format!("/var/lib/cache-purge/{}", owner.name);
    with_config(&conf, || {
        let out = purge("http://v.example/one/");
        assert_eq!(out.status, 0, "{out}");
        for p in &first {
            assert!(!p.exists(), "{} left: {out}", p.display());
        }
        assert!(second.iter().all(|p| p.exists()) && other.exists(), "{out}");
        let base_md = std::fs::symlink_metadata("/var/lib/cache-purge").unwrap();
        assert!(base_md.is_dir());
        assert_eq!((base_md.uid(), base_md.mode() & 0o022), (0, 0));
        let md = std::fs::symlink_metadata(&index_dir).unwrap();
        assert!(md.is_dir());
        assert_eq!((md.uid(), md.mode() & 0o7777), (owner.uid, 0o700), "{out}");
        let files: Vec<String> = std::fs::read_dir(&index_dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert!(
            files.iter().any(|f| f.ends_with(".sqlite")),
            "{files:?}: {out}"
        );
        // The second Vary URL is found through the index, not by a scan.
        let out = purge("http://v.example/two/");
        assert_eq!(out.status, 0, "{out}");
        for p in &second {
            assert!(!p.exists(), "{} left: {out}", p.display());
        }
        assert!(other.exists(), "{out}");
        assert!(out.stdout_str().contains(r#""lookup":"index""#), "{out}");
    });
}

// ---------------------------------------------------------------------------------------------
// NPP installs have no cache_root lines: their calls behave as before.

#[test]
fn npp_calls_without_cache_roots_are_unchanged() {
    let base = fixture("npp");
    let fuse = format!("{base}/fuse-view");
    cache_dir(&fuse, test_user());
    without_config(|| {
        // Command B's shape: nohup wget … -P /tmp … -- URL, as nobody, -P made private.
        let out = safexec()
            .args([
                "nohup",
                "wget",
                "--no-verbose",
                "--recursive",
                "-l",
                "inf",
                "-e",
                "robots=off",
                "-P",
                "/tmp",
                "--",
                "https://127.0.0.1/",
            ])
            .as_user(test_user())
            .in_namespace(&probe_as("wget"))
            .run();
        assert_eq!(out.status, 0, "{out}");
        assert_eq!(uid_of(&out), Some(nobody().uid), "{out}");
        assert!(probe_value(&out, "argv8")
            .unwrap()
            .starts_with("/run/safexec-jobs/job."));
        // rg on a path outside any cache root runs as the caller with the path as given.
        let out = safexec()
            .args(["rg", "-l", "-m", "1", "--text", "^KEY: .*x$", &fuse])
            .as_user(test_user())
            .in_namespace(&probe_as("rg"))
            .run();
        assert_eq!(out.status, 0, "{out}");
        assert_eq!(uid_of(&out), Some(test_user().uid), "{out}");
        assert_eq!(probe_value(&out, "argv6"), Some(fuse.clone()), "{out}");
    });
}
