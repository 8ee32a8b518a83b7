//! `doctor`: the traps that silently make a page cache useless or unsafe, each with its fix.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::detect::{listen_text, Report, Site};
use crate::host::{self, Check, HostPaths};
use crate::nginx::model::Kind;

/// Directories anyone may create entries in, whatever their mode says today (tmpfs is emptied
/// at boot, and the first user to recreate a path there owns it).
const SHARED_DIRS: [&str; 3] = ["/tmp", "/var/tmp", "/dev/shm"];

/// Every check: the sites' traps, then the host's.
pub fn run(r: &Report, host: &HostPaths, safexec_conf: &Path) -> Vec<Check> {
    let mut out = Vec::new();
    let mut seen_caches = BTreeSet::new();
    let mut seen_pools = BTreeSet::new();
    for s in &r.sites {
        site_checks(r, s, &mut out);
        if let Some(path) = &s.cache_path {
            if seen_caches.insert(path.clone()) {
                cache_checks(r, path, &mut out);
            }
        }
        if let Some(p) = s.pool {
            if seen_pools.insert(p) {
                pool_checks(r, p, &mut out);
            }
        }
    }
    conf_checks(r, safexec_conf, &mut out);
    // Some checks look at a cache or key shared by several locations: report each once.
    let mut seen = BTreeSet::new();
    out.retain(|c| seen.insert((c.id.clone(), c.subject.clone(), c.message.clone())));
    let mounts = std::fs::read_to_string(&host.mountinfo)
        .map(|t| host::parse_mountinfo(&t))
        .unwrap_or_default();
    out.extend(host::check_safexec(host, &mounts));
    out.push(host::check_cgroups(&mounts));
    out.push(host::check_landlock(host));
    out
}

/// `a.test:8080 location /`.
fn site_name(s: &Site) -> String {
    let name = s.names.first().map(String::as_str).unwrap_or("\"\"");
    let listen = s.listens.first().map(listen_text).unwrap_or_default();
    format!("{name} {listen} {}", s.location.context)
}

