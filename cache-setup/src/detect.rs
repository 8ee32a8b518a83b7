//! `detect`: the nginx caches, the servers and locations that use them, the key in force for
//! each, and the PHP-FPM pool (and so the user) behind each FastCGI location.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::fpm::{self, Pool};
use crate::nginx::conf::{self, Disk, Dump, Source};
use crate::nginx::model::{self, CachePath, CachedLocation, Listen};

/// Where the nginx configuration comes from.
#[derive(Debug, Clone)]
pub enum NginxInput {
    /// Run `BIN -T` and read its dump (the configuration nginx itself would load).
    Live(PathBuf),
    /// Read this main file and follow its includes on disk.
    File(PathBuf),
    /// Read a saved `nginx -T` output.
    Dump(PathBuf),
}

/// Everything `detect` reads.
#[derive(Debug, Clone)]
pub struct Inputs {
    /// The nginx configuration.
    pub nginx: NginxInput,
    /// PHP-FPM files given on the command line (pool files or a php-fpm.conf).
    pub fpm_files: Vec<PathBuf>,
    /// The PHP configuration root whose `*/fpm/php-fpm.conf` and `*/fpm/pool.d/*.conf` are read
    /// (`/etc/php`).
    pub php_dir: PathBuf,
}

/// A PHP-FPM pool with what its php.ini adds.
#[derive(Debug, Clone, Serialize)]
pub struct PoolInfo {
    /// The pool as written.
    #[serde(flatten)]
    pub pool: Pool,
    /// The group it runs as: `group =`, or the user's primary group.
    pub effective_group: Option<String>,
    /// The php.ini this pool's PHP reads, if found.
    pub php_ini: Option<String>,
    /// php.ini's `disable_functions`, with its place.
    pub ini_disable_functions: Option<(String, String)>,
    /// php.ini's `zlib.output_compression`, with its place.
    pub ini_zlib_output_compression: Option<(String, String)>,
}

/// A server block: names, listens and the zones its locations use.
#[derive(Debug, Clone, Serialize)]
pub struct ServerInfo {
    /// Where it starts.
    pub place: String,
    /// `server_name`s.
    pub names: Vec<String>,
    /// `listen`s.
    pub listens: Vec<Listen>,
    /// The cache zones its locations use.
    pub zones: Vec<String>,
}

/// One cached location with its server, its cache and its PHP-FPM pool.
#[derive(Debug, Clone, Serialize)]
pub struct Site {
    /// Index into [`Report::servers`].
    pub server: usize,
    /// The server's names.
    pub names: Vec<String>,
    /// The server's listens.
    pub listens: Vec<Listen>,
    /// The location.
    #[serde(flatten)]
    pub location: CachedLocation,
    /// The cache directory of the zone (None if no `*_cache_path` declares it).
    pub cache_path: Option<String>,
    /// That cache's `levels=`.
    pub levels: Option<String>,
    /// Index into [`Report::pools`] of the pool listening where `fastcgi_pass` points.
    pub pool: Option<usize>,
    /// That pool's user.
    pub pool_user: Option<String>,
    /// That pool's group.
    pub pool_group: Option<String>,
}

/// What `detect` found.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// How the nginx configuration was read.
    pub source: String,
    /// nginx's main file.
    pub main: String,
    /// Every nginx file read.
    pub nginx_files: Vec<String>,
    /// nginx's worker user (`user`, or nginx's default `nobody`).
    pub worker_user: String,
    /// Whether `user` is set.
    pub worker_user_set: bool,
    /// Every `*_cache_path`.
    pub caches: Vec<CachePath>,
    /// Every server block.
    pub servers: Vec<ServerInfo>,
    /// Every cached location.
    pub sites: Vec<Site>,
    /// Every PHP-FPM pool found.
    pub pools: Vec<PoolInfo>,
    /// The PHP-FPM files named (before includes).
    pub fpm_files: Vec<String>,
}

