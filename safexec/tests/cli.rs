//! spec §8.1 (CLI and output contract) against the real setuid binary run as `sxtest`,
//! plus argc == 0, quiet handling and escaping of hostile bytes.
mod common;
use common::*;

fn run(args: &[&str]) -> Output {
    Invocation::new(setuid_safexec())
        .args(args)
        .as_user(test_user())
        .run()
}

fn run_quiet(args: &[&str]) -> Output {
    Invocation::new(setuid_safexec())
        .args(args)
        .env("SAFEXEC_QUIET", "1")
        .as_user(test_user())
        .run()
}

fn usage_text() -> String {
    let b = setuid_safexec().display().to_string();
    format!("Usage:\n  {b} <program> [args...]\n  {b} --kill=<pid>\n  {b} --help | -h\n  {b} --version | -v\n")
}

#[test]
fn cli_1_2_3_version_block() {
    // Without a configuration: `-v` warns about unusable configuration lines (tenants.rs).
    without_config(cli_1_2_3_version_block_body);
}

fn cli_1_2_3_version_block_body() {
    for args in [&["--version"][..], &["-v", "extra", "args"]] {
        for quiet in [false, true] {
            let out = if quiet { run_quiet(args) } else { run(args) };
            assert_eq!(out.status, 0, "{out}");
            let lines: Vec<String> = out.stdout_str().lines().map(str::to_string).collect();
            assert_eq!(lines.len(), 3, "{out}");
            assert_eq!(lines[0], "safexec 1.9.6");
            assert_eq!(
                lines[1],
                format!("safexec-rs {}", env!("CARGO_PKG_VERSION"))
            );
            assert!(lines[2].contains('\u{2013}'), "{out}");
            assert!(
                out.stderr.is_empty(),
                "nothing on stderr before line 1: {out}"
            );
        }
    }
}

#[test]
fn cli_4_5_usage_and_help() {
    let out = run(&[]);
    assert_eq!((out.status, out.stdout_str()), (1, usage_text()), "{out}");
    for h in ["--help", "-h"] {
        let out = run(&[h]);
        assert_eq!((out.status, out.stdout_str()), (0, usage_text()), "{out}");
        let q = run_quiet(&[h]);
        assert_eq!((q.status, q.stdout.len(), q.stderr.len()), (0, 0, 0), "{q}");
    }
}

#[test]
fn cli_6_9_kill_forms_and_option_like_argv1_print_usage() {
    for a in [
        &["--kill"][..],
        &["--kill", "5"],
        &["--killall"],
        &["--kill-x"],
        &["-x"],
        &["--"],
        &["--foo"],
        &["123"],
        &["0"],
    ] {
        let out = run(a);
        assert_eq!(
            (out.status, out.stdout_str()),
            (1, usage_text()),
            "{a:?}: {out}"
        );
    }
}

