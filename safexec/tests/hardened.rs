//! The state a tool gets from the setuid binary (spec §8.4 with the Δ cases), resolution and
//! pinning (§8.2), hostile environments, descriptors and signals. The tool is a probe binary
//! bind-mounted over /usr/bin/wget inside a private mount namespace.
mod common;
use common::*;

fn probe_run(inv: Invocation) -> Output {
    inv.as_user(test_user())
        .in_namespace(&probe_as("wget"))
        .run()
}

fn safexec() -> Invocation {
    Invocation::new(setuid_safexec())
}

#[test]
fn hm_1_to_6_identity_nnp_caps_and_clean_env_despite_hostile_caller_env() {
    let nobody = nobody();
    let out = probe_run(
        safexec()
            .args(["wget", "http://127.0.0.1/"])
            .env("LD_PRELOAD", "/tmp/evil.so")
            .env("LD_LIBRARY_PATH", "/tmp")
            .env("GCONV_PATH", "/tmp/gconv")
            .env("LOCPATH", "/tmp/loc")
            .env("TZ", "/tmp/tz")
            .env("PATH", "/tmp:/home")
            .env("FOO", "bar")
            .env("RUST_BACKTRACE", "1")
            .env("SAFEXEC_QUIET", "1"),
    );
    assert_eq!(out.status, 0, "{out}");
    let ids = format!("{0}\t{0}\t{0}\t{0}", nobody.uid);
    assert_eq!(
        probe_value(&out, "Uid").as_deref(),
        Some(ids.as_str()),
        "{out}"
    );
    let gids = format!("{0}\t{0}\t{0}\t{0}", nobody.gid);
    assert_eq!(
        probe_value(&out, "Gid").as_deref(),
        Some(gids.as_str()),
        "{out}"
    );
    assert_eq!(probe_value(&out, "Groups").as_deref(), Some(""), "{out}");
    assert_eq!(
        probe_value(&out, "NoNewPrivs").as_deref(),
        Some("1"),
        "{out}"
    );
    for cap in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
        assert_eq!(
            probe_value(&out, cap).as_deref(),
            Some("0000000000000000"),
            "{cap}: {out}"
        );
    }
    assert_eq!(probe_value(&out, "core").as_deref(), Some("0"), "{out}");
    assert_eq!(probe_value(&out, "Umask").as_deref(), Some("0077"), "{out}");
    assert_eq!(probe_value(&out, "argv0").as_deref(), Some("wget"), "{out}");
    let mut env = probe_env(&out);
    env.sort();
    assert_eq!(
        env,
        vec![
            "CHARSET=UTF-8",
            "LANG=C.UTF-8",
            "LC_CTYPE=C.UTF-8",
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        ],
        "{out}"
    );
}

#[test]
fn hm_7_8_only_std_fds_survive_and_closed_stderr_becomes_dev_null() {
    let out = Invocation::shell(
        setuid_safexec(),
        "exec 3</etc/hostname 4</etc/hostname 9</etc/hostname; exec \"$SAFEXEC\" wget http://127.0.0.1/ 2>&-",
    )
    .env("SAFEXEC_QUIET", "1")
    .as_user(test_user())
    .in_namespace(&probe_as("wget"))
    .run();
    assert_eq!(out.status, 0, "{out}");
    // fd 3 is the probe's own /proc/self/fd directory handle.
    assert_eq!(
        probe_value(&out, "fds").as_deref(),
        Some("0,1,2,3"),
        "{out}"
    );
    assert_eq!(
        probe_value(&out, "fd2").as_deref(),
        Some("/dev/null"),
        "{out}"
    );
}

#[test]
fn hm_9_exit_code_passes_through_and_pid_is_the_callers_background_pid() {
    let out = probe_run(safexec().args(["wget", "http://127.0.0.1/exit/42"]));
    assert_eq!(out.status, 42, "{out}");
    let out = Invocation::shell(
        setuid_safexec(),
        "\"$SAFEXEC\" nohup wget http://127.0.0.1/ & echo \"bg=$!\"; wait",
    )
    .env("SAFEXEC_QUIET", "1")
    .as_user(test_user())
    .in_namespace(&probe_as("wget"))
    .run();
    assert_eq!(out.status, 0, "{out}");
    let bg = probe_value(&out, "bg").expect("bg pid");
    assert_eq!(probe_value(&out, "pid"), Some(bg), "{out}");
    // nohup: SIGHUP (bit 0) ignored; SIGPIPE (bit 12) is the probe's own Rust runtime.
    assert_eq!(
        probe_value(&out, "SigIgn").as_deref(),
        Some("0000000000001001"),
        "{out}"
    );
}

