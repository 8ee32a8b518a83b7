//! Smoke tests of the shared setuid harness itself (tests/common).
mod common;
use common::*;

#[test]
fn harness_installs_setuid_root_and_runs_as_test_user() {
    let bin = setuid_safexec();
    use std::os::unix::fs::MetadataExt;
    let md = std::fs::metadata(bin).unwrap();
    assert_eq!((md.uid(), md.mode() & 0o7777), (0, 0o4755));
    let u = test_user();
    assert_ne!(u.uid, 0);
    let out = Invocation::new(bin).arg("-v").as_user(u).run();
    assert_eq!(out.status, 0, "{out}");
    assert!(out.stdout_str().starts_with("safexec 1.9.6\n"), "{out}");
    assert!(out.stderr.is_empty(), "{out}");
}

#[test]
fn harness_probe_runs_in_a_namespace_over_wget() {
    let out = Invocation::new(setuid_safexec())
        .args(["wget", "http://127.0.0.1/exit/42"])
        .env("SAFEXEC_QUIET", "1")
        .as_user(test_user())
        .in_namespace(&probe_as("wget"))
        .run();
    assert_eq!(out.status, 42, "{out}");
    assert_eq!(probe_value(&out, "argv0").as_deref(), Some("wget"), "{out}");
}
