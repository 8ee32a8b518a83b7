//! The run configuration: plain data, produced by `cli` and read by every other layer.
//!
//! [`Config`] holds one group per concern ([`DiscoveryConfig`], [`HttpConfig`],
//! [`PacingConfig`], [`InspectionConfig`], [`Output`]), so a layer can be handed the group it
//! reads rather than the whole run.
//!
//! This is the crate's leaf module: it imports nothing from the crate, so any layer may use it.
//! Validation lives with the command line (`cli`); behaviour lives with the layer that acts on a
//! setting (`impl` blocks for [`ConnectTo`] matching or [`CacheIndex`] paths sit in `inspect`).

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use regex::Regex;

pub use nginx_cache::{KeyTemplate, Levels, DEFAULT_KEY};
pub use norm_shim::Mode as PctMode;
pub use norm_shim::Options as NormOptions;

/// A current desktop Chrome User-Agent (reduced UA string).
pub const UA_DESKTOP: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/142.0.0.0 Safari/537.36";
/// A current mobile Chrome User-Agent (reduced UA string).
pub const UA_MOBILE: &str = "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/142.0.0.0 Mobile Safari/537.36";
/// Chrome's `Accept` value for a top-level navigation.
pub const ACCEPT_BROWSER: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7";
/// The browser `Accept-Encoding` value sent by default (both dialects).
pub const ACCEPT_ENCODING_BROWSER: &str = "gzip, deflate, br, zstd";

/// Which command-line dialect is in use; it also selects the output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// The clap command line; plain lines, progress bar or JSON.
    Native,
    /// The GNU wget subset; wget `--no-verbose` log format.
    Wget,
}

/// How results are reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// GNU wget `--no-verbose` lines and the FINISHED summary (on stderr).
    WgetLog,
    /// Nothing at all (wget `--quiet`).
    Quiet,
    /// Plain lines on stdout; a progress bar instead when stderr is a terminal
    /// and `progress` is true.
    Plain {
        /// Allow the progress bar on a terminal.
        progress: bool,
    },
    /// One JSON object per event on stdout, then a summary object.
    Json,
}

/// HTTP proxies (plain HTTP proxies; https goes through CONNECT).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Proxies {
    /// Proxy for `http://` URLs.
    pub http: Option<String>,
    /// Proxy for `https://` URLs.
    pub https: Option<String>,
}

/// Everything a run needs, whichever dialect produced it, grouped by the layer that reads it.
#[derive(Debug, Clone)]
pub struct Config {
    /// The dialect that was parsed.
    pub dialect: Dialect,
    /// What to crawl.
    pub discovery: DiscoveryConfig,
    /// How each request is made.
    pub http: HttpConfig,
    /// How many requests run at once, and how fast they start.
    pub pacing: PacingConfig,
    /// What is checked in the cache besides warming it.
    pub inspection: InspectionConfig,
    /// Output format.
    pub output: Output,
}

/// What to crawl: seeds, link following and its limits; read by `run` (with `discover`).
#[derive(Debug, Clone)]
pub struct DiscoveryConfig {
    /// Start URLs as given (resolved at run time).
    pub start_urls: Vec<String>,
    /// Sitemap URLs to seed from.
    pub sitemaps: Vec<String>,
    /// Seed from the `Sitemap:` lines of each start host's robots.txt (default of recursive
    /// runs in both dialects).
    pub robots_sitemaps: bool,
    /// The robots.txt seeding was asked for explicitly: report a missing robots.txt or one
    /// without `Sitemap:` lines (silent when it is only the default).
    pub robots_sitemaps_explicit: bool,
    /// URL-list file (`-` for stdin).
    pub url_list: Option<String>,
    /// Follow links found in HTML.
    pub recursive: bool,
    /// Most link hops from a seed (`None` = unlimited).
    pub max_depth: Option<u32>,
    /// Stop after this many fetched pages.
    pub max_pages: Option<u64>,
    /// Most pages per digit-collapsed path pattern.
    pub max_per_pattern: Option<u64>,
    /// Bound on the frontier queue.
    pub max_queue: usize,
    /// Extra allowed hosts (native) or the wget `--domains` filter.
    pub domains: Vec<String>,
    /// Reject regex applied to the absolute URL.
    pub reject_regex: Option<Regex>,
    /// Reject patterns compiled from the extension/glob list.
    pub reject_ext: Option<Regex>,
    /// Request-target normalization of every URL met: seeds, links, sitemap entries (and the
    /// redirect targets `http` follows, so a hop is requested as a link to it would be).
    pub norm: NormOptions,
}

