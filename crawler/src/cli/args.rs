// The native command line, as a clap derive. This file is also compiled by
// build.rs (via include!) to generate the man page and shell completions,
// so it must only use `clap` and `std`.

/// Warm an nginx page cache after a purge with browser-exact GET requests.
///
/// Crawls a site (links, sitemaps, URL lists), sends each page's request
/// line exactly as a browser would, discards the bodies and reports what
/// was fetched. Nothing is written to disk.
#[derive(clap::Parser, Debug, Clone)]
#[command(
    name = "cache-preload",
    version,
    about,
    long_about = None,
    after_help = "EXIT STATUS:\n  0  every page fetched with a 2xx response\n  1  internal or I/O error\n  2  bad arguments (unknown option, bad value, invalid regex)\n  4  network failure: no page could be fetched at all\n  8  partial: some pages failed (HTTP error or network error)\n  143/130  terminated by SIGTERM/SIGINT (no summary)\n\nWGET DIALECT:\n  If argv[0] is `wget`, or an argument before `--` is one of --no-verbose, -nv,\n  --quiet, -q, --recursive, -r, --delete-after, --no-config, --no-cookies,\n  -e/--execute, -P/--directory-prefix, -l/--level (also as --opt=VALUE or an\n  attached short value), the GNU wget command line and --no-verbose log are used."
)]
pub struct NativeArgs {
    /// Start URLs (crawled recursively unless --no-recursive).
    #[arg(value_name = "URL")]
    pub urls: Vec<String>,

    /// Seed from a sitemap or sitemap index (XML, gzip or text); repeatable.
    #[arg(long, value_name = "URL")]
    pub sitemap: Vec<String>,

    /// Seed from the Sitemap: lines of each start host's robots.txt (the default when
    /// following links); given explicitly, a robots.txt without them is reported.
    #[arg(long, overrides_with = "no_robots_sitemaps")]
    pub robots_sitemaps: bool,

    /// Do not read robots.txt for Sitemap: lines.
    #[arg(long)]
    pub no_robots_sitemaps: bool,

    /// Read start URLs from FILE, one per line (`-` for stdin, `#` comments).
    #[arg(long, value_name = "FILE")]
    pub url_list: Option<String>,

    /// Fetch only the given URLs; do not follow links.
    #[arg(long)]
    pub no_recursive: bool,

    /// Most link hops from a start URL (default: unlimited).
    #[arg(long, value_name = "N")]
    pub max_depth: Option<u32>,

    /// Stop after fetching N pages.
    #[arg(long, value_name = "N")]
    pub max_pages: Option<u64>,

    /// Most pages per path pattern (digits collapsed), against crawl traps such as endless calendars.
    #[arg(long, value_name = "N")]
    pub max_per_pattern: Option<u64>,

    /// Most URLs waiting in the queue; further discoveries are dropped and counted.
    #[arg(long, value_name = "N", default_value_t = 1_000_000)]
    pub max_queue: usize,

    /// Extra hosts to stay on, comma-separated; each also allows its www./bare twin.
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    pub domains: Vec<String>,

    /// Skip URLs matching this Rust regex (matched against the full absolute URL, case-sensitive; use (?i) for case-insensitive).
    #[arg(long, value_name = "REGEX")]
    pub reject_regex: Option<String>,

    /// Skip file extensions or globs, comma-separated, case-insensitive (e.g. jpg,*.pdf).
    #[arg(long, value_name = "LIST")]
    pub reject: Option<String>,

    /// Percent-encoding case of the request-target: browser, upper, lower, preserve or off [default: $PCTNORM_CASE or browser].
    #[arg(long, value_name = "MODE")]
    pub pct_mode: Option<String>,

    /// User-Agent header (default: a current desktop Chrome).
    #[arg(short = 'U', long, value_name = "UA")]
    pub user_agent: Option<String>,

    /// Use a current mobile Chrome User-Agent (for the mobile cache pass).
    #[arg(long)]
    pub mobile: bool,

    /// Extra request header "Name: value"; repeatable; replaces a default of the same name.
    #[arg(short = 'H', long, value_name = "HEADER")]
    pub header: Vec<String>,

    /// Fixed number of concurrent requests (turns adaptive concurrency off).
    #[arg(short = 'j', long, value_name = "N")]
    pub concurrency: Option<usize>,