fn site_checks(r: &Report, s: &Site, out: &mut Vec<Check>) {
    let l = &s.location;
    let p = l.kind.prefix();
    let who = site_name(s);
    // Vary: nginx stores one entry per variant of the request headers Vary names.
    let ignored: Vec<String> = l
        .ignore_headers
        .as_ref()
        .map(|h| h.value.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default();
    if !ignored.iter().any(|h| h.eq_ignore_ascii_case("vary")) {
        let mut list = ignored.clone();
        list.push("Vary".into());
        out.push(
            Check::trap(
                "vary-honoured",
                &who,
                                    "nginx honours Vary from the upstream: a response with `Vary: Accept-Encoding` is stored once per Accept-Encoding string, so a preload warms none of the browsers' variants and a purge by key misses them",
                format!("add `{p}_ignore_headers {};` to {} ({})", list.join(" "), l.context, l.place),
            )
            .at(&l.place),
        );
    }
    // The port: Debian's fastcgi_params pass HTTP_HOST as $host, which has no port.
    if l.kind == Kind::Fastcgi {
        if let Some(h) = &l.http_host_param {
            let keeps_port = ["$server_port", "$http_host", "$request_port", ":"]
                .iter()
                .any(|x| h.value.contains(x));
            let odd: Vec<&crate::nginx::model::Listen> = s
                .listens
                .iter()
                .filter(|x| matches!(x.port, Some(p) if p != if x.ssl { 443 } else { 80 }))
                .collect();
            if !keeps_port && !odd.is_empty() {
                out.push(
                    Check::trap(
                        "port-dropped-from-host",
                        &who,
                        format!(
                            "the site listens on port {} but `fastcgi_param HTTP_HOST {}` ({}) passes the host without the port: PHP builds links and redirects to port {}",
                            odd[0].port.unwrap_or(0),
                            h.value,
                            h.place,
                            if odd[0].ssl { 443 } else { 80 }
                        ),
                        format!(
                            "add `fastcgi_param HTTP_HOST $host:$server_port;` after `include fastcgi_params;` in {} ({})",
                            l.context, l.place
                        ),
                    )
                    .at(&h.place),
                );
            }
        }
    }
    if let Some(ofc) = &l.open_file_cache {
        out.push(
            Check::trap(
                "open-file-cache",
                &who,
                format!(
                    "`open_file_cache {}` ({}) keeps a cache file's descriptor open: after a purge nginx keeps serving the deleted entry as a HIT for open_file_cache_valid (60 s by default)",
                    ofc.value, ofc.place
                ),
                format!("add `open_file_cache off;` to {} ({})", l.context, l.place),
            )
            .at(&ofc.place),
        );
    }
    match &l.key.template {
        None => out.push(
            Check::trap(
                "no-cache-key",
                &who,
                format!("no {p}_cache_key is in force: nginx refuses this configuration"),
                format!(
                    "add `{p}_cache_key \"$scheme$request_method$host$request_uri\";` to the http block"
                ),
            )
            .at(&l.place),
        ),
        Some(k) => {
            let at = l.key.place.clone().unwrap_or_else(|| l.place.clone());
            if !k.contains("$scheme") {
                out.push(
                    Check::trap(
                        "key-without-scheme",
                        &who,
                        format!("the cache key {k:?} has no $scheme: http and https share entries (a cached redirect to https loops), and URL purges cannot tell them apart"),
                        format!("set `{p}_cache_key \"$scheme{k}\";` ({at})"),
                    )
                    .at(&at),
                );
            }
            if k.contains("$http_host") {
                out.push(
                    Check::trap(
                        "key-uses-http-host",
                        &who,
                        format!("the cache key {k:?} uses $http_host, the raw Host header (any case, with or without a port), while the preloader and purger compute keys with $host: their keys and the visitors' differ"),
                        format!("set `{p}_cache_key \"{}\";` ({at})", k.replace("$http_host", "$host")),
                    )
                    .at(&at),
                );
            }
            // Every location writing to one cache must agree on the key, or no purger can.
            let others: BTreeSet<&str> = r
                .sites
                .iter()
                .filter(|o| o.cache_path.is_some() && o.cache_path == s.cache_path)
                .filter_map(|o| o.location.key.template.as_deref())
                .collect();
            if others.len() > 1 && others.iter().next() == Some(&k.as_str()) {
                out.push(
                    Check::trap(
                        "keys-differ-in-one-cache",
                        s.cache_path.clone().unwrap_or_default(),
                        format!(
                            "locations storing into this cache use different keys ({}): a purge computes one of them and misses the others",
                            others.iter().map(|k| format!("{k:?}")).collect::<Vec<_>>().join(", ")
                        ),
                        format!("set one {p}_cache_key at the http level and remove the others"),
                    ),
                );
            }
        }
    }
    if l.kind == Kind::Fastcgi && s.pool.is_none() {
        out.push(
            Check::trap(
                "no-pool",
                &who,
                format!(
                    "no PHP-FPM pool found listening at {}: the site's PHP user is unknown, so no caller can be allowed to purge",
                    l.endpoints.join(", ")
                ),
                format!(
                    "name the pool file with --fpm-conf, or make fastcgi_pass ({}) match the pool's listen",
                    l.pass
                ),
            )
            .at(&l.place),
        );
    }
}

fn cache_checks(r: &Report, path: &str, out: &mut Vec<Check>) {
    let cache = r.caches.iter().find(|c| c.path == path);
    let p = Path::new(path);
    let mut shared: Option<String> = SHARED_DIRS
        .iter()
        .find(|d| p.starts_with(d))
        .map(|d| d.to_string());
    if shared.is_none() {
        for a in p.ancestors().skip(1) {
            if let Ok(md) = std::fs::metadata(a) {
                if md.permissions().mode() & 0o002 != 0 {
                    shared = Some(a.display().to_string());
                    break;
                }
            }
        }
    }
    if let Some(dir) = shared {
        let zone = cache.map(|c| c.zone.as_str()).unwrap_or("site");
        out.push(
            Check::trap(
                "cache-under-world-writable",
                path,
                format!(
                    "the cache lies under {dir}, where any local user may create directories: one who creates the path first (after a reboot empties it) owns it, and nginx keeps whatever they plant inside"
                ),
                format!(
                    "move the cache to a root-owned parent: `{}_cache_path /var/cache/nginx/{zone} ...`",
                    cache.map(|c| c.kind.prefix()).unwrap_or("fastcgi")
                ),
            )
            .at(cache.map(|c| c.place.clone()).unwrap_or_default()),
        );
    }
    if let Some(c) = cache {
        if c.levels.is_none() {
            out.push(
                Check::trap(
                    "no-levels",
                    path,
                    "the cache has no levels=: every file sits in one directory, which slows nginx and every purge, and /etc/safexec.conf cannot describe it",
                    format!("add `levels=1:2` to {}_cache_path ({}) and empty the cache", c.kind.prefix(), c.place),
                )
                .at(&c.place),
            );
        }
    }
}

fn pool_checks(r: &Report, i: usize, out: &mut Vec<Check>) {
    let info = &r.pools[i];
    let pool = &info.pool;
    let who = format!("pool [{}]", pool.name);
    let user = pool.user.as_deref().unwrap_or("");
    if user.is_empty() || user == r.worker_user {
        out.push(
            Check::trap(
                "pool-runs-as-nginx-user",
                &who,
                format!(
                    "the pool runs as {}, nginx's own user: PHP can read and delete every site's cache and there is no separation between sites",
                    if user.is_empty() { "the user php-fpm starts as" } else { user }
                ),
                format!(
                    "give the pool its own user: `user = <site>` and `group = <site>` in {} (keep `listen.owner = {}`)",
                    pool.place, r.worker_user
                ),
            )
            .at(&pool.place),
        );
    }
    for (source, df) in [
        ("pool", pool.disable_functions.as_ref()),
        ("php.ini", info.ini_disable_functions.as_ref()),
    ] {
        let Some((value, place)) = df else { continue };
        let funcs: Vec<&str> = value
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|f| !f.is_empty())
            .collect();
        if funcs.iter().any(|f| f.eq_ignore_ascii_case("proc_open")) {
            let rest: Vec<&str> = funcs
                .iter()
                .copied()
                .filter(|f| !f.eq_ignore_ascii_case("proc_open"))
                .collect();
            out.push(
                Check::trap(
                    "proc-open-disabled",
                    &who,
                    format!("disable_functions in the {source} ({place}) blocks proc_open: PHP cannot start safexec to purge or preload"),
                    format!("remove proc_open from disable_functions at {place} (leaving `{}`)", rest.join(",")),
                )
                .at(place),
            );
        }
    }
    let zlib = pool
        .zlib_output_compression
        .as_ref()
        .or(info.ini_zlib_output_compression.as_ref());
    if let Some((v, place)) = zlib {
        if crate::fpm::ini_on(v) {
            out.push(
                Check::trap(
                    "zlib-output-compression",
                    &who,
                    format!("zlib.output_compression is on ({place}): PHP compresses per request and sends `Vary: Accept-Encoding`, so nginx caches a compressed body or one entry per encoding"),
                    format!("set `php_admin_flag[zlib.output_compression] = off` in {} and let nginx compress (gzip on)", pool.place),
                )
                .at(place),
            );
        }
    }
}

