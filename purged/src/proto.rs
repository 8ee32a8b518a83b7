//! The JSON-lines protocol of the Unix socket (purged/PROTOCOL.md): one request object per line,
//! one answer object per line, in request order; requests of one connection run concurrently
//! (up to [`PIPELINE`]), so a client may send many lines before reading.

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;

use crate::engine::Removed;
use crate::peer::Caller;
use crate::preload::Preloads;
use crate::queue::{Op, Outcome, Queue, WarmMode, WarmNote};
use crate::sites::{Site, Target};

/// Longest request line.
pub const MAX_LINE: usize = 64 * 1024;
/// Most URLs in one request.
pub const MAX_URLS: usize = 1000;
/// Requests of one connection in flight at once.
pub const PIPELINE: usize = 64;
/// A line must arrive within this time (idle or slow clients are closed).
pub const LINE_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Request {
    #[serde(default)]
    id: Value,
    op: String,
    #[serde(default)]
    urls: Vec<String>,
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    site: Option<String>,
    #[serde(default)]
    rewarm: Option<Value>,
}

/// The shared context of request handlers.
pub struct Ctx {
    /// The queue.
    pub queue: Arc<Queue>,
    /// The service's preloads.
    pub preloads: Arc<Preloads>,
}

impl Ctx {
    /// The sites `caller` may act on.
    pub fn allowed<'a>(&'a self, caller: &'a Caller) -> impl Iterator<Item = &'a Site> + 'a {
        self.queue
            .sites()
            .all
            .iter()
            .filter(move |s| caller.owner_or_root || s.conf.allows(&caller.name, &caller.groups))
    }

    /// The caller's site serving `t`'s host.
    pub fn site_for(&self, caller: &Caller, t: &Target) -> Result<usize, String> {
        self.allowed(caller)
            .find(|s| s.serves(t))
            .map(|s| s.id)
            .ok_or_else(|| format!("no site of yours serves {}", t.host))
    }

    /// The caller's site named by a base URL or a cache root path, or its only site.
    fn site_named(&self, caller: &Caller, name: Option<&str>) -> Result<usize, String> {
        let mine: Vec<&Site> = self.allowed(caller).collect();
        match name {
            None if mine.len() == 1 => Ok(mine[0].id),
            None if mine.is_empty() => Err("you have no site".into()),
            None => Err("you have several sites: name one with \"site\"".into()),
            Some(n) if n.starts_with('/') => mine
                .iter()
                .find(|s| s.root().as_os_str() == n)
                .map(|s| s.id)
                .ok_or_else(|| format!("no site of yours has the cache root {n}")),
            Some(n) => {
                let t = Target::parse(n)?;
                mine.iter()
                    .find(|s| s.serves(&t))
                    .map(|s| s.id)
                    .ok_or_else(|| format!("no site of yours serves {}", t.host))
            }
        }
    }
}

/// Serves one connection until EOF, an oversized line, a timeout or a write error.
pub async fn serve<S>(stream: S, caller: Caller, ctx: Arc<Ctx>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (rd, mut wr) = tokio::io::split(stream);
    let mut rd = BufReader::new(rd);
    let (tx, mut rx) = mpsc::channel::<tokio::task::JoinHandle<Value>>(PIPELINE);
    let writer = tokio::spawn(async move {
        while let Some(h) = rx.recv().await {
            let v = h
                .await
                .unwrap_or_else(|_| json!({"ok": false, "error": "internal error"}));
            let mut line = v.to_string();
            line.push('\n');
            // A client that stops reading is closed instead of holding its slot forever.
            match tokio::time::timeout(LINE_TIMEOUT, wr.write_all(line.as_bytes())).await {
                Ok(Ok(())) => {}
                _ => return,
            }
        }
        let _ = wr.shutdown().await;
    });
    let caller = Arc::new(caller);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let read = tokio::time::timeout(
            LINE_TIMEOUT,
            (&mut rd)
                .take(MAX_LINE as u64 + 1)
                .read_until(b'\n', &mut buf),
        )
        .await;
        match read {
            Ok(Ok(0)) | Err(_) | Ok(Err(_)) => break,
            Ok(Ok(_)) => {}
        }
        if buf.len() > MAX_LINE {
            let v = json!({"ok": false, "error": format!("request line longer than {MAX_LINE} bytes; closing")});
            let _ = tx.send(tokio::spawn(async move { v })).await;
            break;
        }
        let line = std::mem::take(&mut buf);
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let (c, x) = (caller.clone(), ctx.clone());
        let h = tokio::spawn(async move { handle(&line, &c, &x).await });
        if tx.send(h).await.is_err() {
            break;
        }
    }
    drop(tx);
    let _ = writer.await;
}

fn refusal(id: &Value, msg: impl Into<String>) -> Value {
    json!({"id": id, "ok": false, "error": msg.into()})
}

