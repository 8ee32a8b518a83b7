//! One regression test per defect of spec §7.1 (each fails on the C safexec 1.9.6 behaviour),
//! plus kill mode (spec §8.9) and the rg identity switch (spec §8.8), all through the real
//! setuid binary run by an unprivileged user.
mod common;
use common::*;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::process::{Command, Stdio};

fn safexec() -> Invocation {
    Invocation::new(setuid_safexec())
}

fn kill_refused(pid: &str) -> String {
    format!(
        "Error: PID {pid} does not exist, already exited, or is not a safexec job you may stop\n"
    )
}

/// rg is not installed on this machine: the probe plays it, on a tmpfs over /usr/local/bin.
fn rg_probe() -> String {
    probe_as("rg")
}

/// A configured cache root `<base>/cache` (root-owned path) whose `site/` belongs to `owner`,
/// and a look-alike `<base>/other/` owned by `owner` outside any cache root. The base is under
/// `/var/lib` (root-owned ancestors, issue 15 class 4), not under the world-writable `/tmp`.
struct CacheFixture {
    base: String,
    site: String,
    other: String,
}

fn cache_fixture(tag: &str, owner: &User) -> CacheFixture {
    let base = format!("/var/lib/safexec-tests/{}-{tag}", std::process::id());
    let _ = std::fs::remove_dir_all(&base);
    for d in ["/var/lib/safexec-tests", &base, &format!("{base}/cache")] {
        std::fs::create_dir_all(d).unwrap();
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let site = format!("{base}/cache/site");
    let other = format!("{base}/other");
    for d in [&site, &other] {
        std::fs::create_dir_all(d).unwrap();
        must(
            Command::new("chown")
                .arg(format!("{}:{}", owner.uid, owner.gid))
                .arg(d),
        );
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o700)).unwrap();
    }
    CacheFixture { base, site, other }
}

fn uid_of(out: &Output) -> Option<String> {
    probe_value(out, "Uid").and_then(|v| v.split('\t').next().map(str::to_string))
}

#[test]
fn weakness_7_1_a_rg_never_switches_to_the_owner_of_an_unconfigured_path() {
    let victim = second_user();
    let f = cache_fixture("rg-a", victim);
    // No cache roots configured: the victim's directory must not give the victim's uid.
    without_config(|| {
        let out = safexec()
            .args(["rg", "-m", "1", "--text", "x", &format!("{}/", f.other)])
            .as_user(test_user())
            .in_namespace(&rg_probe())
            .run();
        assert_eq!(out.status, 0, "{out}");
        assert_eq!(uid_of(&out), Some(test_user().uid.to_string()), "{out}");
        assert!(
            out.stderr_str()
                .contains("is not under a configured cache root"),
            "{out}"
        );
    });
}

#[test]
fn rg_1_switches_only_under_a_configured_root_to_its_configured_owner() {
    let owner = second_user();
    let f = cache_fixture("rg-1", owner);
    let conf = format!(
        "cache_root = {}/cache {} allow={},{}\n",
        f.base,
        owner.name,
        test_user().name,
        owner.name
    );
    with_config(&conf, || {
        let out = safexec()
            .args([
                "rg",
                "-l",
                "-m",
                "1",
                "--no-config",
                "KEY",
                &format!("{}/", f.site),
            ])
            .as_user(test_user())
            .in_namespace(&rg_probe())
            .run();
        assert_eq!(out.status, 0, "{out}");
        assert_eq!(uid_of(&out), Some(owner.uid.to_string()), "{out}");
        assert_eq!(
            probe_value(&out, "Groups").as_deref(),
            Some(""),
            "no supplementary groups: {out}"
        );
        // Class 4: rg searches the checked directory it was started in, given '.'.
        assert_eq!(probe_value(&out, "cwd"), Some(f.site.clone()), "{out}");
        assert_eq!(probe_value(&out, "argv6").as_deref(), Some("."), "{out}");
        // The look-alike outside the root still runs as the caller.
        let out = safexec()
            .args(["rg", "x", &f.other])
            .as_user(test_user())
            .in_namespace(&rg_probe())
            .run();
        assert_eq!(uid_of(&out), Some(test_user().uid.to_string()), "{out}");
        // rg_2: the owner calling it runs as itself.
        let out = safexec()
            .args(["rg", "x", &f.site])
            .as_user(owner)
            .in_namespace(&rg_probe())
            .run();
        assert_eq!(uid_of(&out), Some(owner.uid.to_string()), "{out}");
        assert!(
            out.stderr_str().contains("path owner matches caller"),
            "{out}"
        );
    });
}

