//! What the directive tree means for caching: the cache paths, the servers, and for each
//! location that passes requests to a cached upstream the settings in force there, with nginx's
//! inheritance (a directive at a level applies to the whole level and to the levels inside it
//! that do not set it themselves; `*_param` lists are inherited only by levels that set none).

use std::collections::BTreeMap;

use serde::Serialize;

use super::conf::Directive;

/// The upstream module a cache belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// `fastcgi_*` (PHP-FPM).
    Fastcgi,
    /// `proxy_*`.
    Proxy,
    /// `uwsgi_*`.
    Uwsgi,
    /// `scgi_*`.
    Scgi,
}

impl Kind {
    /// All kinds.
    pub const ALL: [Kind; 4] = [Kind::Fastcgi, Kind::Proxy, Kind::Uwsgi, Kind::Scgi];

    /// The directive prefix (`fastcgi`, `proxy`, ...).
    pub fn prefix(self) -> &'static str {
        match self {
            Kind::Fastcgi => "fastcgi",
            Kind::Proxy => "proxy",
            Kind::Uwsgi => "uwsgi",
            Kind::Scgi => "scgi",
        }
    }

    /// nginx's key when no `*_cache_key` is set: only the proxy module has one; the others
    /// refuse to start (`no "fastcgi_cache_key" for "fastcgi_cache"`).
    pub fn default_key(self) -> Option<&'static str> {
        match self {
            Kind::Proxy => Some("$scheme$proxy_host$request_uri"),
            _ => None,
        }
    }
}

/// A `*_cache_path` directive.
#[derive(Debug, Clone, Serialize)]
pub struct CachePath {
    /// Which module declared it.
    pub kind: Kind,
    /// The cache directory.
    pub path: String,
    /// `levels=`, if given (without it nginx keeps every file in the root).
    pub levels: Option<String>,
    /// The `keys_zone` name.
    pub zone: String,
    /// The `keys_zone` size.
    pub zone_size: String,
    /// `inactive=` (nginx's default is 10m).
    pub inactive: String,
    /// `use_temp_path=` (nginx's default is on).
    pub use_temp_path: String,
    /// `max_size=`, if given.
    pub max_size: Option<String>,
    /// Where it is written.
    pub place: String,
}

/// A `listen` directive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Listen {
    /// The address as written (`*` when only a port is given).
    pub addr: String,
    /// The TCP port (None for a Unix socket).
    pub port: Option<u16>,
    /// `ssl` is set: the site is served over https.
    pub ssl: bool,
}

/// A setting in force at a location and where it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Setting {
    /// The arguments joined by one space.
    pub value: String,
    /// `file:line` of the directive.
    pub place: String,
    /// The level it was set at (`http`, `server`, `location /`, ...).
    pub level: String,
}

/// The cache key in force at a location.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Key {
    /// The template, or None if the module has no default and nothing sets one.
    pub template: Option<String>,
    /// `set here`, `inherited from <level> (<file:line>)` or `nginx default`.
    pub origin: String,
    /// Where it is written, if it is.
    pub place: Option<String>,
}

/// A location (or `if` block) that hands requests to an upstream through a cache zone.
#[derive(Debug, Clone, Serialize)]
pub struct CachedLocation {
    /// `location /`, `location ~ \.php$`, `if ($x)` within a location, ...
    pub context: String,
    /// Where the block starts.
    pub place: String,
    /// The module.
    pub kind: Kind,
    /// The cache zone in force.
    pub zone: String,
    /// Where the zone was chosen.
    pub zone_place: String,
    /// The key in force.
    pub key: Key,
    /// The `*_pass` target as written (`unix:/run/php/x.sock`, `127.0.0.1:9000`, an upstream).
    pub pass: String,
    /// The servers behind the pass target (the upstream's `server`s, or the target itself).
    pub endpoints: Vec<String>,
    /// `*_ignore_headers` in force.
    pub ignore_headers: Option<Setting>,
    /// The `fastcgi_param HTTP_HOST` in force (the last one of the level that sets params).
    pub http_host_param: Option<Setting>,
    /// `open_file_cache` in force (unless `off`).
    pub open_file_cache: Option<Setting>,
}