    /// Cap of the adaptive concurrency (starts at 1, grows while latency stays near the baseline) [default: 6].
    #[arg(long, value_name = "N")]
    pub max_concurrency: Option<usize>,

    /// Cap on requests started per second.
    #[arg(long, value_name = "N")]
    pub max_rps: Option<f64>,

    /// Hold new requests while the 1-minute load average is above N (only when the site runs on this machine).
    #[arg(long, value_name = "N")]
    pub max_load: Option<f64>,

    /// Idle cores to leave to visitors when the site runs on this machine: adaptive concurrency
    /// grows only while that many stand idle (default 1, or half the cores below two; 0 turns
    /// the check off).
    #[arg(long, value_name = "CORES")]
    pub cpu_reserve: Option<f64>,

    /// The cache-status header to read (default: X-FastCGI-Cache, X-Cache-Status, X-Proxy-Cache or X-Cache, detected).
    #[arg(long, value_name = "NAME")]
    pub cache_header: Option<String>,

    /// Re-request every warmed page as a visitor and list the pages that still miss, with the reason.
    #[arg(long)]
    pub verify: bool,

    /// Also warm header variants: --variants[=all], =encodings (4 Accept-Encoding values) or =agents (desktop + mobile).
    #[arg(long, value_name = "SET", num_args = 0..=1, require_equals = true, default_missing_value = "all")]
    pub variants: Option<String>,

    /// nginx cache directory: compute each page's cache file and check its KEY line.
    #[arg(long, value_name = "DIR")]
    pub cache_path: Option<String>,

    /// nginx cache key template [default: $scheme$request_method$host$request_uri].
    #[arg(long, value_name = "TEMPLATE")]
    pub cache_key: Option<String>,

    /// levels= of the nginx cache path [default: 1:2].
    #[arg(long, value_name = "LEVELS")]
    pub levels: Option<String>,

    /// Write the URL to cache-file index as JSON lines to FILE (`-` for stdout).
    #[arg(long, value_name = "FILE")]
    pub index_out: Option<String>,

    /// Re-request exactly the keys found in this nginx cache directory.
    #[arg(long, value_name = "DIR")]
    pub replay_keys: Option<String>,

    /// Also request every page of HOST:PORT from the node ADDR:PORT (an IP), with the public Host header; repeat per node.
    #[arg(long, value_name = "HOST:PORT:ADDR:PORT")]
    pub connect_to: Vec<String>,

    /// Attempts per URL (retries on 429, 503 and network errors).
    #[arg(long, value_name = "N", default_value_t = 2)]
    pub tries: u32,

    /// HTTP statuses that are retried, comma-separated.
    #[arg(long, value_name = "LIST", default_value = "429,503")]
    pub retry_on: String,

    /// Longest pause before a retry, in seconds (caps Retry-After).
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    pub max_retry_wait: f64,

    /// Pause between requests, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 0.0)]
    pub wait: f64,

    /// Cap the download rate per request, bytes/s with optional k or m suffix.
    #[arg(long, value_name = "RATE")]
    pub limit_rate: Option<String>,

    /// DNS timeout in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    pub dns_timeout: f64,

    /// Connect timeout in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 5.0)]
    pub connect_timeout: f64,

    /// Read (idle) timeout in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 60.0)]
    pub read_timeout: f64,

    /// Redirects followed per URL.
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub max_redirect: u32,

    /// HTTP proxy for http and https (https via CONNECT), e.g. http://127.0.0.1:3128.
    #[arg(long, value_name = "URL")]
    pub proxy: Option<String>,

    /// Do not verify TLS certificates.
    #[arg(long)]
    pub no_check_certificate: bool,

    /// Write one JSON object per event and a final summary to stdout.
    #[arg(long)]
    pub json: bool,

    /// No progress bar even on a terminal.
    #[arg(long)]
    pub no_progress: bool,

    /// Print the man page (roff) and exit.
    #[arg(long, hide = true)]
    pub generate_man: bool,

    /// Print a completion script for SHELL (bash, zsh, fish, elvish, powershell) and exit.
    #[arg(long, hide = true, value_name = "SHELL")]
    pub generate_completions: Option<String>,
}