/// The site list in /etc/safexec.conf must match nginx's caches, or purges and preloads look in
/// the wrong place or with the wrong key.
fn conf_checks(r: &Report, conf: &Path, out: &mut Vec<Check>) {
    let shown = conf.display().to_string();
    let text = match std::fs::read(conf) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if !r.sites.is_empty() {
                out.push(Check::trap(
                    "safexec-conf-missing",
                    &shown,
                    format!("{shown} does not exist: no site user may purge or preload its cache"),
                    "run `cache-setup apply` (see the change first with --dry-run)",
                ));
            }
            return;
        }
        Err(e) => {
            out.push(Check::trap(
                "safexec-conf-unreadable",
                &shown,
                format!("cannot read {shown}: {e}"),
                "check the file's permissions (root:root 0644)",
            ));
            return;
        }
    };
    let cfg = match safexec_conf::parse(&text) {
        Ok(c) => c,
        Err(e) => {
            out.push(Check::trap(
                "safexec-conf-invalid",
                &shown,
                format!("{shown}: {e}: safexec refuses to run with it"),
                format!("fix line {} of {shown}", e.line),
            ));
            return;
        }
    };
    let mut done = BTreeSet::new();
    for s in &r.sites {
        let Some(path) = &s.cache_path else { continue };
        if !done.insert(path.clone()) {
            continue;
        }
        let Some(root) = cfg.cache_roots.iter().find(|c| c.path == Path::new(path)) else {
            out.push(Check::trap(
                "safexec-conf-no-root",
                path,
                format!("{shown} has no cache_root line for this cache: only root may purge it"),
                "run `cache-setup apply`",
            ));
            continue;
        };
        // Every pool user of this cache must be allowed, or its PHP cannot purge.
        let mut users: Vec<&str> = r
            .sites
            .iter()
            .filter(|o| o.cache_path.as_deref() == Some(path))
            .filter_map(|o| o.pool_user.as_deref())
            .filter(|u| *u != r.worker_user)
            .collect();
        users.dedup();
        for u in users {
            if !root.allows(u, &crate::users::groups_of(u)) {
                out.push(Check::trap(
                    "safexec-conf-stale",
                    path,
                    format!("the cache_root line in {shown} does not allow {u}, the PHP-FPM user of this cache's site: its PHP cannot purge"),
                    format!("run `cache-setup apply` (adds allow={u})"),
                ));
            }
        }
        let key = s.location.key.template.as_deref().unwrap_or("");
        let levels = s.levels.as_deref().unwrap_or("");
        if root.key != key || root.levels != levels || root.owner != r.worker_user {
            out.push(Check::trap(
                "safexec-conf-stale",
                path,
                format!(
                    "{shown} says owner {} key {} levels {} but nginx uses owner {} key {key} levels {levels}: purges compute other file names than nginx writes",
                    root.owner, root.key, root.levels, r.worker_user
                ),
                "run `cache-setup apply`",
            ));
        }
    }
}

