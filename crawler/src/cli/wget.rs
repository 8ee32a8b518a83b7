//! The GNU wget dialect: the option subset the NPP plugin passes
//! (npp-usage.md §1.6–§1.9), parsed by hand with wget's own syntax:
//! `--opt=value`, `--opt value`, `-e key=value`/`-ekey=value`,
//! `-l inf`/`-linf`, `-P dir`/`-Pdir`, `--` ends the options.
//!
//! Anything else is rejected with a one-line error (exit 2), so a typo in a
//! plugin setting fails the plugin's 300 ms start test instead of silently
//! crawling with different settings.

use super::{
    build_headers, compile_reject_list, compile_reject_regex, env_pct_mode, parse_header,
    parse_rate, parse_secs, parse_status_list, Parsed,
};
use crate::config::{
    Config, Dialect, DiscoveryConfig, HttpConfig, InspectionConfig, NormOptions, Output,
    PacingConfig, PctMode, Proxies, UA_DESKTOP,
};
use crate::Error;

/// Usage text of the wget dialect.
pub const HELP: &str = "\
Usage: cache-preload [OPTION]... [--] URL...
GNU wget-compatible dialect of cache-preload (selected by argv[0] 'wget' or a
wget-only option such as --no-verbose, --quiet, -r, --no-config, -e, -P, -l).
Nothing is written to disk; bodies are discarded (as with --delete-after).

  -q, --quiet                  print nothing
  -nv, --no-verbose            GNU wget --no-verbose log lines and summary (default)
  -r, --recursive              follow links on the start hosts
  -l, --level=N|inf            maximum recursion depth (default 5 with -r)
  -w, --wait=SECS              pause between requests; > 0 means one request at a time
      --waitretry=SECS         longest pause before a retry (caps Retry-After)
  -t, --tries=N                attempts per URL (0 or inf = 20)
      --retry-on-http-error=L  statuses to retry, e.g. 503,429
  -T, --timeout=SECS           sets the DNS, connect and read timeouts
      --dns-timeout=SECS, --connect-timeout=SECS, --read-timeout=SECS
      --limit-rate=RATE        per-request bandwidth cap (k, m suffixes)
      --max-redirect=N         redirects followed (default 20)
      --reject-regex=REGEX     skip URLs matching REGEX (Rust regex syntax)
  -R, --reject=LIST            skip file suffixes/globs (see --ignore-case)
      --ignore-case            match --reject case-insensitively
  -D, --domains=LIST           only hosts in LIST (in addition to the start hosts)
      --header=STRING          extra header, replaces a default of the same name;
                               an empty value clears earlier ones. Defaults: Chrome's
                               Accept and Accept-Encoding: gzip, deflate, br, zstd
  -U, --user-agent=UA          User-Agent header
      --no-check-certificate   do not verify TLS certificates
      --prefer-family=IPv4|IPv6|none
  -e, --execute=COMMAND        robots=on|off, use_proxy=on|off, http_proxy=URL, https_proxy=URL
  -P, --directory-prefix=DIR   accepted and ignored (nothing is written)
      --pct-mode=MODE          browser|upper|lower|preserve|off (default $PCTNORM_CASE or browser)
      --no-robots-sitemaps     with -r, do not seed from the Sitemap: lines of robots.txt
                               (read by default; robots.txt never excludes anything)
      --no-config, --no-cookies, --delete-after, --no-dns-cache, --no-cache
                               accepted; they describe what cache-preload always does
  -V, --version                print the version
  -h, --help                   print this help

Exit status: 0 success, 1 internal error, 2 bad arguments, 4 network failure
(nothing fetched), 8 some pages failed (HTTP or network error).
";

struct Opt {
    long: &'static str,
    short: Option<&'static str>,
    takes_value: bool,
}