const SIGWRAP_SOURCE: &str = r#"
use std::ffi::CString;
use std::os::raw::{c_char, c_int};
extern "C" {
    fn sigprocmask(how: c_int, set: *const u64, old: *mut u64) -> c_int;
    fn signal(sig: c_int, handler: usize) -> usize;
    fn execv(p: *const c_char, a: *const *const c_char) -> c_int;
}
fn main() {
    // Block SIGTERM (15) and SIGUSR1 (10); ignore SIGINT (2) and SIGPIPE (13).
    let mut set = [0u64; 16];
    set[0] = (1 << 14) | (1 << 9);
    let args: Vec<CString> = std::env::args().skip(1).map(|a| CString::new(a).unwrap()).collect();
    let mut ptrs: Vec<*const c_char> = args.iter().map(|a| a.as_ptr()).collect();
    ptrs.push(std::ptr::null());
    // SAFETY: valid set buffer (glibc sigset_t is 128 bytes); SIG_IGN is 1; NULL-terminated argv.
    unsafe {
        sigprocmask(0, set.as_ptr(), std::ptr::null_mut());
        signal(2, 1);
        signal(13, 1);
        execv(ptrs[0], ptrs.as_ptr());
    }
    std::process::exit(99);
}
"#;

#[test]
fn hm_17_signal_mask_and_ignored_dispositions_are_reset() {
    let wrap = compile_helper("sigwrap", SIGWRAP_SOURCE);
    let out = Invocation::new(&wrap)
        .arg(setuid_safexec())
        .args(["wget", "http://127.0.0.1/"])
        .env("SAFEXEC_QUIET", "1")
        .as_user(test_user())
        .in_namespace(&probe_as("wget"))
        .run();
    assert_eq!(out.status, 0, "{out}");
    assert_eq!(
        probe_value(&out, "SigBlk").as_deref(),
        Some("0000000000000000"),
        "{out}"
    );
    // Only SIGPIPE (bit 12), which the probe's Rust runtime ignores itself before main.
    assert_eq!(
        probe_value(&out, "SigIgn").as_deref(),
        Some("0000000000001000"),
        "{out}"
    );
}

#[test]
fn hm_10_11_setuid_jobs_start_in_their_private_directory_whatever_safe_cwd_says() {
    // Issue 15 class 3 replaced the C SAFEXEC_SAFE_CWD behaviour in setuid mode: the caller's
    // cwd (here /root) is never the job's, with the variable set, unset or 0.
    for v in [Some("1"), None, Some("0")] {
        let mut inv = safexec().args(["wget", "http://127.0.0.1/"]).cwd("/root");
        if let Some(v) = v {
            inv = inv.env("SAFEXEC_SAFE_CWD", v);
        }
        let out = probe_run(inv);
        assert_eq!(out.status, 0, "{out}");
        let pid = probe_value(&out, "pid").unwrap();
        let cwd = probe_value(&out, "cwd").unwrap();
        assert!(
            cwd.starts_with(&format!("/run/safexec-jobs/job.{pid}.")),
            "{v:?}: {out}"
        );
        let _ = std::fs::remove_dir(cwd);
    }
}

#[test]
fn hm_16_res_1_pinning_and_summary_lines() {
    let nobody = nobody();
    let out = probe_run(safexec().args(["wget", "http://127.0.0.1/"]).cwd("/"));
    assert_eq!(out.status, 0, "{out}");
    let err = out.stderr_str();
    assert!(
        err.contains("Info: pinned tool 'wget' -> '/usr/bin/wget'\n"),
        "{err}"
    );
    let cwd = probe_value(&out, "cwd").unwrap();
    assert!(
        err.contains(&format!(
            "Summary: user={0}:{1} (ruid={0} rgid={1}) cwd={cwd} tool=/usr/bin/wget\n",
            nobody.uid, nobody.gid
        )),
        "{err}"
    );
    assert!(err.contains("Summary: no_new_privs=on\n"), "{err}");
    assert!(err.contains("Summary: cgroup="), "{err}");
    assert!(
        err.contains("Info: Not injecting LD_PRELOAD shim (unsafe or missing so: /usr/lib/npp/libnpp_norm.so)\n"),
        "{err}"
    );
}

