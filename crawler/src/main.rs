//! The `cache-preload` binary: parse argv (before any runtime exists, so a
//! bad option exits at once), run the crawl, print the one error in one
//! place, exit with the documented status.
#![forbid(unsafe_code)]

use std::io::Write;
use std::process::ExitCode;

use cache_preload::cli::{self, Parsed};
use cache_preload::{run, Error};

fn main() -> ExitCode {
    let argv: Vec<String> = match std::env::args_os()
        .map(|a| a.into_string())
        .collect::<Result<Vec<_>, _>>()
    {
        Ok(v) => v,
        Err(bad) => {
            return fail(&Error::Usage(format!(
                "argument is not valid UTF-8: {}",
                bad.to_string_lossy()
            )))
        }
    };
    let env = |k: &str| std::env::var(k).ok();
    let cfg = match cli::parse(&argv, &env) {
        Ok(Parsed::Run(cfg)) => cfg,
        Ok(Parsed::Print(text)) => {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(text.as_bytes());
            let _ = out.flush();
            return ExitCode::SUCCESS;
        }
        Err(e) => return fail(&e),
    };
    // One thread: on a cached site the crawler is bound by its own CPU per page, and handing
    // each response between threads cost more (wake-ups, futexes) than a second core gained —
    // measured 1.3× slower with two workers on a 2-core machine that also runs nginx.
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(&Error::Runtime(format!("cannot start runtime: {e}"))),
    };
    let result = rt.block_on(async move {
        // Signal handlers first: a SIGTERM must end the run promptly and
        // without the FINISHED summary whatever the crawl is doing. The
        // watchers are tasks of their own, polled whenever the crawl awaits.
        spawn_signal_watchers()?;
        run::run(*cfg).await
    });
    match result {
        Ok(summary) => ExitCode::from(u8::try_from(summary.exit_code).unwrap_or(1)),
        Err(e) => fail(&e),
    }
}

fn spawn_signal_watchers() -> Result<(), Error> {
    use tokio::signal::unix::{signal, SignalKind};
    for (kind, code) in [
        (SignalKind::terminate(), cache_preload::EXIT_SIGTERM),
        (SignalKind::interrupt(), cache_preload::EXIT_SIGINT),
    ] {
        let mut s = signal(kind)
            .map_err(|e| Error::Runtime(format!("cannot install signal handler: {e}")))?;
        tokio::spawn(async move {
            if s.recv().await.is_some() {
                let _ = std::io::stdout().flush();
                std::process::exit(code);
            }
        });
    }
    Ok(())
}

fn fail(e: &Error) -> ExitCode {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "cache-preload: {e}");
    ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(1))
}