const OPTS: &[Opt] = &[
    o("quiet", Some("q"), false),
    o("no-verbose", Some("nv"), false),
    o("verbose", None, false),
    o("recursive", Some("r"), false),
    o("level", Some("l"), true),
    o("no-cache", None, false),
    o("no-config", None, false),
    o("no-cookies", None, false),
    o("delete-after", None, false),
    o("no-dns-cache", None, false),
    o("no-check-certificate", None, false),
    o("check-certificate", None, false),
    o("prefer-family", None, true),
    o("retry-on-http-error", None, true),
    o("waitretry", None, true),
    o("dns-timeout", None, true),
    o("connect-timeout", None, true),
    o("read-timeout", None, true),
    o("timeout", Some("T"), true),
    o("tries", Some("t"), true),
    o("ignore-case", None, false),
    o("execute", Some("e"), true),
    o("directory-prefix", Some("P"), true),
    o("limit-rate", None, true),
    o("wait", Some("w"), true),
    o("reject-regex", None, true),
    o("reject", Some("R"), true),
    o("domains", Some("D"), true),
    o("header", None, true),
    o("user-agent", Some("U"), true),
    o("max-redirect", None, true),
    o("pct-mode", None, true),
    o("no-robots-sitemaps", None, false),
    o("version", Some("V"), false),
    o("help", Some("h"), false),
];

const fn o(long: &'static str, short: Option<&'static str>, takes_value: bool) -> Opt {
    Opt {
        long,
        short,
        takes_value,
    }
}

#[derive(Default)]
struct Raw {
    quiet: bool,
    recursive: bool,
    level: Option<Option<u32>>,
    check_certificate: bool,
    prefer_ipv4: bool,
    retry_on: Option<Vec<u16>>,
    waitretry: Option<std::time::Duration>,
    dns_timeout: Option<std::time::Duration>,
    connect_timeout: Option<std::time::Duration>,
    read_timeout: Option<std::time::Duration>,
    tries: Option<u32>,
    ignore_case: bool,
    use_proxy: Option<bool>,
    http_proxy: Option<String>,
    https_proxy: Option<String>,
    limit_rate: Option<u64>,
    wait: Option<std::time::Duration>,
    reject_regex: Option<String>,
    reject: Vec<String>,
    domains: Vec<String>,
    headers: Vec<(String, String)>,
    user_agent: Option<String>,
    max_redirect: Option<u32>,
    pct_mode: Option<PctMode>,
    no_robots_sitemaps: bool,
    urls: Vec<String>,
}

fn truthy(v: &str, what: &str) -> Result<bool, Error> {
    match v.to_ascii_lowercase().as_str() {
        "on" | "yes" | "1" | "true" => Ok(true),
        "off" | "no" | "0" | "false" => Ok(false),
        _ => Err(Error::usage(format!("{what}: invalid boolean '{v}'"))),
    }
}

fn proxy_url(v: &str) -> Result<String, Error> {
    let v = v.trim();
    let full = if v.contains("://") {
        v.to_string()
    } else {
        format!("http://{v}")
    };
    super::native::check_proxy(&full)?;
    Ok(full)
}

fn parse_count(v: &str, what: &str) -> Result<u32, Error> {
    v.trim()
        .parse::<u32>()
        .map_err(|_| Error::usage(format!("{what}: invalid number '{v}'")))
}