#[test]
fn cli_7_invalid_pids() {
    for raw in ["", "abc", "0", "-5", "2147483648", "5x", "0x10"] {
        let out = run(&[&format!("--kill={raw}")]);
        assert_eq!(out.status, 1, "{out}");
        assert_eq!(out.stderr_str(), format!("Error: Invalid PID '{raw}'\n"));
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn cli_8_kill_pid_1_is_parsed_and_refused_without_detail() {
    for raw in ["+1", " 1", "001"] {
        let out = run(&[&format!("--kill={raw}")]);
        assert_eq!(out.status, 1, "{out}");
        assert_eq!(
            out.stderr_str(),
            "Error: PID 1 does not exist, already exited, or is not a safexec job you may stop\n"
        );
    }
}

#[test]
fn cli_10_to_13_refusals() {
    let cases: &[(&[&str], &str)] = &[
        (&["id"], "Error: 'id' is not allowed by safexec.\n"),
        (
            &["sh", "-c", "id"],
            "Info: rejecting shell interpreter before tool: 'sh'\nError: 'sh' is not allowed by safexec.\n",
        ),
        (
            &["/bin/bash"],
            "Info: rejecting shell interpreter before tool: '/bin/bash'\nError: 'bash' is not allowed by safexec.\n",
        ),
        (
            &["fish"],
            "Info: rejecting shell interpreter before tool: 'fish'\nError: 'fish' is not allowed by safexec.\n",
        ),
        (&["env", "wget"], "Error: 'env' is not allowed by safexec.\n"),
        (&["sudo", "wget"], "Error: 'sudo' is not allowed by safexec.\n"),
        (&["busybox", "wget"], "Error: 'busybox' is not allowed by safexec.\n"),
        (&["tar", "-cf", "/dev/null", "/etc/hostname"], "Error: 'tar' is not allowed by safexec.\n"),
        (
            &["LD_PRELOAD=x", "wget"],
            "Info: rejecting dangerous assignment before tool: 'LD_PRELOAD=x'\nError: 'LD_PRELOAD=x' is not allowed by safexec.\n",
        ),
        (
            &["http_proxy=x", "wget", "--version"],
            "Info: rejecting dangerous assignment before tool: 'http_proxy=x'\nError: 'http_proxy=x' is not allowed by safexec.\n",
        ),
        (&[" wget"], "Error: ' wget' is not allowed by safexec.\n"),
        (&["wget/"], "Error: '' is not allowed by safexec.\n"),
        (&["+5", "wget"], "Error: '+5' is not allowed by safexec.\n"),
    ];
    for (args, want) in cases {
        let out = run(args);
        assert_eq!(out.status, 1, "{args:?}: {out}");
        assert_eq!(&out.stderr_str(), want, "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?}: {out}");
    }
}

#[test]
fn cli_14_wrapper_without_tool() {
    let out = run(&["nohup"]);
    assert_eq!((out.status, out.stdout_str()), (1, usage_text()), "{out}");
    let out = run(&["nohup", "-x", "5"]);
    assert_eq!(out.status, 1, "{out}");
}

#[test]
fn cli_16_quiet_silences_every_error_path() {
    for a in [
        &["id"][..],
        &["sh", "-c", "id"],
        &["--kill=abc"],
        &["--kill=1"],
        &[],
        &["time", "-f", "wget", "sh"],
        &["wget", "--use-askpass=/tmp/x"],
        &["/tmp/nohup", "wget"],
    ] {
        let out = run_quiet(a);
        assert_eq!(out.status, 1, "{a:?}: {out}");
        assert!(
            out.stdout.is_empty() && out.stderr.is_empty(),
            "{a:?}: {out}"
        );
    }
}

const ARGC0_SOURCE: &str = r#"
use std::ffi::CString;
use std::os::raw::c_char;
extern "C" { fn execve(p: *const c_char, a: *const *const c_char, e: *const *const c_char) -> i32; }
fn main() {
    let path = CString::new(std::env::args().nth(1).unwrap()).unwrap();
    let argv: [*const c_char; 1] = [std::ptr::null()];
    let envp: [*const c_char; 1] = [std::ptr::null()];
    // SAFETY: NULL-terminated arrays; path outlives the call.
    unsafe { execve(path.as_ptr(), argv.as_ptr(), envp.as_ptr()) };
    std::process::exit(99);
}
"#;

#[test]
fn cli_17_argc_zero_prints_usage_without_crash() {
    let helper = compile_helper("argc0", ARGC0_SOURCE);
    let out = Invocation::new(&helper)
        .arg(setuid_safexec())
        .as_user(test_user())
        .run();
    assert_eq!(out.status, 1, "{out}");
    assert!(
        out.stdout_str().starts_with("Usage:\n  safexec <program>"),
        "{out}"
    );
}

#[test]
fn hostile_bytes_are_escaped_in_messages() {
    let out = Invocation::new(setuid_safexec())
        .arg(os(b"evil\n\x1b[31mtool\xff"))
        .as_user(test_user())
        .run();
    assert_eq!(out.status, 1, "{out}");
    assert_eq!(
        out.stderr_str(),
        "Error: 'evil\\x0a\\x1b[31mtool\\xff' is not allowed by safexec.\n"
    );
    let out = Invocation::new(setuid_safexec())
        .arg("wget")
        .arg(os(b"--\xfe\nInjected: line"))
        .as_user(test_user())
        .run();
    assert_eq!(out.status, 1, "{out}");
    assert_eq!(out.stderr_str().lines().count(), 1, "{out}");
    assert!(out.stderr_str().contains("\\xfe\\x0aInjected"), "{out}");
}

#[test]
fn very_long_argument_is_refused_cleanly_or_passed_whole() {
    let long = format!("--header=X: {}", "a".repeat(64 * 1024));
    let out = Invocation::new(setuid_safexec())
        .args(["wget", &long, "--bogus-option"])
        .env("SAFEXEC_QUIET", "1")
        .as_user(test_user())
        .run();
    assert_eq!(out.status, 1, "{out}");
    let many: Vec<String> = (0..20000).map(|i| format!("--header=X{i}: y")).collect();
    let out = Invocation::new(setuid_safexec())
        .arg("wget")
        .args(&many)
        .arg("--bogus-option")
        .as_user(test_user())
        .run();
    assert_eq!(out.status, 1, "{out}");
    assert_eq!(
        out.stderr_str(),
        "Error: option '--bogus-option' is not allowed for wget by safexec.\n"
    );
}
