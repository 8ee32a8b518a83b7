//! SpinupWP's cache daemon protocol on a loopback TCP port: the client writes one absolute path
//! and a newline, the service answers `Purge: Success\n` or `Purge: Error\n` and closes.
//!
//! TCP tells nothing about which local user connects, so this port lets any local process purge
//! any site the service serves; it is off unless a TCP socket is configured. Paths are confined
//! lexically to a configured cache root and then walked fd-relative without following links:
//! - the path must be absolute, UTF-8, without NUL, empty, `.` or `..` components;
//! - it must be a configured root or lie below one (component-wise: `/cache2/x` is not under
//!   `/cache`), and a parent of roots (`/cache` when the roots are `/cache/a`, `/cache/b`) is
//!   refused;
//! - below the root only the cache's own layout is accepted: level directories of the
//!   configured widths in hex, then a 32-hex file name;
//! - the root itself means "every cache file of this site" (SpinupWP's site purge); the root
//!   directory is kept;
//! - a path that does not exist (in-root and well-formed) is a success, as SpinupWP answers.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::proto::Ctx;
use crate::queue::{Op, WarmMode};
use crate::sites::Sites;

/// Longest accepted path line.
const MAX_PATH: usize = 4096;
/// Time for the client to send its line.
const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Maps a SpinupWP path to a site and the operation, or says why not.
pub fn resolve(sites: &Sites, line: &[u8]) -> Result<(usize, Op), String> {
    let s = std::str::from_utf8(line).map_err(|_| "path is not UTF-8".to_string())?;
    if s.contains('\0') {
        return Err("path contains NUL".into());
    }
    let Some(body) = s.strip_prefix('/') else {
        return Err(format!("not an absolute path: {s:?}"));
    };
    let body = body.strip_suffix('/').unwrap_or(body);
    if body
        .split('/')
        .any(|c| c.is_empty() || c == "." || c == "..")
    {
        return Err(format!("path has an empty, . or .. component: {s:?}"));
    }
    let (site, rel) = sites
        .locate(Path::new(s))
        .ok_or_else(|| format!("path is not inside a configured cache root: {s:?}"))?;
    let depth = site.levels.len();
    if rel.len() > depth + 1 {
        return Err(format!("path is deeper than the cache layout: {s:?}"));
    }
    for (i, c) in rel.iter().enumerate() {
        let ok = if i < depth {
            c.len() == site.levels[i]
                && c.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        } else {
            nginx_cache::is_cache_file_name(c.as_bytes())
        };
        if !ok {
            return Err(format!("path does not follow the cache layout: {s:?}"));
        }
    }
    Ok((
        site.id,
        if rel.is_empty() {
            Op::All
        } else {
            Op::Rel(rel)
        },
    ))
}

/// Serves one connection.
pub async fn serve(stream: TcpStream, ctx: Arc<Ctx>) {
    let (rd, mut wr) = stream.into_split();
    let mut rd = BufReader::new(rd).take(MAX_PATH as u64 + 1);
    let mut line = Vec::new();
    let read = tokio::time::timeout(READ_TIMEOUT, rd.read_until(b'\n', &mut line)).await;
    if !matches!(read, Ok(Ok(n)) if n > 0) || line.len() > MAX_PATH {
        // Nothing, too slow or too long: close without an answer.
        return;
    }
    // SpinupWP's client sends "\n"; a client that only closes its side (no newline) is served too.
    if line.last() == Some(&b'\n') {
        line.pop();
    }
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    let ok = match resolve(ctx.queue.sites(), &line) {
        Ok((site, op)) => match ctx.queue.submit(site, op, WarmMode::Off) {
            Ok(rx) => matches!(rx.await, Ok(o) if o.result.is_ok()),
            Err(_) => false,
        },
        Err(e) => {
            eprintln!("cache-purged: spinupwp: refused: {e}");
            false
        }
    };
    let answer: &[u8] = if ok {
        b"Purge: Success\n"
    } else {
        b"Purge: Error\n"
    };
    let _ = tokio::time::timeout(READ_TIMEOUT, wr.write_all(answer)).await;
    let _ = wr.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sites::Site;

    fn sites() -> Sites {
        let site = |id: usize, p: &str| Site {
            id,
            conf: safexec_conf::CacheRoot::new(p, "www-data"),
            levels: vec![1, 2],
            key: Err("unused".into()),
            bases: Vec::new(),
        };
        Sites {
            all: vec![site(0, "/cache/a"), site(1, "/cache/b")],
        }
    }

    #[test]
    fn paths_are_confined_to_the_roots_and_the_layout() {
        let s = sites();
        let file = "/cache/b/7/93/0c6d84446df30d38c2c682134d5ee937";
        let rel: Vec<String> = ["7", "93", "0c6d84446df30d38c2c682134d5ee937"]
            .iter()
            .map(|c| c.to_string())
            .collect();
        assert_eq!(resolve(&s, file.as_bytes()), Ok((1, Op::Rel(rel))));
        assert_eq!(resolve(&s, b"/cache/a"), Ok((0, Op::All)));
        assert_eq!(resolve(&s, b"/cache/a/"), Ok((0, Op::All)));
        assert_eq!(
            resolve(&s, b"/cache/a/7"),
            Ok((0, Op::Rel(vec!["7".into()])))
        );
        for bad in [
            "/cache",
            "/cache/",
            "/cache/../etc/passwd",
            "/cache/a/../b/7",
            "/cache/a/./7",
            "/cache/a//7",
            "/cache/a2/7",
            "/cache/ab",
            "cache/a/7",
            "",
            "/cache/a/7/93/0c6d84446df30d38c2c682134d5ee937/x",
            "/cache/a/G",
            "/cache/a/77",
            "/cache/a/7/9",
            "/cache/a/7/93/0C6D84446DF30D38C2C682134D5EE937",
            "/cache/a/7/93/passwd",
            "/cache/a/7\0",
            "/etc/passwd",
        ] {
            assert!(resolve(&s, bad.as_bytes()).is_err(), "{bad:?} accepted");
        }
        assert!(resolve(&s, b"/cache/a/\xff").is_err());
    }
}