impl Raw {
    fn apply(&mut self, long: &str, value: Option<String>) -> Result<Option<Parsed>, Error> {
        let v = value.unwrap_or_default();
        let what = format!("--{long}");
        match long {
            "quiet" => self.quiet = true,
            "no-verbose" | "verbose" => {}
            "recursive" => self.recursive = true,
            "no-robots-sitemaps" => self.no_robots_sitemaps = true,
            "level" => {
                self.level = Some(match v.as_str() {
                    "inf" | "0" => None,
                    n => Some(parse_count(n, &what)?),
                })
            }
            "no-cache" | "no-config" | "no-cookies" | "delete-after" | "no-dns-cache" => {}
            "no-check-certificate" => self.check_certificate = false,
            "check-certificate" => self.check_certificate = true,
            "prefer-family" => match v.to_ascii_lowercase().as_str() {
                "ipv4" => self.prefer_ipv4 = true,
                "ipv6" | "none" => self.prefer_ipv4 = false,
                _ => return Err(Error::usage(format!("{what}: invalid value '{v}'"))),
            },
            "retry-on-http-error" => self.retry_on = Some(parse_status_list(&v)?),
            "waitretry" => self.waitretry = Some(parse_secs(&v, &what)?),
            "dns-timeout" => self.dns_timeout = Some(parse_secs(&v, &what)?),
            "connect-timeout" => self.connect_timeout = Some(parse_secs(&v, &what)?),
            "read-timeout" => self.read_timeout = Some(parse_secs(&v, &what)?),
            "timeout" => {
                let d = parse_secs(&v, &what)?;
                self.dns_timeout = Some(d);
                self.connect_timeout = Some(d);
                self.read_timeout = Some(d);
            }
            "tries" => {
                self.tries = Some(match v.as_str() {
                    "inf" | "0" => 20,
                    n => parse_count(n, &what)?.clamp(1, 100),
                })
            }
            "ignore-case" => self.ignore_case = true,
            "execute" => self.execute(&v)?,
            "directory-prefix" => {}
            "limit-rate" => self.limit_rate = Some(parse_rate(&v)?).filter(|r| *r > 0),
            "wait" => self.wait = Some(parse_secs(&v, &what)?),
            "reject-regex" => self.reject_regex = Some(v),
            "reject" => self.reject.push(v),
            "domains" => self.domains.extend(
                v.split(',')
                    .map(|d| d.trim().trim_end_matches('.').to_ascii_lowercase())
                    .filter(|d| !d.is_empty()),
            ),
            "header" => {
                if v.trim().is_empty() {
                    self.headers.clear();
                } else {
                    self.headers.push(parse_header(&v)?);
                }
            }
            "user-agent" => self.user_agent = Some(v),
            "max-redirect" => self.max_redirect = Some(parse_count(&v, &what)?),
            "pct-mode" => {
                self.pct_mode = Some(
                    v.parse()
                        .map_err(|e: norm_shim::ParseModeError| Error::usage(e.to_string()))?,
                )
            }
            "version" => {
                return Ok(Some(Parsed::Print(format!(
                    "cache-preload {} (GNU wget dialect)\n",
                    env!("CARGO_PKG_VERSION")
                ))))
            }
            "help" => return Ok(Some(Parsed::Print(HELP.to_string()))),
            _ => return Err(Error::usage(format!("unrecognized option '--{long}'"))),
        }
        Ok(None)
    }

    fn execute(&mut self, cmd: &str) -> Result<(), Error> {
        let (k, v) = cmd
            .split_once('=')
            .ok_or_else(|| Error::usage(format!("-e '{cmd}': expected KEY=VALUE")))?;
        // wget ignores case, '-' and '_' in command names.
        let key: String = k
            .trim()
            .chars()
            .filter(|c| *c != '_' && *c != '-')
            .collect::<String>()
            .to_ascii_lowercase();
        let v = v.trim();
        match key.as_str() {
            "robots" => {
                // robots.txt is never used for exclusion; only validate.
                truthy(v, "-e robots")?;
            }
            "useproxy" => self.use_proxy = Some(truthy(v, "-e use_proxy")?),
            "httpproxy" => self.http_proxy = Some(proxy_url(v)?),
            "httpsproxy" => self.https_proxy = Some(proxy_url(v)?),
            _ => {
                return Err(Error::usage(format!(
                    "-e '{cmd}': unsupported command '{}'",
                    k.trim()
                )))
            }
        }
        Ok(())
    }
}

fn find_long(name: &str) -> Option<&'static Opt> {
    OPTS.iter().find(|o| o.long == name)
}

fn find_short(name: &str) -> Option<&'static Opt> {
    OPTS.iter().find(|o| o.short == Some(name))
}

