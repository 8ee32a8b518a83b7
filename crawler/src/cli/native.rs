//! The native (clap) command line.

use clap::Parser;

use super::{
    build_headers, compile_reject_list, compile_reject_regex, env_pct_mode, parse_header,
    parse_rate, parse_status_list, secs, NativeArgs, Parsed,
};
use crate::config::{
    Config, Dialect, DiscoveryConfig, HttpConfig, NormOptions, Output, PacingConfig, PctMode,
    Proxies, UA_DESKTOP, UA_MOBILE,
};
use crate::Error;

/// The man page, generated from the clap definition at build time.
pub const MAN_PAGE: &str = include_str!(concat!(env!("OUT_DIR"), "/cache-preload.1"));

/// The completion script for `shell`, generated at build time.
pub fn completion_script(shell: &str) -> Option<&'static str> {
    Some(match shell {
        "bash" => include_str!(concat!(env!("OUT_DIR"), "/cache-preload.bash")),
        "zsh" => include_str!(concat!(env!("OUT_DIR"), "/_cache-preload")),
        "fish" => include_str!(concat!(env!("OUT_DIR"), "/cache-preload.fish")),
        "elvish" => include_str!(concat!(env!("OUT_DIR"), "/cache-preload.elv")),
        "powershell" => include_str!(concat!(env!("OUT_DIR"), "/_cache-preload.ps1")),
        _ => return None,
    })
}

/// Parse the native dialect.
pub fn parse(argv: &[String], env: &dyn Fn(&str) -> Option<String>) -> Result<Parsed, Error> {
    let a = match NativeArgs::try_parse_from(argv) {
        Ok(a) => a,
        Err(e) => {
            use clap::error::ErrorKind;
            return match e.kind() {
                ErrorKind::DisplayHelp
                | ErrorKind::DisplayVersion
                | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
                    Ok(Parsed::Print(e.render().to_string()))
                }
                _ => {
                    let text = e.render().to_string();
                    let first = text.lines().next().unwrap_or("invalid arguments");
                    let first = first.strip_prefix("error: ").unwrap_or(first);
                    Err(Error::usage(format!(
                        "{first} (try 'cache-preload --help')"
                    )))
                }
            };
        }
    };
    if a.generate_man {
        return Ok(Parsed::Print(MAN_PAGE.to_string()));
    }
    if let Some(shell) = &a.generate_completions {
        return completion_script(shell)
            .map(|s| Parsed::Print(s.to_string()))
            .ok_or_else(|| Error::usage(format!("unknown shell '{shell}'")));
    }
    into_config(a, env).map(|c| Parsed::Run(Box::new(c)))
}