/// A `server` block that uses at least one cache, or any server (all are listed).
#[derive(Debug, Clone, Serialize)]
pub struct Server {
    /// Where the block starts.
    pub place: String,
    /// Its `server_name`s.
    pub names: Vec<String>,
    /// Its `listen`s (nginx's default `*:80` when none).
    pub listens: Vec<Listen>,
    /// Its cached locations.
    pub locations: Vec<CachedLocation>,
}

/// The caching view of an nginx configuration.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Nginx {
    /// The worker user (`user`), None if not set (nginx then uses its built-in `nobody`).
    pub user: Option<String>,
    /// The worker group given with `user`, if any.
    pub group: Option<String>,
    /// Every `*_cache_path`.
    pub caches: Vec<CachePath>,
    /// Every `server` block of `http`.
    pub servers: Vec<Server>,
}

impl Nginx {
    /// The worker user nginx runs as (its built-in default is `nobody`).
    pub fn worker_user(&self) -> &str {
        self.user.as_deref().unwrap_or("nobody")
    }

    /// The cache path behind a zone name, preferring one of the same module.
    pub fn cache_for(&self, kind: Kind, zone: &str) -> Option<&CachePath> {
        self.caches
            .iter()
            .find(|c| c.kind == kind && c.zone == zone)
            .or_else(|| self.caches.iter().find(|c| c.zone == zone))
    }
}

/// Inherited settings while walking down the tree.
#[derive(Debug, Clone, Default)]
struct Ctx {
    scalars: BTreeMap<String, Setting>,
    /// The `fastcgi_param HTTP_HOST` of the innermost level that sets any `fastcgi_param`
    /// (the outer Option: whether some level set params at all).
    fcgi_host: Option<Option<Setting>>,
}

/// Directives whose last value at a level applies to the level and those inside it.
fn is_inherited_scalar(name: &str) -> bool {
    Kind::ALL.iter().any(|k| {
        let p = k.prefix();
        name.strip_prefix(p)
            .is_some_and(|rest| matches!(rest, "_cache" | "_cache_key" | "_ignore_headers"))
    }) || name == "open_file_cache"
}

/// Builds the caching view of a directive tree.
pub fn analyze(top: &[Directive]) -> Nginx {
    let mut n = Nginx::default();
    for d in top {
        if d.name == "user" {
            n.user = d.args.first().cloned();
            n.group = d.args.get(1).cloned();
        }
    }
    let mut upstreams: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for http in top.iter().filter(|d| d.name == "http") {
        let Some(list) = &http.block else { continue };
        for d in list {
            if let Some(kind) = Kind::ALL
                .into_iter()
                .find(|k| d.name == format!("{}_cache_path", k.prefix()))
            {
                n.caches.push(cache_path(kind, d));
            }
            if d.name == "upstream" {
                let servers = d
                    .block
                    .iter()
                    .flatten()
                    .filter(|s| s.name == "server")
                    .filter_map(|s| s.args.first().cloned())
                    .collect();
                upstreams.insert(d.arg0().to_string(), servers);
            }
        }
        let ctx = level(&Ctx::default(), list, "http");
        for s in list.iter().filter(|d| d.name == "server") {
            n.servers.push(server(&ctx, s, &upstreams));
        }
    }
    n
}

fn cache_path(kind: Kind, d: &Directive) -> CachePath {
    let mut c = CachePath {
        kind,
        path: d.arg0().trim_end_matches('/').to_string(),
        levels: None,
        zone: String::new(),
        zone_size: String::new(),
        inactive: "10m".into(),
        use_temp_path: "on".into(),
        max_size: None,
        place: d.place(),
    };
    if c.path.is_empty() && d.arg0() == "/" {
        c.path = "/".into();
    }
    for a in d.args.iter().skip(1) {
        let Some((k, v)) = a.split_once('=') else {
            continue;
        };
        match k {
            "levels" => c.levels = Some(v.to_string()),
            "keys_zone" => {
                let (z, size) = v.split_once(':').unwrap_or((v, ""));
                c.zone = z.to_string();
                c.zone_size = size.to_string();
            }
            "inactive" => c.inactive = v.to_string(),
            "use_temp_path" => c.use_temp_path = v.to_string(),
            "max_size" => c.max_size = Some(v.to_string()),
            _ => {}
        }
    }
    c
}

