//! safexec's argv handling: CLI dispatch (including `--kill=` parsing) and every tool's argument
//! policy must never panic, and an accepted `-P /tmp` rewrite must stay inside the argv.
#![no_main]

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;

use libfuzzer_sys::fuzz_target;
use safexec::cli;
use safexec::policy::{self, Tool};

fuzz_target!(|data: &[u8]| {
    let args: Vec<OsString> = data
        .split(|&b| b == 0)
        .map(|a| OsString::from_vec(a.to_vec()))
        .collect();
    let mut argv = vec![OsString::from("safexec")];
    argv.extend(args.iter().cloned());
    let _ = cli::dispatch(&argv);
    let _ = cli::parse_pid(data);
    for tool in [
        Tool::Wget,
        Tool::Curl,
        Tool::CachePreload,
        Tool::Rg,
        Tool::Sha256sum,
        Tool::CachePurge,
    ] {
        if let Ok(mut checked) = policy::check(tool, &args) {
            assert!(checked.tmp_slots.iter().all(|s| s.index < checked.args.len()));
            assert!(checked.rg_path_index.is_none_or(|i| i < checked.args.len()));
            checked.rewrite_tmp(std::ffi::OsStr::new("/run/safexec-jobs/job.1.2"));
            assert_eq!(checked.args.len(), args.len());
        }
    }
});