/// The human report: traps with their fixes, then the passed host checks, then a count.
pub fn render(checks: &[Check]) -> String {
    let mut o = String::new();
    for c in checks.iter().filter(|c| c.trap) {
        let _ = writeln!(o, "TRAP {}: {}", c.id, c.subject);
        let _ = writeln!(o, "     {}", c.message);
        let _ = writeln!(o, "     fix: {}", c.fix);
    }
    for c in checks.iter().filter(|c| !c.trap) {
        let _ = writeln!(o, "ok   {}: {}: {}", c.id, c.subject, c.message);
    }
    let n = checks.iter().filter(|c| c.trap).count();
    let _ = match n {
        0 => writeln!(o, "no traps found"),
        1 => writeln!(o, "1 trap found"),
        n => writeln!(o, "{n} traps found"),
    };
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::{detect, Inputs, NginxInput};

    /// Runs the site checks on one nginx file written to a fresh temp dir.
    fn traps(nginx: &str) -> Vec<Check> {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "cache-setup-doctor-test.{}.{}",
            std::process::id(),
            N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let conf = dir.join("nginx.conf");
        std::fs::write(&conf, nginx).unwrap();
        let r = detect(&Inputs {
            nginx: NginxInput::File(conf),
            fpm_files: vec![],
            php_dir: dir.join("no-php"),
        })
        .unwrap();
        let mut out = Vec::new();
        for s in &r.sites {
            site_checks(&r, s, &mut out);
        }
        let mut seen = BTreeSet::new();
        out.retain(|c| seen.insert((c.id.clone(), c.subject.clone(), c.message.clone())));
        std::fs::remove_dir_all(&dir).unwrap();
        out
    }

    fn ids(c: &[Check]) -> Vec<&str> {
        let mut v: Vec<&str> = c
            .iter()
            .map(|c| c.id.as_str())
            .filter(|i| *i != "no-pool")
            .collect();
        v.sort();
        v
    }

    const HEAD: &str = "http { fastcgi_cache_path /var/cache/nginx/x levels=1:2 keys_zone=x:1m; fastcgi_cache x; fastcgi_ignore_headers Vary; fastcgi_cache_key $scheme$request_method$host$request_uri; fastcgi_param HTTP_HOST $host;\n";

    #[test]
    fn port_trap_only_off_the_scheme_default_port() {
        for (listen, want) in [
            ("80", vec![]),
            ("443 ssl", vec![]),
            ("8443 ssl", vec!["port-dropped-from-host"]),
            ("127.0.0.1:8080", vec!["port-dropped-from-host"]),
        ] {
            let t = traps(&format!(
                "{HEAD} server {{ listen {listen}; location / {{ fastcgi_pass unix:/s; }} }} }}"
            ));
            assert_eq!(ids(&t), want, "listen {listen}: {t:?}");
        }
        // A param that keeps the port is fine.
        let t = traps(&format!("{HEAD} server {{ listen 8080; location / {{ fastcgi_param HTTP_HOST $http_host; fastcgi_pass unix:/s; }} }} }}"));
        assert_eq!(ids(&t), Vec::<&str>::new(), "{t:?}");
    }

    #[test]
    fn differing_keys_in_one_cache_reported_once() {
        let t = traps(&format!(
            "{HEAD} server {{ location /a {{ fastcgi_pass unix:/s; }} location /b {{ fastcgi_cache_key $scheme$host$request_uri; fastcgi_pass unix:/s; }} location /c {{ fastcgi_cache_key $scheme$host$request_uri; fastcgi_pass unix:/s; }} }} }}"
        ));
        assert_eq!(ids(&t), ["keys-differ-in-one-cache"], "{t:?}");
        let k = t
            .iter()
            .find(|c| c.id == "keys-differ-in-one-cache")
            .unwrap();
        assert!(k.message.contains("$scheme$host$request_uri"), "{k:?}");
    }

    #[test]
    fn fixes_name_the_directive_and_place() {
        let t = traps("http { fastcgi_cache_path /var/cache/nginx/x levels=1:2 keys_zone=x:1m;\nserver {\n location / {\n  fastcgi_cache x; fastcgi_cache_key $host$request_uri; open_file_cache max=10;\n  fastcgi_pass unix:/s;\n }\n}\n}\n");
        assert_eq!(
            ids(&t),
            ["key-without-scheme", "open-file-cache", "vary-honoured"],
            "{t:?}"
        );
        let vary = t.iter().find(|c| c.id == "vary-honoured").unwrap();
        assert!(
            vary.fix
                .contains("`fastcgi_ignore_headers Vary;` to location /"),
            "{vary:?}"
        );
        assert!(vary.fix.ends_with("nginx.conf:3)"), "{vary:?}");
        let key = t.iter().find(|c| c.id == "key-without-scheme").unwrap();
        assert!(
            key.fix
                .contains("fastcgi_cache_key \"$scheme$host$request_uri\";"),
            "{key:?}"
        );
    }
}