#[test]
fn res_explicit_paths_are_canonicalised_inside_trusted_dirs() {
    // Accepted: an explicit trusted path, also through `..` that stays trusted.
    for tok in ["/usr/bin/wget", "/usr/bin/../bin/wget"] {
        let out = probe_run(safexec().args([tok, "http://127.0.0.1/"]));
        assert_eq!(out.status, 0, "{tok}: {out}");
        assert_eq!(probe_value(&out, "argv0").as_deref(), Some(tok), "{out}");
    }
    // Refused: relative names, user directories, `..` escaping into /tmp, a symlink in /tmp.
    let link_dir = format!("/tmp/safexec-tests/{}-link", std::process::id());
    let _ = std::fs::create_dir_all(&link_dir);
    let link = format!("{link_dir}/wget");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink("/usr/bin/wget", &link).unwrap();
    for tok in [
        "./wget",
        "../x/wget",
        "/opt/evil/wget",
        "/usr/bin/../../tmp/wget",
        &link,
    ] {
        let out = probe_run(safexec().args([tok, "http://127.0.0.1/"]));
        out.assert_refused_without_running(&tok);
        assert!(
            out.stderr_str()
                .ends_with(&format!("Error: cannot resolve trusted path for '{tok}'\n")),
            "{tok}: {out}"
        );
    }
    let _ = std::fs::remove_file(&link);
}

#[test]
fn res_3_4_8_untrusted_candidates_are_skipped() {
    // An allowlisted tool that no trusted directory before /usr/local/bin has (rg is installed
    // on CI machines now): candidates go on a tmpfs over /usr/local/bin.
    let (tool, args): (&str, &[&str]) = [
        ("cache-purge", &["--help"][..]),
        ("cache-preload", &["--version"]),
        ("rg", &["x", "/tmp/"]),
    ]
    .into_iter()
    .find(|(t, _)| {
        ["/usr/bin", "/bin", "/usr/sbin", "/sbin"]
            .iter()
            .all(|d| !std::path::Path::new(d).join(t).exists())
    })
    .expect("an allowlisted tool that is not installed in /usr/bin, /bin, /usr/sbin or /sbin");
    let probe = probe_binary();
    let cases = [
        (
            format!(
                "cp {} /usr/local/bin/{tool}; chmod 0775 /usr/local/bin/{tool}",
                probe.display()
            ),
            format!("untrusted '/usr/local/bin/{tool}'"),
        ),
        (
            format!(
                "cp {} /usr/local/bin/{tool}; chown 65534 /usr/local/bin/{tool}; chmod 0755 /usr/local/bin/{tool}",
                probe.display()
            ),
            format!("untrusted '/usr/local/bin/{tool}'"),
        ),
        (
            format!("ln -s {} /usr/local/bin/{tool}", probe.display()),
            format!("untrusted '/usr/local/bin/{tool}'"),
        ),
        (String::new(), String::new()),
    ];
    for (setup, info) in cases {
        let script =
            format!("mount -t tmpfs -o mode=0755,uid=0,gid=0 none /usr/local/bin\n{setup}");
        let out = safexec()
            .arg(tool)
            .args(args)
            .as_user(test_user())
            .in_namespace(&script)
            .run();
        assert_eq!(out.status, 1, "{setup}: {out}");
        assert!(out.stderr_str().contains(&info), "{setup}: {out}");
        assert!(
            out.stderr_str().ends_with(&format!(
                "Error: cannot resolve trusted path for '{tool}'\n"
            )),
            "{out}"
        );
    }
}

#[test]
fn res_7_usr_bin_wins_over_usr_local_bin() {
    let probe = probe_binary();
    // /usr/local/bin/wget would be the probe; /usr/bin/wget is the real wget (--version works).
    let script = format!(
        "mount -t tmpfs -o mode=0755,uid=0,gid=0 none /usr/local/bin\ncp {} /usr/local/bin/wget",
        probe.display()
    );
    let out = safexec()
        .args(["wget", "--version"])
        .env("SAFEXEC_QUIET", "1")
        .as_user(test_user())
        .in_namespace(&script)
        .run();
    assert_eq!(out.status, 0, "{out}");
    assert!(out.stdout_str().starts_with("GNU Wget"), "{out}");
}