#[test]
fn weakness_7_1_a_rg_trailing_slash_or_dot_does_not_hide_a_symlink() {
    let owner = second_user();
    let f = cache_fixture("rg-4", owner);
    let link = format!("{}/cache/link", f.base);
    std::os::unix::fs::symlink(&f.other, &link).unwrap();
    let conf = format!(
        "cache_root = {}/cache {} allow={},{}\n",
        f.base,
        owner.name,
        test_user().name,
        owner.name
    );
    with_config(&conf, || {
        for p in [
            link.clone(),
            format!("{link}/"),
            format!("{link}/."),
            format!("{link}/../site"),
        ] {
            let out = safexec()
                .args(["rg", "x", &p])
                .as_user(test_user())
                .in_namespace(&rg_probe())
                .run();
            out.assert_refused_without_running(&p);
        }
    });
}

#[test]
fn weakness_7_1_a_rg_pre_and_two_paths_are_refused() {
    for args in [
        &["rg", "--pre", "/bin/cat", "x", "/tmp/"][..],
        &["rg", "--pre-glob", "*", "x", "/tmp/"],
        &["rg", "-z", "x", "/tmp/"],
        &["rg", "--hostname-bin=/bin/sh", "x", "/tmp/"],
        &["rg", "x", "/etc/", "/tmp/"],
        &["rg", "x", "relative/"],
        &["rg", "--version"],
    ] {
        let out = safexec()
            .args(args)
            .as_user(test_user())
            .in_namespace(&rg_probe())
            .run();
        out.assert_refused_without_running(&args);
    }
}

#[test]
fn weakness_7_1_b_tool_options_that_run_programs_or_touch_files_are_refused() {
    let cases: &[&[&str]] = &[
        &["wget", "--use-askpass=/tmp/x", "http://127.0.0.1/"],
        &["wget", "-e", "use_askpass=/tmp/x", "http://127.0.0.1/"],
        &["wget", "-O", "/tmp/owned-by-nobody", "http://127.0.0.1/"],
        &["wget", "--post-file=/etc/shadow", "http://127.0.0.1/"],
        &["wget", "-i", "/etc/passwd"],
        &["wget", "--config=/tmp/rc", "http://127.0.0.1/"],
        &["curl", "-K", "/tmp/cfg", "http://127.0.0.1/"],
        &["curl", "-o", "/tmp/x", "http://127.0.0.1/"],
        &["curl", "file:///etc/shadow"],
        &["curl", "-d", "@/etc/shadow", "http://127.0.0.1/"],
        &[
            "tar",
            "--checkpoint=1",
            "--checkpoint-action=exec=id",
            "-cf",
            "/dev/null",
            "/etc/hostname",
        ],
    ];
    for args in cases {
        let out = safexec()
            .args(*args)
            .as_user(test_user())
            .in_namespace(&probe_as("wget"))
            .run();
        assert_eq!(out.status, 1, "{args:?}: {out}");
        assert!(out.stdout.is_empty(), "{args:?} ran: {out}");
        assert_eq!(out.stderr_str().lines().count(), 1, "one clear line: {out}");
    }
}