/// The settings in force inside a level, given those of its parent.
fn level(parent: &Ctx, list: &[Directive], name: &str) -> Ctx {
    let mut ctx = parent.clone();
    let mut params_here = false;
    let mut host_here = None;
    for d in list.iter().filter(|d| d.block.is_none()) {
        if is_inherited_scalar(&d.name) {
            ctx.scalars.insert(
                d.name.clone(),
                Setting {
                    value: d.args.join(" "),
                    place: d.place(),
                    level: name.to_string(),
                },
            );
        }
        if d.name == "fastcgi_param" {
            params_here = true;
            if d.arg0().eq_ignore_ascii_case("HTTP_HOST") {
                host_here = Some(Setting {
                    value: d.args.get(1).cloned().unwrap_or_default(),
                    place: d.place(),
                    level: name.to_string(),
                });
            }
        }
    }
    if params_here {
        ctx.fcgi_host = Some(host_here);
    }
    ctx
}

fn server(http: &Ctx, s: &Directive, upstreams: &BTreeMap<String, Vec<String>>) -> Server {
    let list = s.block.as_deref().unwrap_or(&[]);
    let mut out = Server {
        place: s.place(),
        names: Vec::new(),
        listens: Vec::new(),
        locations: Vec::new(),
    };
    for d in list {
        match d.name.as_str() {
            "server_name" => out.names.extend(d.args.iter().cloned()),
            "listen" => out.listens.push(listen(&d.args)),
            _ => {}
        }
    }
    if out.listens.is_empty() {
        out.listens.push(Listen {
            addr: "*".into(),
            port: Some(80),
            ssl: false,
        });
    }
    let ctx = level(http, list, "server");
    walk(&ctx, list, "server", s, upstreams, &mut out.locations);
    out
}

/// Visits the locations (and `if` blocks) of a level, recording every cached handler.
fn walk(
    ctx: &Ctx,
    list: &[Directive],
    context: &str,
    block: &Directive,
    upstreams: &BTreeMap<String, Vec<String>>,
    out: &mut Vec<CachedLocation>,
) {
    if context != "server" {
        for kind in Kind::ALL {
            let pass_name = format!("{}_pass", kind.prefix());
            if let Some(pass) = list.iter().find(|d| d.name == pass_name) {
                if let Some(loc) = cached(ctx, kind, context, block, pass, upstreams) {
                    out.push(loc);
                }
            }
        }
    }
    for d in list {
        let Some(inner) = &d.block else { continue };
        let sub = match d.name.as_str() {
            "location" => format!("location {}", d.args.join(" ")),
            "if" => format!("{context} if {}", d.args.join(" ")),
            _ => continue,
        };
        let c = level(ctx, inner, &sub);
        walk(&c, inner, &sub, d, upstreams, out);
    }
}