/// Parse the wget dialect.
pub fn parse(argv: &[String], env: &dyn Fn(&str) -> Option<String>) -> Result<Parsed, Error> {
    let mut raw = Raw {
        check_certificate: true,
        ..Raw::default()
    };
    let mut i = 1;
    let mut only_urls = false;
    while i < argv.len() {
        let arg = &argv[i];
        i += 1;
        if only_urls || !arg.starts_with('-') || arg == "-" {
            raw.urls.push(arg.clone());
            continue;
        }
        if arg == "--" {
            only_urls = true;
            continue;
        }
        let (opt, inline): (&Opt, Option<String>) = if let Some(body) = arg.strip_prefix("--") {
            let (name, val) = match body.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (body, None),
            };
            let opt = find_long(name)
                .ok_or_else(|| Error::usage(format!("unrecognized option '--{name}'")))?;
            (opt, val)
        } else {
            let body = &arg[1..];
            if let Some(opt) = find_short(body) {
                (opt, None)
            } else {
                // Attached value: -linf, -P/tmp, -erobots=off.
                let (first, rest) = body.split_at(body.chars().next().map_or(0, char::len_utf8));
                match find_short(first).filter(|o| o.takes_value) {
                    Some(opt) => (opt, Some(rest.to_string())),
                    None => return Err(Error::usage(format!("invalid option '{arg}'"))),
                }
            }
        };
        let value = if opt.takes_value {
            match inline {
                Some(v) => Some(v),
                None => {
                    let v = argv.get(i).cloned().ok_or_else(|| {
                        Error::usage(format!("option '--{}' requires an argument", opt.long))
                    })?;
                    i += 1;
                    Some(v)
                }
            }
        } else {
            if inline.is_some() {
                return Err(Error::usage(format!(
                    "option '--{}' doesn't allow an argument",
                    opt.long
                )));
            }
            None
        };
        if let Some(p) = raw.apply(opt.long, value)? {
            return Ok(p);
        }
    }
    into_config(raw, env).map(|c| Parsed::Run(Box::new(c)))
}