#[test]
fn weakness_7_1_c_time_swallows_tool() {
    for args in [
        &["time", "-f", "wget", "sh", "-c", "id -un"][..],
        &["time", "-f", "rg", "sh", "-c", "id -un", "/tmp/"],
        &["timeout", "5", "wget", "http://127.0.0.1/"],
        &["nice", "-n", "5", "wget", "http://127.0.0.1/"],
        &["stdbuf", "-o0", "wget", "http://127.0.0.1/"],
        &["chrt", "-p", "1", "wget"],
    ] {
        let out = safexec().args(args).as_user(test_user()).run();
        assert_eq!(out.status, 1, "{args:?}: {out}");
        assert!(out.stdout.is_empty(), "{args:?} ran something: {out}");
        assert!(out.stderr_str().starts_with("Error: "), "{out}");
    }
    // The natively supported forms still work.
    let out = safexec()
        .args(["nice", "nohup", "wget", "http://127.0.0.1/"])
        .env("SAFEXEC_QUIET", "1")
        .as_user(test_user())
        .in_namespace(&probe_as("wget"))
        .run();
    assert_eq!(out.status, 0, "{out}");
}

#[test]
fn weakness_7_1_d_explicit_wrapper_path_is_not_checked_lexically() {
    let dir = format!("/tmp/safexec-tests/{}-wrap", std::process::id());
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy("/usr/bin/nohup", format!("{dir}/nohup")).unwrap();
    let dotdot = format!("/usr/bin/../..{dir}/nohup");
    for tok in [dotdot.as_str(), "/tmp/nohup", "./nohup"] {
        let out = safexec()
            .args([tok, "wget", "http://127.0.0.1/"])
            .as_user(test_user())
            .in_namespace(&probe_as("wget"))
            .run();
        out.assert_refused_without_running(&tok);
    }
    // A genuine trusted path is fine.
    let out = safexec()
        .args(["/usr/bin/nohup", "wget", "http://127.0.0.1/"])
        .env("SAFEXEC_QUIET", "1")
        .as_user(test_user())
        .in_namespace(&probe_as("wget"))
        .run();
    assert_eq!(out.status, 0, "{out}");
}

/// Starts `sleep` as nobody with no_new_privs (not a safexec job); returns the child.
fn nobody_nnp_sleeper() -> std::process::Child {
    let n = nobody();
    Command::new("setpriv")
        .args([
            &format!("--reuid={}", n.uid),
            &format!("--regid={}", n.gid),
            "--clear-groups",
            "--no-new-privs",
            "sleep",
            "30",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

#[test]
fn weakness_7_1_e_kill_refuses_non_jobs_uniformly() {
    let mut sleeper = nobody_nnp_sleeper();
    std::thread::sleep(std::time::Duration::from_millis(200));
    let pid = sleeper.id().to_string();
    // KILL-4: a nobody process with NoNewPrivs outside any job: C killed it.
    let out = safexec()
        .arg(format!("--kill={pid}"))
        .as_user(test_user())
        .run();
    assert_eq!(
        (out.status, out.stderr_str()),
        (1, kill_refused(&pid)),
        "{out}"
    );
    assert!(out.stdout.is_empty());
    assert!(
        sleeper.try_wait().unwrap().is_none(),
        "the sleeper must survive"
    );
    // KILL-1 / KILL-2 / KILL-7: nonexistent pid, pid 1, another user's process: same line.
    for p in ["4194000", "1", &std::process::id().to_string()] {
        let out = safexec()
            .arg(format!("--kill={p}"))
            .as_user(test_user())
            .run();
        assert_eq!(
            (out.status, out.stderr_str()),
            (1, kill_refused(p)),
            "{out}"
        );
    }
    // KILL-9: pass-through against a nobody process fails with the kernel's EPERM.
    let out = Invocation::new(passthrough_safexec())
        .arg(format!("--kill={pid}"))
        .as_user(test_user())
        .run();
    assert_eq!(out.status, 1, "{out}");
    assert!(
        out.stderr_str().contains("pidfd_send_signal(SIGTERM)"),
        "{out}"
    );
    let _ = sleeper.kill();
    let _ = sleeper.wait();
}

#[test]
fn kill_5_11_background_job_is_killed_by_its_caller_only() {
    let script = r#"
"$SAFEXEC" nohup wget http://127.0.0.1/sleep/30 >/dev/null 2>&1 &
p=$!
i=0; while case "$(cat /proc/$p/comm 2>/dev/null)" in sh|safexec|"") true;; *) false;; esac; do i=$((i+1)); [ $i -gt 400 ] && break; sleep 0.05; done
echo "pid=$p"
SAFEXEC_QUIET=1 "$SAFEXEC" --kill=$p
echo "kill_rc=$?"
wait $p
echo "wait=$?"
"#;
    let out = Invocation::shell(setuid_safexec(), script)
        .as_user(test_user())
        .in_namespace(&probe_as("wget"))
        .run();
    let pid = probe_value(&out, "pid").expect("pid");
    assert!(
        out.stdout_str()
            .contains(&format!("Success: Killed PID {pid}\nkill_rc=0\nwait=143\n")),
        "{out}"
    );
    // Another user may not stop it; root may.
    let script = r#"
"$SAFEXEC" wget http://127.0.0.1/sleep/30 >/dev/null 2>&1 &
p=$!
i=0; while case "$(cat /proc/$p/comm 2>/dev/null)" in sh|safexec|"") true;; *) false;; esac; do i=$((i+1)); [ $i -gt 400 ] && break; sleep 0.05; done
echo "pid=$p"
"#;
    let out = Invocation::shell(setuid_safexec(), script)
        .as_user(test_user())
        .in_namespace(&probe_as("wget"))
        .run();
    let pid = probe_value(&out, "pid").expect("pid");
    let other = safexec()
        .arg(format!("--kill={pid}"))
        .as_user(second_user())
        .run();
    assert_eq!(
        (other.status, other.stderr_str()),
        (1, kill_refused(&pid)),
        "{other}"
    );
    let root = safexec().arg(format!("--kill={pid}")).run();
    assert_eq!(root.status, 0, "{root}");
    assert_eq!(root.stdout_str(), format!("Success: Killed PID {pid}\n"));
}