fn cached(
    ctx: &Ctx,
    kind: Kind,
    context: &str,
    block: &Directive,
    pass: &Directive,
    upstreams: &BTreeMap<String, Vec<String>>,
) -> Option<CachedLocation> {
    let p = kind.prefix();
    let zone = ctx.scalars.get(&format!("{p}_cache"))?;
    if zone.value == "off" || zone.value.is_empty() {
        return None;
    }
    let key = match ctx.scalars.get(&format!("{p}_cache_key")) {
        Some(s) => Key {
            template: Some(s.value.clone()),
            origin: if s.level == context {
                "set here".into()
            } else {
                format!("inherited from {}", s.level)
            },
            place: Some(s.place.clone()),
        },
        None => Key {
            template: kind.default_key().map(str::to_string),
            origin: match kind.default_key() {
                Some(_) => "nginx default".into(),
                None => format!("none (nginx refuses {p}_cache without {p}_cache_key)"),
            },
            place: None,
        },
    };
    let target = pass.arg0().to_string();
    // proxy_pass takes a URL (the upstream is its host part); the others an address.
    let host = match target
        .strip_prefix("http://")
        .or_else(|| target.strip_prefix("https://"))
    {
        Some(rest) => rest.split('/').next().unwrap_or(rest),
        None => &target,
    };
    let endpoints = upstreams
        .get(host)
        .cloned()
        .unwrap_or_else(|| vec![host.to_string()]);
    Some(CachedLocation {
        context: context.to_string(),
        place: block.place(),
        kind,
        zone: zone.value.clone(),
        zone_place: zone.place.clone(),
        key,
        pass: target,
        endpoints,
        ignore_headers: ctx.scalars.get(&format!("{p}_ignore_headers")).cloned(),
        http_host_param: if kind == Kind::Fastcgi {
            ctx.fcgi_host.clone().flatten()
        } else {
            None
        },
        open_file_cache: ctx
            .scalars
            .get("open_file_cache")
            .filter(|s| s.value != "off")
            .cloned(),
    })
}