fn into_config(raw: Raw, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, Error> {
    if raw.urls.is_empty() {
        return Err(Error::usage("missing URL (try 'cache-preload --help')"));
    }
    let urls = raw
        .urls
        .iter()
        .map(|u| {
            if u.contains("://") {
                u.clone()
            } else {
                // wget's default scheme for a bare host/path.
                format!("http://{u}")
            }
        })
        .collect();
    let mode = match raw.pct_mode {
        Some(m) => m,
        None => env_pct_mode(env)?.unwrap_or_default(),
    };
    let reject_ext = if raw.reject.is_empty() {
        None
    } else {
        compile_reject_list(&raw.reject.join(","), raw.ignore_case)?
    };
    let use_proxy = raw.use_proxy.unwrap_or(true);
    let proxies = if use_proxy {
        Proxies {
            http: raw.http_proxy,
            https: raw.https_proxy,
        }
    } else {
        Proxies::default()
    };
    let wait = raw.wait.unwrap_or_default();
    let ua = raw.user_agent.unwrap_or_else(|| UA_DESKTOP.to_string());
    Ok(Config {
        dialect: Dialect::Wget,
        discovery: DiscoveryConfig {
            start_urls: urls,
            sitemaps: Vec::new(),
            // wget itself never reads sitemaps; NPP's "Preload All" misses pages that only the
            // sitemap links (author pages), so a recursive run seeds from them unless told not to.
            robots_sitemaps: raw.recursive && !raw.no_robots_sitemaps,
            robots_sitemaps_explicit: false,
            url_list: None,
            recursive: raw.recursive,
            max_depth: if raw.recursive {
                raw.level.unwrap_or(Some(5))
            } else {
                Some(0)
            },
            max_pages: None,
            max_per_pattern: None,
            max_queue: 1_000_000,
            domains: raw.domains,
            reject_regex: raw
                .reject_regex
                .as_deref()
                .map(compile_reject_regex)
                .transpose()?,
            reject_ext,
            norm: NormOptions {
                mode,
                ..NormOptions::default()
            },
        },
        http: HttpConfig {
            headers: build_headers(&ua, raw.headers),
            tries: raw.tries.unwrap_or(20),
            retry_on: raw.retry_on.unwrap_or_default(),
            max_retry_wait: raw.waitretry.unwrap_or(std::time::Duration::from_secs(10)),
            limit_rate: raw.limit_rate,
            dns_timeout: raw
                .dns_timeout
                .unwrap_or(std::time::Duration::from_secs(10)),
            connect_timeout: raw
                .connect_timeout
                .unwrap_or(std::time::Duration::from_secs(10)),
            read_timeout: raw
                .read_timeout
                .unwrap_or(std::time::Duration::from_secs(900)),
            max_redirect: raw.max_redirect.unwrap_or(20),
            proxies,
            check_certificate: raw.check_certificate,
            prefer_ipv4: raw.prefer_ipv4,
        },
        pacing: PacingConfig {
            concurrency: if wait.is_zero() { 4 } else { 1 },
            wait,
            adaptive: super::warm::wget_adaptive(wait.is_zero()),
            max_load: None,
        },
        inspection: InspectionConfig::default(),
        output: if raw.quiet {
            Output::Quiet
        } else {
            Output::WgetLog
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn run(args: &[&str]) -> Result<Config, Error> {
        let mut v = vec!["wget".to_string()];
        v.extend(args.iter().map(|s| s.to_string()));
        match parse(&v, &|_| None)? {
            Parsed::Run(c) => Ok(*c),
            Parsed::Print(_) => panic!("print"),
        }
    }

    /// Command B of npp-usage.md §1.7, argument for argument.
    fn npp_b() -> Vec<&'static str> {
        let mut v: Vec<&'static str> =
            include_str!("../../../tests/fixtures/npp-preload-fixed.args")
                .lines()
                .collect();
        v.extend_from_slice(&[
            "-e",
            "use_proxy=yes",
            "-e",
            "http_proxy=http://127.0.0.1:3434",
            "-e",
            "https_proxy=http://127.0.0.1:3434",
            "-P",
            "/tmp",
            "--limit-rate=5120k",
            "--wait=0",
            "--reject-regex=/wp-admin/|\\?|=|&|#",
            "--reject=*.css,*.js,*.PNG",
            "--domains=example.com,www.example.com",
            "--header=Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
            "--user-agent=Mozilla/5.0 (NPP)",
            "--",
            "https://example.com",
        ]);
        v
    }

    #[test]
    fn npp_command_b() {
        let c = run(&npp_b()).unwrap();
        assert_eq!(c.dialect, Dialect::Wget);
        assert!(c.discovery.recursive);
        assert_eq!(c.discovery.max_depth, None);
        assert!(!c.http.check_certificate);
        assert!(c.http.prefer_ipv4);
        assert_eq!(c.http.retry_on, vec![503, 429]);
        assert_eq!(c.http.max_retry_wait, Duration::from_secs(10));
        assert_eq!(c.http.connect_timeout, Duration::from_secs(5));
        assert_eq!(c.http.read_timeout, Duration::from_secs(60));
        assert_eq!(c.http.tries, 2);
        assert_eq!(
            c.http.proxies.http.as_deref(),
            Some("http://127.0.0.1:3434")
        );
        assert_eq!(c.http.limit_rate, Some(5120 * 1024));
        assert_eq!(c.pacing.concurrency, 4);
        assert!(c
            .discovery
            .reject_regex
            .as_ref()
            .unwrap()
            .is_match("https://example.com/?p=1"));
        assert!(c
            .discovery
            .reject_ext
            .as_ref()
            .unwrap()
            .is_match("logo.png"));
        assert_eq!(c.discovery.domains, vec!["example.com", "www.example.com"]);
        assert_eq!(c.http.headers[0].1, "Mozilla/5.0 (NPP)");
        assert!(c.http.headers[1]
            .1
            .starts_with("text/html,application/xhtml+xml,application/xml;q=0.9,*/*"));
        assert_eq!(c.http.headers[2].1, "gzip, deflate, br, zstd");
        assert_eq!(c.discovery.start_urls, vec!["https://example.com"]);
        assert_eq!(c.output, Output::WgetLog);
    }

    #[test]
    fn npp_command_a_and_c() {
        // A: --quiet, --no-cache, -l inf with wait.
        let mut a = npp_b();
        a[0] = "--quiet";
        a.insert(4, "--no-cache");
        let wait = a.iter().position(|x| *x == "--wait=0").unwrap();
        a[wait] = "--wait=2";
        let c = run(&a).unwrap();
        assert_eq!(c.output, Output::Quiet);
        assert_eq!(c.pacing.concurrency, 1);
        assert_eq!(c.pacing.wait, Duration::from_secs(2));
        // C: no recursion, use_proxy=no.
        let c = run(&[
            "--quiet",
            "--no-config",
            "--no-cookies",
            "--delete-after",
            "--tries=1",
            "-e",
            "use_proxy=no",
            "-e",
            "http_proxy=127.0.0.1:3434",
            "-P",
            "/tmp",
            "--",
            "https://example.com/p/%e6%b0%b4/",
        ])
        .unwrap();
        assert!(!c.discovery.recursive);
        assert_eq!(c.discovery.max_depth, Some(0));
        assert_eq!(c.http.proxies, Proxies::default());
        assert_eq!(c.http.tries, 1);
    }

    #[test]
    fn syntax_forms() {
        let c = run(&[
            "-r",
            "-linf",
            "-erobots=off",
            "-P/tmp",
            "-nv",
            "-t",
            "3",
            "x.com",
        ])
        .unwrap();
        assert_eq!(c.discovery.max_depth, None);
        assert_eq!(c.http.tries, 3);
        assert_eq!(c.discovery.start_urls, vec!["http://x.com"]);
        let c = run(&[
            "-r",
            "--level",
            "2",
            "--reject",
            "css",
            "--reject",
            "js",
            "http://x/",
        ])
        .unwrap();
        assert_eq!(c.discovery.max_depth, Some(2));
        assert!(!c.discovery.reject_ext.as_ref().unwrap().is_match("A.CSS"));
        assert!(c.discovery.reject_ext.as_ref().unwrap().is_match("a.js"));
        let c = run(&["-r", "http://x/"]).unwrap();
        assert_eq!(c.discovery.max_depth, Some(5));
        let c = run(&[
            "--header=X: 1",
            "--header=",
            "--header",
            "Y: 2",
            "http://x/",
        ])
        .unwrap();
        assert_eq!(c.http.headers.len(), 4);
        assert_eq!(c.http.headers[3].0, "Y");
        let c = run(&["--pct-mode=upper", "--", "--not-an-option"]).unwrap();
        assert_eq!(c.discovery.norm.mode, PctMode::Upper);
        assert_eq!(c.discovery.start_urls, vec!["http://--not-an-option"]);
    }

    #[test]
    fn errors() {
        for args in [
            &["--bogus", "http://x/"][..],
            &["--spider", "http://x/"],
            &["-Z", "http://x/"],
            &["-e", "robots", "http://x/"],
            &["-e", "cookies=off", "http://x/"],
            &["--reject-regex=(", "http://x/"],
            &["--level=deep", "http://x/"],
            &["--tries"],
            &["--quiet=1", "http://x/"],
            &["--quiet"],
            &["-e", "http_proxy=socks5://h:1", "http://x/"],
        ] {
            let e = run(args).unwrap_err();
            assert_eq!(e.exit_code(), crate::EXIT_USAGE, "{args:?}");
            assert!(!e.to_string().contains('\n'));
        }
    }

    #[test]
    fn help_and_version() {
        for a in ["--help", "-h", "--version", "-V"] {
            let v = vec!["wget".to_string(), a.to_string()];
            assert!(matches!(parse(&v, &|_| None).unwrap(), Parsed::Print(_)));
        }
    }
}
