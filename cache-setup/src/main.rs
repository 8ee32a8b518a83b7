//! Finds every cached site in the live nginx and PHP-FPM configuration, checks the known traps
//! and writes the configuration.
#![forbid(unsafe_code)]

use std::io::Write;
use std::process::ExitCode;

use cache_setup::cli::{Cli, Cmd, Sources};
use cache_setup::detect::{self, Inputs, NginxInput};
use cache_setup::host::HostPaths;
use cache_setup::{apply, doctor, Error, Result};
use clap::Parser;

fn main() -> ExitCode {
    if std::env::args().nth(1).as_deref() == Some("--generate-man") {
        let _ =
            std::io::stdout().write_all(include_bytes!(concat!(env!("OUT_DIR"), "/cache-setup.1")));
        return ExitCode::SUCCESS;
    }
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("cache-setup: {e}");
            ExitCode::from(2)
        }
    }
}

fn inputs(s: &Sources) -> Inputs {
    let nginx = match (&s.nginx_conf, &s.nginx_dump) {
        (Some(f), _) => NginxInput::File(f.clone()),
        (None, Some(d)) => NginxInput::Dump(d.clone()),
        (None, None) => NginxInput::Live(s.nginx_bin.clone()),
    };
    Inputs {
        nginx,
        fpm_files: s.fpm_conf.clone(),
        php_dir: s.php_dir.clone(),
    }
}

fn json<T: serde::Serialize>(v: &T) -> Result<String> {
    serde_json::to_string_pretty(v).map_err(|e| Error::Msg(format!("JSON: {e}")))
}

fn run(cli: Cli) -> Result<u8> {
    let mut out = std::io::stdout().lock();
    let text = match cli.command {
        Cmd::Detect(a) => {
            let r = detect::detect(&inputs(&a.sources))?;
            let t = if a.json {
                json(&r)? + "\n"
            } else {
                detect::render(&r)
            };
            (t, 0)
        }
        Cmd::Doctor(a) => {
            let r = detect::detect(&inputs(&a.sources))?;
            let host = HostPaths {
                safexec: a.safexec.clone(),
                mountinfo: a.mountinfo.clone(),
                landlock_abi: a.landlock_abi,
            };
            let checks = doctor::run(&r, &host, &a.config);
            let traps = checks.iter().filter(|c| c.trap).count();
            let t = if a.json {
                json(&serde_json::json!({ "traps": traps, "checks": checks }))? + "\n"
            } else {
                doctor::render(&checks)
            };
            (t, u8::from(traps > 0))
        }
        Cmd::Apply(a) => {
            let r = detect::detect(&inputs(&a.sources))?;
            apply::refuse_foreign(&a.config, &r)?;
            let (want, notes) = apply::desired(&r);
            let old = apply::read_current(&a.config)?;
            let old_text = old.clone().unwrap_or_default();
            let new = apply::merge(&old_text, &a.config, &want)?;
            let mut t = String::new();
            for n in &notes {
                t.push_str(&format!("note: {n}\n"));
            }
            let shown = a.config.display();
            if new == old_text && old.is_some() {
                t.push_str(&format!("{shown}: up to date, nothing to change\n"));
            } else if a.dry_run {
                t.push_str(&apply::diff(&old_text, &new, &a.config));
                t.push_str(&format!("dry run: {shown} not written\n"));
            } else {
                let backup = apply::write(&a.config, &new, old.as_deref())?;
                let changed = new
                    .lines()
                    .filter(|l| l.trim_start().starts_with("cache_root"))
                    .filter(|l| !old_text.lines().any(|o| o == *l))
                    .count();
                t.push_str(&format!(
                    "wrote {shown}: {changed} cache_root line(s) added or updated{}\n",
                    backup
                        .map(|b| format!(", previous version in {}", b.display()))
                        .unwrap_or_default()
                ));
            }
            (t, 0)
        }
    };
    // A closed stdout (e.g. `| head`) is not an error of the command.
    let _ = out.write_all(text.0.as_bytes());
    Ok(text.1)
}