/// Reads nginx's and PHP-FPM's configuration.
pub fn detect(inputs: &Inputs) -> Result<Report> {
    let (source, conf) = match &inputs.nginx {
        NginxInput::File(p) => (format!("file {}", p.display()), conf::load(p, &Disk)?),
        NginxInput::Dump(p) => {
            let d = Dump::parse(&Disk.read(p)?)?;
            let main = d.main.clone().unwrap_or_default();
            (
                format!("nginx -T output {}", p.display()),
                conf::load(&main, &d)?,
            )
        }
        NginxInput::Live(bin) => {
            let out = Command::new(bin)
                .arg("-T")
                .output()
                .map_err(|e| Error::io("run", bin, e))?;
            if !out.status.success() {
                let err = String::from_utf8_lossy(&out.stderr);
                // nginx names the cause in its [emerg] line; the last line only says "failed".
                let last = err
                    .lines()
                    .find(|l| l.contains("[emerg]"))
                    .or_else(|| err.lines().rev().find(|l| !l.trim().is_empty()))
                    .unwrap_or("");
                return Err(Error::Msg(format!(
                    "{} -T failed ({}): {last}",
                    bin.display(),
                    out.status
                )));
            }
            let d = Dump::parse(&out.stdout)?;
            let main = d.main.clone().unwrap_or_default();
            (format!("{} -T", bin.display()), conf::load(&main, &d)?)
        }
    };
    let nginx = model::analyze(&conf.directives);

    let mut fpm_files = Vec::new();
    for pattern in ["*/fpm/php-fpm.conf", "*/fpm/pool.d/*.conf"] {
        fpm_files.extend(Disk.glob(&inputs.php_dir.join(pattern))?);
    }
    fpm_files.extend(inputs.fpm_files.iter().cloned());
    let pools = fpm::load(&fpm_files, &Disk)?;
    let default_ini = Disk
        .glob(&inputs.php_dir.join("*/fpm/php.ini"))?
        .into_iter()
        .next();
    let pools: Vec<PoolInfo> = pools
        .into_iter()
        .map(|p| pool_info(p, default_ini.as_deref()))
        .collect::<Result<_>>()?;

    let mut servers = Vec::new();
    let mut sites = Vec::new();
    for (i, s) in nginx.servers.iter().enumerate() {
        let mut zones: Vec<String> = Vec::new();
        for l in &s.locations {
            if !zones.contains(&l.zone) {
                zones.push(l.zone.clone());
            }
            let cache = nginx.cache_for(l.kind, &l.zone);
            let pool = if l.kind == model::Kind::Fastcgi {
                pools
                    .iter()
                    .position(|p| l.endpoints.iter().any(|e| p.pool.serves(e)))
            } else {
                None
            };
            sites.push(Site {
                server: i,
                names: s.names.clone(),
                listens: s.listens.clone(),
                location: l.clone(),
                cache_path: cache.map(|c| c.path.clone()),
                levels: cache.and_then(|c| c.levels.clone()),
                pool,
                pool_user: pool.and_then(|p| pools[p].pool.user.clone()),
                pool_group: pool.and_then(|p| pools[p].effective_group.clone()),
            });
        }
        servers.push(ServerInfo {
            place: s.place.clone(),
            names: s.names.clone(),
            listens: s.listens.clone(),
            zones,
        });
    }
    Ok(Report {
        source,
        main: conf.main.display().to_string(),
        nginx_files: conf.files.iter().map(|p| p.display().to_string()).collect(),
        worker_user: nginx.worker_user().to_string(),
        worker_user_set: nginx.user.is_some(),
        caches: nginx.caches,
        servers,
        sites,
        pools,
        fpm_files: fpm_files.iter().map(|p| p.display().to_string()).collect(),
    })
}

/// Adds the effective group and the php.ini settings: the php.ini next to the pool file's
/// directory (Debian: `/etc/php/V/fpm/php.ini` for `/etc/php/V/fpm/pool.d/x.conf`), else the
/// first `/etc/php/*/fpm/php.ini`.
fn pool_info(pool: Pool, default_ini: Option<&Path>) -> Result<PoolInfo> {
    let near = pool
        .file
        .ancestors()
        .skip(1)
        .take(2)
        .map(|d| d.join("php.ini"))
        .find(|p| p.is_file());
    let ini = near.or_else(|| default_ini.map(Path::to_path_buf));
    let (df, zlib) = match &ini {
        Some(p) => {
            let text = Disk.read(p)?;
            fpm::php_ini(p, &String::from_utf8_lossy(&text))
        }
        None => (None, None),
    };
    let effective_group = pool
        .group
        .clone()
        .or_else(|| pool.user.as_deref().and_then(crate::users::primary_group));
    Ok(PoolInfo {
        pool,
        effective_group,
        php_ini: ini.map(|p| p.display().to_string()),
        ini_disable_functions: df,
        ini_zlib_output_compression: zlib,
    })
}