#[test]
fn arg_8_long_and_non_utf8_arguments_pass_byte_exact() {
    let long = format!("http://127.0.0.1/{}", "a".repeat(64 * 1024));
    let out = probe_run(
        safexec()
            .arg("wget")
            .arg(&long)
            .arg(os(b"http://127.0.0.1/\xff\xfe")),
    );
    assert_eq!(out.status, 0, "{out}");
    assert_eq!(probe_value(&out, "argv1").as_deref(), Some(long.as_str()));
    assert_eq!(
        probe_value(&out, "argv2").as_deref(),
        Some("http://127.0.0.1/\u{fffd}\u{fffd}"),
        "{out}"
    );
}

#[test]
fn tmp_3_wget_p_tmp_becomes_a_private_job_directory() {
    let nobody = nobody();
    // A finished job's directory (its pid is beyond pid_max) is cleaned up by the next job.
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::create_dir("/run/safexec-jobs");
    std::fs::set_permissions("/run/safexec-jobs", std::fs::Permissions::from_mode(0o711)).unwrap();
    let stale = "/run/safexec-jobs/job.4194305.1";
    std::fs::create_dir_all(format!("{stale}/127.0.0.1/a")).unwrap();
    must(std::process::Command::new("chown").args([
        "-R",
        &format!("{}:{}", nobody.uid, nobody.gid),
        stale,
    ]));
    let out = probe_run(safexec().args(["nohup", "wget", "-q", "-P", "/tmp", "http://127.0.0.1/"]));
    assert_eq!(out.status, 0, "{out}");
    let pid = probe_value(&out, "pid").unwrap();
    let dir = probe_value(&out, "argv3").unwrap();
    assert!(
        dir.starts_with(&format!("/run/safexec-jobs/job.{pid}.")),
        "{out}"
    );
    assert!(
        out.stderr_str()
            .contains(&format!("Info: Rewriting wget -P '/tmp' -> '{dir}'\n")),
        "{out}"
    );
    use std::os::unix::fs::MetadataExt;
    let md = std::fs::symlink_metadata(&dir).unwrap();
    assert_eq!(
        (md.uid(), md.gid(), md.mode() & 0o7777),
        (nobody.uid, nobody.gid, 0o700)
    );
    assert_eq!(
        probe_value(&out, "cwd").as_deref(),
        Some(dir.as_str()),
        "{out}"
    );
    let base = std::fs::symlink_metadata("/run/safexec-jobs").unwrap();
    assert_eq!((base.uid(), base.mode() & 0o7777), (0, 0o711));
    let _ = std::fs::remove_dir(&dir);
    // The first job emptied it as nobody; the next one removes the empty directory as root.
    assert!(std::fs::read_dir(stale).map(|d| d.count()).unwrap_or(0) == 0);
    let again = probe_run(safexec().args(["wget", "-P", "/tmp", "http://127.0.0.1/"]));
    assert_eq!(again.status, 0, "{again}");
    assert!(
        !std::path::Path::new(stale).exists(),
        "stale job dir left behind"
    );
    if let Some(d) = probe_value(&again, "argv2") {
        let _ = std::fs::remove_dir(d);
    }
}

