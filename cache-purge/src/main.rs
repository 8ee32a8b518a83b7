//! `cache-purge`: purges nginx cache entries exactly, by prefix or all, as the cache owner.
#![forbid(unsafe_code)]

mod cli;

use std::io::{self, Write};
use std::process::ExitCode;

use cache_purge::{privileges, Error, IndexMode, Options, Purger, Report};
use clap::Parser;

/// The man page rendered at build time from the same definition (`--generate-man` prints it).
const MAN_PAGE: &str = include_str!(concat!(env!("OUT_DIR"), "/cache-purge.1"));

fn main() -> ExitCode {
    let args = cli::Args::parse();
    match run(&args) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("cache-purge: {e}");
            ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(1))
        }
    }
}

fn run(args: &cli::Args) -> Result<u8, Error> {
    if args.generate_man {
        print!("{MAN_PAGE}");
        return Ok(0);
    }
    let Some(cache_path) = &args.cache_path else {
        return Err(Error::Usage("--cache-path DIR is required".into()));
    };
    let maintenance = args.index_rebuild || args.index_refresh || args.index_import.is_some();
    if args.urls.is_empty() && args.prefix.is_empty() && !args.all && !maintenance {
        return Err(Error::Usage(
            "nothing to do: give URLs, --prefix URL or --all (see --help)".into(),
        ));
    }
    if args.all && (!args.urls.is_empty() || !args.prefix.is_empty()) {
        return Err(Error::Usage(
            "--all purges everything: give no URL or --prefix with it".into(),
        ));
    }
    // Root drops to the owner here, before the cache is opened.
    let owner_uid = privileges::settle(args.owner.as_deref())?;
    let index = if args.no_index {
        IndexMode::Off
    } else if maintenance {
        IndexMode::Required(args.index_dir.clone())
    } else {
        IndexMode::Auto(args.index_dir.clone())
    };
    let mut purger = Purger::open(&Options {
        root: cache_path.clone(),
        key: args.cache_key.clone(),
        levels: args.levels.clone(),
        owner_uid,
        index,
        dry_run: args.dry_run,
    })?;
    if args.index_no_refresh {
        purger.skip_index_refresh();
    }
    if args.no_openat2 {
        purger.tree_mut().set_use_openat2(false);
    }
    // Check every request before deleting anything.
    for u in &args.urls {
        purger.keys_for(u)?;
    }
    for p in &args.prefix {
        purger.prefixes_for(p)?;
    }
    let stdout = io::stdout();
    let mut out = stdout.lock();
    let mut code = 0u8;
    let worst = |r: &Report, code: &mut u8| {
        if !r.failed.is_empty() {
            *code = 1;
        } else if !r.skipped.is_empty() && *code == 0 {
            *code = 4;
        }
    };
    if let Some(note) = purger.index_note() {
        if !args.json {
            eprintln!("cache-purge: {note}");
        }
    }
    if let Some(path) = &args.index_import {
        let stats = if path.as_os_str() == "-" {
            purger.import_index(&mut io::stdin().lock())?
        } else {
            let f = std::fs::File::open(path)
                .map_err(|e| Error::Usage(format!("--index-import {}: {e}", path.display())))?;
            purger.import_index(&mut io::BufReader::new(f))?
        };
        line(
            &mut out,
            args.json,
            &format!("index: imported {} entries", stats.added),
            || serde_json::json!({"index": "import", "added": stats.added}),
        )?;
    }
    if args.index_rebuild || args.index_refresh {
        let stats = if args.index_rebuild {
            purger.rebuild_index()?
        } else {
            purger.refresh_index()?
        };
        line(
            &mut out,
            args.json,
            &format!(
                "index: {} directories, {} read, {} entries added, {} removed",
                stats.dirs, stats.dirs_read, stats.added, stats.removed
            ),
            || {
                serde_json::json!({"index": if args.index_rebuild {"rebuild"} else {"refresh"},
                    "dirs": stats.dirs, "dirs_read": stats.dirs_read,
                    "added": stats.added, "removed": stats.removed})
            },
        )?;
    }
    if !args.dry_run && !args.all && purger.interrupted_purge_all() {
        let r = purger.purge_all()?;
        if !args.json {
            writeln!(out, "finished an interrupted purge-all ({} files)", r.files)
                .map_err(write_err)?;
        }
        print_report(&mut out, args.json, &r)?;
        worst(&r, &mut code);
    }
    let mut reports = Vec::new();
    for u in &args.urls {
        reports.push(purger.purge_url(u)?);
    }
    for p in &args.prefix {
        reports.push(purger.purge_prefix(p)?);
    }
    if args.all {
        reports.push(purger.purge_all()?);
    }
    for r in &reports {
        print_report(&mut out, args.json, r)?;
        worst(r, &mut code);
    }
    out.flush().map_err(write_err)?;
    Ok(code)
}

fn write_err(e: io::Error) -> Error {
    Error::Failed(format!("writing output: {e}"))
}

fn line(
    out: &mut dyn Write,
    json: bool,
    text: &str,
    value: impl FnOnce() -> serde_json::Value,
) -> Result<(), Error> {
    if json {
        writeln!(out, "{}", value())
    } else {
        writeln!(out, "{text}")
    }
    .map_err(write_err)
}

fn print_report(out: &mut dyn Write, json: bool, r: &Report) -> Result<(), Error> {
    if json {
        let v = serde_json::json!({
            "request": r.request,
            "kind": r.kind.as_str(),
            "status": r.status(),
            "files": r.files,
            "paths": r.paths,
            "keys": r.keys,
            "lookup": r.lookup.as_str(),
            "skipped": r.skipped,
            "failed": r.failed,
            "dry_run": r.dry_run,
        });
        writeln!(out, "{v}").map_err(write_err)?;
        return Ok(());
    }
    let what = match r.kind {
        cache_purge::Kind::Url => r.request.clone(),
        cache_purge::Kind::Prefix => format!("prefix {}", r.request),
        cache_purge::Kind::All => "all".to_owned(),
    };
    let verb = if r.dry_run { "would purge" } else { "purged" };
    let s = match r.status() {
        "purged" => format!("{verb} {what} ({} files, {})", r.files, r.lookup.as_str()),
        "failed" => format!(
            "failed {what} ({} files deleted, {} failed)",
            r.files,
            r.failed.len()
        ),
        _ => format!("not cached {what}"),
    };
    writeln!(out, "{s}").map_err(write_err)?;
    for p in &r.paths {
        writeln!(out, "  {p}").map_err(write_err)?;
    }
    for s in &r.skipped {
        writeln!(out, "  left alone: {s}").map_err(write_err)?;
    }
    for f in &r.failed {
        writeln!(out, "  failed: {f}").map_err(write_err)?;
    }
    Ok(())
}