/// A listen as `addr:port` (or the Unix socket).
pub fn listen_text(l: &Listen) -> String {
    match l.port {
        Some(p) => format!("{}:{p}{}", l.addr, if l.ssl { " ssl" } else { "" }),
        None => l.addr.clone(),
    }
}

/// The human table.
pub fn render(r: &Report) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "nginx: {} (main {}, {} files); worker user {}{}",
        r.source,
        r.main,
        r.nginx_files.len(),
        r.worker_user,
        if r.worker_user_set {
            ""
        } else {
            " (nginx's default: no `user` directive)"
        }
    );
    let _ = writeln!(
        o,
        "php-fpm: {} pools from {} files",
        r.pools.len(),
        r.fpm_files.len()
    );
    o.push_str("\nCaches\n");
    let mut rows = vec![row(&[
        "KIND",
        "ZONE",
        "PATH",
        "LEVELS",
        "INACTIVE",
        "USE_TEMP_PATH",
        "DEFINED AT",
    ])];
    for c in &r.caches {
        rows.push(vec![
            c.kind.prefix().to_string(),
            c.zone.clone(),
            c.path.clone(),
            c.levels.clone().unwrap_or_else(|| "(none)".into()),
            c.inactive.clone(),
            c.use_temp_path.clone(),
            c.place.clone(),
        ]);
    }
    table(&mut o, &rows);
    o.push_str("\nServers\n");
    let mut rows = vec![row(&["SERVER_NAME", "LISTEN", "ZONES", "DEFINED AT"])];
    for s in &r.servers {
        rows.push(vec![
            if s.names.is_empty() {
                "\"\"".into()
            } else {
                s.names.join(",")
            },
            s.listens
                .iter()
                .map(listen_text)
                .collect::<Vec<_>>()
                .join(","),
            if s.zones.is_empty() {
                "-".into()
            } else {
                s.zones.join(",")
            },
            s.place.clone(),
        ]);
    }
    table(&mut o, &rows);
    o.push_str("\nCached locations\n");
    let mut rows = vec![row(&[
        "SERVER",
        "LOCATION",
        "ZONE",
        "KEY",
        "KEY FROM",
        "PASS",
        "POOL",
        "USER:GROUP",
    ])];
    for s in &r.sites {
        let key_from = match &s.location.key.place {
            Some(p) => format!("{} ({p})", s.location.key.origin),
            None => s.location.key.origin.clone(),
        };
        let pool = match s.pool {
            Some(i) => format!("{} ({})", r.pools[i].pool.name, r.pools[i].pool.place),
            None if s.location.kind == model::Kind::Fastcgi => "(no pool listens there)".into(),
            None => "-".into(),
        };
        rows.push(vec![
            s.names.first().cloned().unwrap_or_else(|| "\"\"".into()),
            s.location.context.clone(),
            s.location.zone.clone(),
            s.location
                .key
                .template
                .clone()
                .unwrap_or_else(|| "(none)".into()),
            key_from,
            s.location.pass.clone(),
            pool,
            match (&s.pool_user, &s.pool_group) {
                (Some(u), Some(g)) => format!("{u}:{g}"),
                (Some(u), None) => u.clone(),
                _ => "-".into(),
            },
        ]);
    }
    table(&mut o, &rows);
    o
}

fn row(cells: &[&str]) -> Vec<String> {
    cells.iter().map(|c| c.to_string()).collect()
}

/// Left-aligned columns, two spaces apart, indented by two.
fn table(o: &mut String, rows: &[Vec<String>]) {
    if rows.len() == 1 {
        o.push_str("  (none)\n");
        return;
    }
    let n = rows[0].len();
    let widths: Vec<usize> = (0..n)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    for r in rows {
        let mut line = String::from(" ");
        for (i, c) in r.iter().enumerate() {
            line.push(' ');
            line.push_str(c);
            if i + 1 < n {
                line.push_str(&" ".repeat(widths[i] - c.chars().count() + 1));
            }
        }
        o.push_str(line.trim_end());
        o.push('\n');
    }
}