#[test]
fn pass_through_enforces_policy_and_pins_but_runs_as_caller() {
    let u = test_user();
    let out = Invocation::new(passthrough_safexec())
        .args(["sha256sum", "/dev/null"])
        .as_user(u)
        .run();
    assert_eq!(out.status, 0, "{out}");
    assert!(out
        .stdout_str()
        .starts_with("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
    let b = passthrough_safexec().display().to_string();
    assert!(
        out.stderr_str().ends_with(&format!(
            "Info: safexec: Pass-Through Mode (euid={})\nInfo: safexec: Starting '/usr/bin/sha256sum' as original user\nNote: To enable hardening: chown root:root {b} && chmod 4755 {b} (avoid nosuid)\n",
            u.uid
        )),
        "{out}"
    );
    for args in [
        &["tar", "-cf", "/dev/null", "/etc/hostname"][..],
        &["wget", "-O", "/tmp/x", "http://127.0.0.1/"],
        &["time", "-f", "wget", "sh", "-c", "id"],
        &["/usr/bin/../../tmp/sha256sum", "/dev/null"],
        &["http_proxy=x", "wget"],
    ] {
        let out = Invocation::new(passthrough_safexec())
            .args(args)
            .as_user(u)
            .run();
        assert_eq!(out.status, 1, "{args:?}: {out}");
        assert!(out.stdout.is_empty(), "{args:?}: {out}");
    }
    // Pass-through also builds a clean environment.
    let out = Invocation::new(passthrough_safexec())
        .args(["wget", "http://127.0.0.1/"])
        .env("LD_PRELOAD", "/tmp/x.so")
        .env("SAFEXEC_QUIET", "1")
        .as_user(u)
        .in_namespace(&probe_as("wget"))
        .run();
    assert_eq!(out.status, 0, "{out}");
    assert_eq!(
        probe_value(&out, "Uid").unwrap().split('\t').next(),
        Some(u.uid.to_string().as_str())
    );
    assert!(
        probe_env(&out).iter().all(|e| !e.starts_with("LD_")),
        "{out}"
    );
}

#[test]
fn shim_10_and_weakness_7_1_g_case_and_so_are_validated() {
    let out = probe_run(
        safexec()
            .args(["wget", "http://127.0.0.1/"])
            .env("SAFEXEC_PCTNORM_CASE", "lower;rm"),
    );
    assert_eq!(out.status, 1, "{out}");
    assert!(
        out.stderr_str().ends_with(
            "Error: SAFEXEC_PCTNORM_CASE must be upper, lower or off (got 'lower;rm')\n"
        ),
        "{out}"
    );
    for so in ["/tmp/a b/libnpp_norm.so", "/tmp/libnpp_norm.so", ""] {
        let out = probe_run(
            safexec()
                .args(["wget", "http://127.0.0.1/"])
                .env("SAFEXEC_PCTNORM_SO", so),
        );
        assert_eq!(out.status, 0, "{out}");
        assert!(
            out.stderr_str().contains(&format!(
                "Info: Not injecting LD_PRELOAD shim (unsafe or missing so: {so})\n"
            )),
            "{out}"
        );
        assert!(
            probe_env(&out).iter().all(|e| !e.starts_with("LD_PRELOAD")),
            "{out}"
        );
    }
    let out = probe_run(
        safexec()
            .args(["wget", "http://127.0.0.1/"])
            .env("SAFEXEC_PCTNORM", "off"),
    );
    assert!(
        out.stderr_str()
            .contains("Info: LD_PRELOAD shim disabled via SAFEXEC_PCTNORM=0\n"),
        "{out}"
    );
}

#[test]
fn cache_preload_gets_pctnorm_case_and_never_ld_preload() {
    let script = probe_as("cache-preload");
    let out = safexec()
        .args(["cache-preload", "--json", "https://127.0.0.1/"])
        .env("SAFEXEC_PCTNORM", "1")
        .env("SAFEXEC_PCTNORM_CASE", "off")
        .env("SAFEXEC_QUIET", "1")
        .as_user(test_user())
        .in_namespace(&script)
        .run();
    assert_eq!(out.status, 0, "{out}");
    let env = probe_env(&out);
    assert!(env.contains(&"PCTNORM_CASE=preserve".to_string()), "{out}");
    assert!(env.iter().all(|e| !e.starts_with("LD_PRELOAD")), "{out}");
}

#[test]
fn tmp_2_4_planted_nppp_cache_is_never_adopted() {
    // A fresh /tmp (tmpfs) in the namespace; the binary is reached through a bind mount of its
    // install directory, which keeps the suid-capable source mount. Issue 15 class 5: the
    // private directory no longer lives under /tmp, so a squatted /tmp/nppp-cache changes
    // nothing, and the job still gets its private directory.
    let bin_dir = setuid_safexec().parent().unwrap().display().to_string();
    let probe = probe_binary();
    let u = test_user();
    for plant in [
        format!("mkdir /tmp/nppp-cache; chown {} /tmp/nppp-cache", u.uid),
        "ln -s /etc /tmp/nppp-cache".to_string(),
    ] {
        let setup = format!(
            "mount --bind {bin_dir} /mnt\nmount --bind {} /usr/bin/wget\nmount -t tmpfs -o mode=1777 none /tmp\n{plant}",
            probe.display()
        );
        let out = Invocation::new("/mnt/safexec")
            .args(["wget", "-P", "/tmp", "http://127.0.0.1/"])
            .as_user(u)
            .in_namespace(&setup)
            .run();
        assert_eq!(out.status, 0, "{plant}: {out}");
        let dir = probe_value(&out, "argv2").unwrap();
        assert!(dir.starts_with("/run/safexec-jobs/job."), "{plant}: {out}");
        assert_eq!(probe_value(&out, "cwd"), Some(dir.clone()), "{out}");
        let _ = std::fs::remove_dir(dir);
    }
}