#[test]
fn job_records_are_root_owned_and_private() {
    let out = safexec()
        .args(["wget", "http://127.0.0.1/"])
        .env("SAFEXEC_QUIET", "1")
        .as_user(test_user())
        .in_namespace(&probe_as("wget"))
        .run();
    assert_eq!(out.status, 0, "{out}");
    let pid = probe_value(&out, "pid").unwrap();
    let dir = std::fs::symlink_metadata("/run/safexec").unwrap();
    assert_eq!((dir.uid(), dir.mode() & 0o7777), (0, 0o700));
    // The record of a finished job may already be swept; a live one is checked above (kill).
    if let Ok(md) = std::fs::symlink_metadata(format!("/run/safexec/{pid}")) {
        assert_eq!((md.uid(), md.mode() & 0o7777), (0, 0o600));
        let text = std::fs::read_to_string(format!("/run/safexec/{pid}")).unwrap();
        assert!(
            text.contains(&format!("caller={}\n", test_user().uid)),
            "{text}"
        );
    }
}

#[test]
fn weakness_7_1_f_detach_off_is_not_honoured() {
    let out = safexec()
        .args(["wget", "http://127.0.0.1/"])
        .env("SAFEXEC_DETACH", "off")
        .as_user(test_user())
        .in_namespace(&probe_as("wget"))
        .run();
    assert_eq!(out.status, 0, "{out}");
    assert_eq!(probe_value(&out, "NoNewPrivs").as_deref(), Some("1"));
    assert_eq!(probe_value(&out, "Seccomp").as_deref(), Some("2"), "{out}");
}

#[test]
fn weakness_7_1_h_no_new_privs_and_verified_drop() {
    // A real root caller ends up as the job user too, never as root.
    let out = safexec()
        .args(["wget", "http://127.0.0.1/"])
        .env("SAFEXEC_QUIET", "1")
        .in_namespace(&probe_as("wget"))
        .run();
    assert_eq!(out.status, 0, "{out}");
    assert_eq!(uid_of(&out), Some(nobody().uid.to_string()), "{out}");
    assert_eq!(probe_value(&out, "NoNewPrivs").as_deref(), Some("1"));
}