fn into_config(a: NativeArgs, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, Error> {
    if a.urls.is_empty() && a.sitemap.is_empty() && a.url_list.is_none() && a.replay_keys.is_none()
    {
        return Err(Error::usage(
            "nothing to do: give a URL, --sitemap or --url-list (try 'cache-preload --help')",
        ));
    }
    if a.robots_sitemaps && a.urls.is_empty() {
        return Err(Error::usage(
            "--robots-sitemaps needs at least one start URL",
        ));
    }
    let mode = match &a.pct_mode {
        Some(m) => m
            .parse::<PctMode>()
            .map_err(|e| Error::usage(e.to_string()))?,
        None => env_pct_mode(env)?.unwrap_or_default(),
    };
    let warm = super::warm::warm_config(&super::warm::WarmArgs {
        cache_header: a.cache_header.clone(),
        verify: a.verify,
        variants: a.variants.clone(),
        cache_path: a.cache_path.clone(),
        cache_key: a.cache_key.clone(),
        levels: a.levels.clone(),
        index_out: a.index_out.clone(),
        replay_keys: a.replay_keys.clone(),
        max_concurrency: a.max_concurrency,
        fixed_concurrency: a.concurrency.is_some(),
        max_rps: a.max_rps,
        max_load: a.max_load,
        cpu_reserve: a.cpu_reserve,
        connect_to: a.connect_to.clone(),
    })?;
    let concurrency = a.concurrency.unwrap_or(4);
    if concurrency == 0 || concurrency > 1024 {
        return Err(Error::usage("--concurrency must be between 1 and 1024"));
    }
    if a.tries == 0 {
        return Err(Error::usage("--tries must be at least 1"));
    }
    let extra = a
        .header
        .iter()
        .map(|h| parse_header(h))
        .collect::<Result<Vec<_>, _>>()?;
    let ua = a
        .user_agent
        .clone()
        .unwrap_or_else(|| if a.mobile { UA_MOBILE } else { UA_DESKTOP }.to_string());
    let proxies = match &a.proxy {
        Some(p) => {
            check_proxy(p)?;
            Proxies {
                http: Some(p.clone()),
                https: Some(p.clone()),
            }
        }
        None => Proxies::default(),
    };
    // Checked before the groups are built, in the order the options were always checked, so
    // that of two bad values the same one is reported.
    let reject_regex = a
        .reject_regex
        .as_deref()
        .map(compile_reject_regex)
        .transpose()?;
    let reject_ext = match &a.reject {
        Some(l) => compile_reject_list(l, true)?,
        None => None,
    };
    let retry_on = parse_status_list(&a.retry_on)?;
    let max_retry_wait = secs(a.max_retry_wait, "--max-retry-wait")?;
    let wait = secs(a.wait, "--wait")?;
    let limit_rate = a.limit_rate.as_deref().map(parse_rate).transpose()?;
    let dns_timeout = secs(a.dns_timeout, "--dns-timeout")?;
    let connect_timeout = secs(a.connect_timeout, "--connect-timeout")?;
    let read_timeout = secs(a.read_timeout, "--read-timeout")?;
    Ok(Config {
        dialect: Dialect::Native,
        discovery: DiscoveryConfig {
            start_urls: a.urls,
            sitemaps: a.sitemap,
            robots_sitemaps: !a.no_robots_sitemaps && (a.robots_sitemaps || !a.no_recursive),
            robots_sitemaps_explicit: a.robots_sitemaps,
            url_list: a.url_list,
            recursive: !a.no_recursive,
            max_depth: a.max_depth,
            max_pages: a.max_pages,
            max_per_pattern: a.max_per_pattern,
            max_queue: a.max_queue.max(1),
            domains: a
                .domains
                .iter()
                .map(|d| d.trim().trim_end_matches('.').to_ascii_lowercase())
                .filter(|d| !d.is_empty())
                .collect(),
            reject_regex,
            reject_ext,
            norm: NormOptions {
                mode,
                ..NormOptions::default()
            },
        },
        http: HttpConfig {
            headers: build_headers(&ua, extra),
            tries: a.tries,
            retry_on,
            max_retry_wait,
            limit_rate,
            dns_timeout,
            connect_timeout,
            read_timeout,
            max_redirect: a.max_redirect,
            proxies,
            check_certificate: !a.no_check_certificate,
            prefer_ipv4: false,
        },
        pacing: PacingConfig {
            concurrency,
            wait,
            adaptive: warm.adaptive,
            max_load: warm.max_load,
        },
        inspection: warm.inspection,
        output: if a.json {
            Output::Json
        } else {
            Output::Plain {
                progress: !a.no_progress,
            }
        },
    })
}

/// A proxy must be an `http://host:port` URL.
pub(crate) fn check_proxy(p: &str) -> Result<(), Error> {
    let u = url::Url::parse(p).map_err(|e| Error::usage(format!("invalid proxy '{p}': {e}")))?;
    if u.scheme() != "http" || u.host_str().is_none() {
        return Err(Error::usage(format!(
            "invalid proxy '{p}': only http://host:port proxies are supported"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Result<Config, Error> {
        let mut v = vec!["cache-preload".to_string()];
        v.extend(args.iter().map(|s| s.to_string()));
        match parse(&v, &|_| None)? {
            Parsed::Run(c) => Ok(*c),
            Parsed::Print(_) => panic!("print"),
        }
    }

    #[test]
    fn defaults() {
        let c = run(&["https://example.com/"]).unwrap();
        assert!(c.discovery.recursive);
        assert_eq!(c.pacing.concurrency, 4);
        assert_eq!(c.http.tries, 2);
        assert_eq!(c.http.retry_on, vec![429, 503]);
        assert_eq!(c.discovery.norm.mode, PctMode::Browser);
        assert_eq!(c.http.headers[0].1, UA_DESKTOP);
        assert_eq!(c.http.headers[2].1, "gzip, deflate, br, zstd");
        assert!(c.http.check_certificate);
        assert_eq!(c.output, Output::Plain { progress: true });
    }

    #[test]
    fn options() {
        let c = run(&[
            "--mobile",
            "-H",
            "Accept-Encoding: br",
            "-H",
            "X-Test: 1",
            "--json",
            "-j",
            "8",
            "--pct-mode",
            "lower",
            "--no-recursive",
            "--sitemap",
            "https://e.com/s.xml",
            "--reject-regex",
            "/wp-admin/",
            "--reject",
            "css,js",
            "--limit-rate",
            "1m",
            "--proxy",
            "http://127.0.0.1:3434",
            "--no-check-certificate",
            "--domains",
            "a.com,WWW.B.com",
            "https://e.com/",
        ])
        .unwrap();
        assert_eq!(c.http.headers[0].1, UA_MOBILE);
        assert_eq!(c.http.headers[2].1, "br");
        assert_eq!(c.http.headers[3], ("X-Test".into(), "1".into()));
        assert_eq!(c.output, Output::Json);
        assert_eq!(c.pacing.concurrency, 8);
        assert_eq!(c.discovery.norm.mode, PctMode::Lower);
        assert!(!c.discovery.recursive);
        assert_eq!(c.http.limit_rate, Some(1 << 20));
        assert_eq!(
            c.http.proxies.https.as_deref(),
            Some("http://127.0.0.1:3434")
        );
        assert!(!c.http.check_certificate);
        assert_eq!(c.discovery.domains, vec!["a.com", "www.b.com"]);
    }

    #[test]
    fn env_mode_and_override() {
        let v: Vec<String> = ["cache-preload", "https://e.com/"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let env = |k: &str| (k == "PCTNORM_CASE").then(|| "upper".to_string());
        let Parsed::Run(c) = parse(&v, &env).unwrap() else {
            panic!()
        };
        assert_eq!(c.discovery.norm.mode, PctMode::Upper);
        let mut v2 = v.clone();
        v2.insert(1, "--pct-mode=preserve".into());
        let Parsed::Run(c) = parse(&v2, &env).unwrap() else {
            panic!()
        };
        assert_eq!(c.discovery.norm.mode, PctMode::Preserve);
        let bad = |k: &str| (k == "PCTNORM_CASE").then(|| "weird".to_string());
        assert!(parse(&v, &bad).is_err());
    }

    #[test]
    fn errors_are_one_line_usage() {
        for args in [
            &["--bogus", "https://e.com/"][..],
            &["--reject-regex", "(", "https://e.com/"],
            &[],
            &["--concurrency", "0", "https://e.com/"],
            &["--proxy", "socks5://x:1", "https://e.com/"],
            &["--pct-mode", "x", "https://e.com/"],
            &["-H", "broken", "https://e.com/"],
        ] {
            let e = run(args).unwrap_err();
            assert_eq!(e.exit_code(), crate::EXIT_USAGE, "{args:?}");
            assert!(!e.to_string().contains('\n'), "{e}");
        }
    }

    #[test]
    fn help_version_man_completions() {
        for a in ["--help", "--version", "--generate-man"] {
            let v = vec!["cache-preload".to_string(), a.to_string()];
            assert!(matches!(parse(&v, &|_| None).unwrap(), Parsed::Print(_)));
        }
        assert!(MAN_PAGE.contains(".TH cache-preload"));
        assert!(MAN_PAGE.contains("EXIT STATUS"));
        for sh in ["bash", "zsh", "fish", "elvish", "powershell"] {
            assert!(
                completion_script(sh).unwrap().contains("reject-regex"),
                "{sh}"
            );
        }
    }
}