/// Handles one request line.
pub async fn handle(line: &[u8], caller: &Caller, ctx: &Ctx) -> Value {
    let req: Request = match serde_json::from_slice(line) {
        Ok(r) => r,
        Err(e) => return refusal(&Value::Null, format!("bad request: {e}")),
    };
    let id = req.id.clone();
    let warm = match &req.rewarm {
        None | Some(Value::Bool(true)) => WarmMode::Queue,
        Some(Value::Bool(false)) => WarmMode::Off,
        Some(Value::String(s)) if s == "queue" => WarmMode::Queue,
        Some(Value::String(s)) if s == "wait" => WarmMode::Wait,
        Some(Value::String(s)) if s == "off" => WarmMode::Off,
        Some(other) => {
            return refusal(
                &id,
                format!("rewarm must be true, false, \"queue\", \"wait\" or \"off\", not {other}"),
            )
        }
    };
    match req.op.as_str() {
        "ping" => json!({"id": id, "ok": true, "user": caller.name}),
        "sites" => {
            let sites: Vec<Value> = ctx
                .allowed(caller)
                .map(|s| json!({"root": s.root(), "urls": s.conf.urls}))
                .collect();
            json!({"id": id, "ok": true, "sites": sites})
        }
        "stats" => json!({"id": id, "ok": true, "stats": ctx.queue.stats()}),
        "purge" | "refresh" => {
            if req.urls.is_empty() {
                return refusal(&id, "\"urls\" is empty");
            }
            if req.urls.len() > MAX_URLS {
                return refusal(&id, format!("more than {MAX_URLS} URLs in one request"));
            }
            let refresh = req.op == "refresh";
            let mut pending = Vec::with_capacity(req.urls.len());
            for u in &req.urls {
                let job = Target::parse(u).and_then(|t| {
                    let site = ctx.site_for(caller, &t)?;
                    let op = if refresh { Op::Refresh(t) } else { Op::Url(t) };
                    ctx.queue
                        .submit(site, op, warm)
                        .map_err(|_| "busy: the purge queue is full, nothing was done; retry".to_string())
                });
                pending.push((u, job));
            }
            let mut results = Vec::with_capacity(pending.len());
            for (u, job) in pending {
                let r = match job {
                    Ok(rx) => match rx.await {
                        Ok(o) => url_result(u, &o, refresh),
                        Err(_) => json!({"url": u, "status": "error", "error": "the service is stopping; retry"}),
                    },
                    Err(e) if e.starts_with("busy") => json!({"url": u, "status": "busy", "error": e}),
                    Err(e) => json!({"url": u, "status": "refused", "error": e}),
                };
                results.push(r);
            }
            json!({"id": id, "ok": true, "results": results})
        }
        "prefix" => {
            let Some(u) = &req.url else {
                return refusal(&id, "\"url\" is missing");
            };
            let t = match Target::parse(u) {
                Ok(t) => t,
                Err(e) => return refusal(&id, e),
            };
            let site = match ctx.site_for(caller, &t) {
                Ok(s) => s,
                Err(e) => return refusal(&id, e),
            };
            submit_one(ctx, &id, site, Op::Prefix(t)).await
        }
        "all" => {
            let site = match ctx.site_named(caller, req.site.as_deref()) {
                Ok(s) => s,
                Err(e) => return refusal(&id, e),
            };
            submit_one(ctx, &id, site, Op::All).await
        }
        "preload" | "preload_status" | "preload_stop" => {
            let site = match ctx.site_named(caller, req.site.as_deref()) {
                Ok(s) => s,
                Err(e) => return refusal(&id, e),
            };
            match req.op.as_str() {
                "preload" => match ctx.preloads.start(site, caller.uid).await {
                    Ok(pid) => json!({"id": id, "ok": true, "pid": pid}),
                    Err(e) => refusal(&id, e),
                },
                "preload_status" => {
                    json!({"id": id, "ok": true, "pid": ctx.preloads.status(site).await})
                }
                _ => {
                    let stopped = ctx.preloads.stop(site).await.is_some();
                    json!({"id": id, "ok": true, "stopped": stopped})
                }
            }
        }
        other => refusal(
            &id,
            format!("unknown op {other:?} (ping, sites, stats, purge, refresh, prefix, all, preload, preload_status, preload_stop)"),
        ),
    }
}

async fn submit_one(ctx: &Ctx, id: &Value, site: usize, op: Op) -> Value {
    match ctx.queue.submit(site, op, WarmMode::Off) {
        Ok(rx) => match rx.await {
            Ok(o) => match o.result {
                Ok(r) => json!({"id": id, "ok": true, "files": r.files, "skipped": r.skipped}),
                Err(e) => json!({"id": id, "ok": false, "error": e}),
            },
            Err(_) => refusal(id, "the service is stopping; retry"),
        },
        Err(_) => {
            json!({"id": id, "ok": false, "busy": true, "error": "busy: the purge queue is full, nothing was done; retry"})
        }
    }
}

fn url_result(url: &str, o: &Outcome, refresh: bool) -> Value {
    let mut v = match &o.result {
        Ok(Removed { files, skipped }) => {
            let status = if refresh {
                "refreshed"
            } else if o.via_all {
                "purged_all"
            } else if *files > 0 {
                "purged"
            } else {
                "not_cached"
            };
            json!({"url": url, "status": status, "files": files, "skipped": skipped})
        }
        Err(e) => json!({"url": url, "status": "error", "error": e}),
    };
    match &o.warm {
        WarmNote::None => {}
        WarmNote::Queued => v["rewarm"] = json!("queued"),
        WarmNote::Skipped => v["rewarm"] = json!("skipped"),
        WarmNote::Done(r) => v["rewarm"] = json!(r),
    }
    v
}