/// Reads a `listen` directive's address, port and `ssl` flag.
fn listen(args: &[String]) -> Listen {
    let a = args.first().map(String::as_str).unwrap_or("");
    let ssl = args.iter().skip(1).any(|x| x == "ssl" || x == "quic");
    if a.starts_with("unix:") {
        return Listen {
            addr: a.to_string(),
            port: None,
            ssl,
        };
    }
    // [v6]:port, [v6], host:port, host, port
    let (addr, port) = if let Some(rest) = a.strip_prefix('[') {
        match rest.split_once(']') {
            Some((h, p)) => (format!("[{h}]"), p.strip_prefix(':').map(str::to_string)),
            None => (a.to_string(), None),
        }
    } else if let Some((h, p)) = a.rsplit_once(':') {
        (h.to_string(), Some(p.to_string()))
    } else if a.chars().all(|c| c.is_ascii_digit()) && !a.is_empty() {
        ("*".to_string(), Some(a.to_string()))
    } else {
        (a.to_string(), None)
    };
    let port = match port {
        Some(p) => p.parse().ok(),
        None => Some(80),
    };
    Listen { addr, port, ssl }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nginx::conf::parse_text;
    use std::path::Path;

    fn model(src: &str) -> Nginx {
        analyze(&parse_text(Path::new("/n.conf"), src.as_bytes()).unwrap())
    }

    const BASE: &str = r#"
user www-data;
http {
    fastcgi_cache_path /var/cache/nginx/a levels=1:2 keys_zone=A:10m inactive=1d use_temp_path=off;
    fastcgi_cache_path /var/cache/nginx/b keys_zone=B:1m;
    fastcgi_cache_key "$scheme$request_method$host$request_uri";
    server {
        listen 8080;
        server_name a.test www.a.test;
        fastcgi_cache A;
        location / {
            fastcgi_pass unix:/run/php/a.sock;
        }
        location ~ \.php$ {
            fastcgi_cache_key $scheme$host$request_uri;
            fastcgi_pass unix:/run/php/a.sock;
            location /inner { fastcgi_pass 127.0.0.1:9000; fastcgi_cache off; }
        }
    }
    server {
        listen [::]:443 ssl;
        server_name b.test;
        location / { fastcgi_cache B; fastcgi_pass php; }
    }
    upstream php { server unix:/run/php/b.sock; }
}
"#;

    #[test]
    fn cache_paths_and_defaults() {
        let n = model(BASE);
        assert_eq!(n.user.as_deref(), Some("www-data"));
        assert_eq!(n.caches.len(), 2);
        let a = &n.caches[0];
        assert_eq!(
            (
                a.levels.as_deref(),
                a.zone.as_str(),
                a.inactive.as_str(),
                a.use_temp_path.as_str()
            ),
            (Some("1:2"), "A", "1d", "off")
        );
        let b = &n.caches[1];
        assert_eq!(
            (
                b.levels.as_deref(),
                b.inactive.as_str(),
                b.use_temp_path.as_str()
            ),
            (None, "10m", "on")
        );
    }

    #[test]
    fn key_inheritance_and_override() {
        let n = model(BASE);
        let s = &n.servers[0];
        assert_eq!(s.names, ["a.test", "www.a.test"]);
        assert_eq!(
            s.listens[0],
            Listen {
                addr: "*".into(),
                port: Some(8080),
                ssl: false
            }
        );
        assert_eq!(s.locations.len(), 2, "the inner location has the cache off");
        let root = &s.locations[0];
        assert_eq!(root.zone, "A");
        assert_eq!(root.endpoints, ["unix:/run/php/a.sock"]);
        assert_eq!(
            root.key.template.as_deref(),
            Some("$scheme$request_method$host$request_uri")
        );
        assert_eq!(root.key.origin, "inherited from http");
        assert_eq!(root.key.place.as_deref(), Some("/n.conf:6"));
        let php = &s.locations[1];
        assert_eq!(
            php.key.template.as_deref(),
            Some("$scheme$host$request_uri")
        );
        assert_eq!(php.key.origin, "set here");
    }

    #[test]
    fn upstream_and_ssl() {
        let n = model(BASE);
        let s = &n.servers[1];
        assert_eq!(
            s.listens[0],
            Listen {
                addr: "[::]".into(),
                port: Some(443),
                ssl: true
            }
        );
        assert_eq!(s.locations[0].endpoints, ["unix:/run/php/b.sock"]);
        assert_eq!(s.locations[0].zone, "B");
    }

    #[test]
    fn missing_fastcgi_key_and_proxy_default() {
        let n = model("http { proxy_cache_path /c keys_zone=P:1m; server { location / { proxy_cache P; proxy_pass http://127.0.0.1:81; } location /f { fastcgi_cache P; fastcgi_pass 127.0.0.1:9000; } } }");
        let l = &n.servers[0].locations;
        assert_eq!(
            l[0].key.template.as_deref(),
            Some("$scheme$proxy_host$request_uri")
        );
        assert_eq!(l[0].key.origin, "nginx default");
        assert_eq!(l[0].endpoints, ["127.0.0.1:81"]);
        assert_eq!(l[1].key.template, None);
        assert!(l[1].key.origin.starts_with("none"));
    }

    #[test]
    fn fastcgi_params_are_inherited_only_by_levels_that_set_none() {
        let n = model(
            r#"http { fastcgi_cache_path /c keys_zone=Z:1m; fastcgi_cache Z; fastcgi_cache_key k;
            fastcgi_param HTTP_HOST $host;
            server { listen 81;
              location /a { fastcgi_pass x:1; }
              location /b { fastcgi_param SCRIPT_FILENAME f; fastcgi_pass x:1; }
              location /c { fastcgi_param HTTP_HOST $host; fastcgi_param HTTP_HOST $host:$server_port; fastcgi_pass x:1; }
            } }"#,
        );
        let l = &n.servers[0].locations;
        assert_eq!(l[0].http_host_param.as_ref().unwrap().value, "$host");
        assert_eq!(l[1].http_host_param, None);
        assert_eq!(
            l[2].http_host_param.as_ref().unwrap().value,
            "$host:$server_port"
        );
    }

    #[test]
    fn ignore_headers_and_open_file_cache_follow_the_levels() {
        let n = model(
            r#"http { fastcgi_cache_path /c keys_zone=Z:1m; fastcgi_cache_key k; open_file_cache max=10;
            server { fastcgi_cache Z; fastcgi_ignore_headers Cache-Control Vary;
              location /a { fastcgi_pass x:1; }
              location /b { fastcgi_ignore_headers Expires; open_file_cache off; fastcgi_pass x:1; }
            } }"#,
        );
        let l = &n.servers[0].locations;
        assert_eq!(
            l[0].ignore_headers.as_ref().unwrap().value,
            "Cache-Control Vary"
        );
        assert!(l[0].open_file_cache.is_some());
        assert_eq!(l[1].ignore_headers.as_ref().unwrap().value, "Expires");
        assert!(l[1].open_file_cache.is_none());
        assert_eq!(n.servers[0].listens[0].port, Some(80));
    }
}