/// How each request is made (headers, retries, timeouts, proxies, TLS); read by `http`.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// Request headers in order; names as given. Includes User-Agent, Accept, Accept-Encoding.
    pub headers: Vec<(String, String)>,
    /// Attempts per URL.
    pub tries: u32,
    /// Statuses that are retried.
    pub retry_on: Vec<u16>,
    /// Cap on a retry pause (and on Retry-After).
    pub max_retry_wait: Duration,
    /// Per-request bandwidth cap, bytes per second.
    pub limit_rate: Option<u64>,
    /// DNS timeout.
    pub dns_timeout: Duration,
    /// Connect timeout.
    pub connect_timeout: Duration,
    /// Read (idle) timeout.
    pub read_timeout: Duration,
    /// Redirects followed per URL.
    pub max_redirect: u32,
    /// Proxies.
    pub proxies: Proxies,
    /// Verify TLS certificates.
    pub check_certificate: bool,
    /// Resolve IPv4 addresses first.
    pub prefer_ipv4: bool,
}

/// How many requests run at once and when each starts; read by `run` (with `pace`).
#[derive(Debug, Clone)]
pub struct PacingConfig {
    /// Requests in flight when concurrency is fixed (the adaptive controller's start otherwise).
    pub concurrency: usize,
    /// Pause between requests (wget's `--wait`; one request at a time when non-zero).
    pub wait: Duration,
    /// Adaptive concurrency, unless a fixed `--concurrency` (or a wget `--wait`) was given.
    pub adaptive: Option<Pacing>,
    /// `--max-load`: hold new requests while the load average of a local site is above it.
    pub max_load: Option<f64>,
}

/// What is checked in the cache besides warming it; read by `run` (with `inspect`).
#[derive(Clone, Debug, Default)]
pub struct InspectionConfig {
    /// `--cache-header NAME`.
    pub cache_header: Option<String>,
    /// `--verify`.
    pub verify: bool,
    /// `--variants [SET]`.
    pub variants: Option<VariantSet>,
    /// `--cache-path` (+ `--cache-key`, `--levels`).
    pub index: Option<CacheIndex>,
    /// `--index-out FILE|-`.
    pub index_out: Option<PathBuf>,
    /// `--replay-keys DIR` with the key template to split keys by.
    pub replay_keys: Option<(PathBuf, KeyTemplate)>,
    /// `--connect-to` rules: the nodes each page is also warmed on.
    pub connect_to: Vec<ConnectTo>,
}

/// Default `--max-concurrency` (see the module docs for why 6).
pub const DEFAULT_MAX_CONCURRENCY: usize = 6;

/// Default cap on requests in flight while the responses are cache HITs: each costs nginx a
/// file read and no PHP worker, so a warm cache is re-checked at the speed of nginx (a
/// `--max-concurrency` given by the user caps both).
pub const DEFAULT_MAX_CONCURRENCY_CACHED: usize = 16;

/// Tuning of the adaptive concurrency controller (`pace::adaptive`).
#[derive(Clone, Debug, PartialEq)]
pub struct Pacing {
    /// Hard cap on requests in flight (`--max-concurrency`), at least 1.
    pub max_concurrency: usize,
    /// Cap while most recent responses are cache HITs.
    pub max_concurrency_cached: usize,
    /// Hard cap on requests started per second (`--max-rps`), if any.
    pub max_rps: Option<f64>,
    /// A round whose median latency exceeds this multiple of the baseline counts as growth.
    pub latency_factor: f64,
    /// Fewest completions that make a round (more when the limit is higher).
    pub min_round: usize,
    /// Growth below this is never congestion: for sub-millisecond cache HITs the ratio alone
    /// would react to scheduler jitter, and a few milliseconds harm no visitor.
    pub min_growth: Duration,
    /// Idle cores kept for visitors when the site runs on this machine (`--cpu-reserve`);
    /// `None` = one core, or half the machine below two cores; 0 = no CPU check.
    pub cpu_reserve: Option<f64>,
}

impl Default for Pacing {
    fn default() -> Self {
        Pacing {
            max_concurrency: DEFAULT_MAX_CONCURRENCY,
            max_concurrency_cached: DEFAULT_MAX_CONCURRENCY_CACHED,
            max_rps: None,
            latency_factor: 1.5,
            min_round: 4,
            min_growth: Duration::from_millis(3),
            cpu_reserve: None,
        }
    }
}

impl Pacing {
    /// Checks user-given caps: both must be positive and finite.
    pub fn validate(&self) -> Result<(), String> {
        if self.max_concurrency == 0 {
            return Err("--max-concurrency must be at least 1".into());
        }
        if let Some(r) = self.max_rps {
            if !(r.is_finite() && r > 0.0) {
                return Err("--max-rps must be a positive number".into());
            }
        }
        Ok(())
    }
}

/// Which header variants `--variants` warms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VariantSet {
    /// Every `Accept-Encoding` value of the variant list, desktop User-Agent only.
    Encodings,
    /// Desktop and mobile User-Agents, default `Accept-Encoding` only.
    Agents,
    /// The product: every encoding for desktop and for mobile.
    All,
}

impl VariantSet {
    /// Parses `encodings`, `agents` or `all` (the default of a bare `--variants`).
    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "encodings" | "accept-encoding" => Ok(VariantSet::Encodings),
            "agents" | "user-agent" => Ok(VariantSet::Agents),
            "all" | "" => Ok(VariantSet::All),
            other => Err(format!(
                "--variants: unknown set {other:?} (expected encodings, agents or all)"
            )),
        }
    }
}

/// One `--connect-to` rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectTo {
    /// Host it applies to (lower case), or any.
    pub host: Option<String>,
    /// Port it applies to, or any.
    pub port: Option<u16>,
    /// Where to connect instead.
    pub addr: SocketAddr,
}

impl fmt::Display for ConnectTo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.addr)
    }
}

fn port(s: &str, what: &str, arg: &str) -> Result<u16, String> {
    s.parse::<u16>()
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| format!("--connect-to {arg:?}: {what} port must be 1-65535"))
}

impl ConnectTo {
    /// Parses `HOST:PORT:ADDR:PORT`; `ADDR` is an IPv4 literal or a bracketed IPv6 literal.
    pub fn parse(arg: &str) -> Result<Self, String> {
        let bad = || {
            format!("--connect-to {arg:?}: expected HOST:PORT:ADDR:PORT with ADDR an IP address")
        };
        let (host, rest) = if let Some(r) = arg.strip_prefix('[') {
            // A bracketed IPv6 literal as the public host.
            let end = r.find("]:").ok_or_else(bad)?;
            (r[..end].to_ascii_lowercase(), &r[end + 2..])
        } else {
            let (h, r) = arg.split_once(':').ok_or_else(bad)?;
            (h.to_ascii_lowercase(), r)
        };
        let (pub_port, rest) = rest.split_once(':').ok_or_else(bad)?;
        let (addr, node_port) = if let Some(r) = rest.strip_prefix('[') {
            let (a, p) = r.split_once("]:").ok_or_else(bad)?;
            (a, p)
        } else {
            rest.rsplit_once(':').ok_or_else(bad)?
        };
        let ip: IpAddr = addr.parse().map_err(|_| {
            format!(
                "--connect-to {arg:?}: {addr:?} is not an IP address (names are not resolved here)"
            )
        })?;
        if rest.starts_with('[') != ip.is_ipv6() {
            return Err(bad());
        }
        Ok(ConnectTo {
            host: (!host.is_empty()).then_some(host),
            port: if pub_port.is_empty() {
                None
            } else {
                Some(port(pub_port, "public", arg)?)
            },
            addr: SocketAddr::new(ip, port(node_port, "node", arg)?),
        })
    }

    /// Whether this rule applies to a URL's host and port.
    pub fn matches(&self, host: &str, port: u16) -> bool {
        self.host
            .as_deref()
            .is_none_or(|h| h.eq_ignore_ascii_case(host))
            && self.port.is_none_or(|p| p == port)
    }
}

/// Computes keys and file paths for warmed URLs (`--cache-path`, `--cache-key`, `--levels`).
#[derive(Clone, Debug)]
pub struct CacheIndex {
    /// The key template.
    pub template: KeyTemplate,
    /// The cache directory (`fastcgi_cache_path`).
    pub base: PathBuf,
    /// Its `levels=`.
    pub levels: Levels,
    /// Whether to open each file and compare its `KEY:` line.
    pub check: bool,
}
