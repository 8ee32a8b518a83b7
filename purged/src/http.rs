//! The `ngx_cache_purge` HTTP interface, served on the Unix socket for nginx to proxy to
//! (packaging/nginx/cache-purged-location.conf allows it from loopback only).
//!
//! - `GET /purge/<uri>` (Nginx Helper's `get_request` mode) and `PURGE /<uri>` purge the URL
//!   `<X-Forwarded-Proto>://<Host>/<uri>`: 200 with a small HTML page naming the key when
//!   something was purged, 412 when nothing was cached (the nginx-modules 2.5+ behaviour).
//! - `<uri>` ending in `*` purges that prefix, `/*` the whole site (ngx_cache_purge's wildcard
//!   and purge-all); `PURGE /purgeall` (Nginx Helper's "torden" mode) is the whole site too.
//! - The peer is identified like any socket caller: nginx's worker runs as the cache owner, so
//!   it may purge every site; a site user speaking HTTP to the socket gets its own sites only.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::UnixStream;

use crate::peer::Caller;
use crate::proto::Ctx;
use crate::queue::{Op, WarmMode};
use crate::sites::Target;

/// Serves HTTP/1.1 on one connection.
pub async fn serve(stream: UnixStream, caller: Caller, ctx: Arc<Ctx>) {
    let caller = Arc::new(caller);
    let svc = hyper::service::service_fn(move |req| {
        let (c, x) = (caller.clone(), ctx.clone());
        async move { Ok::<_, Infallible>(handle(req, &c, &x).await) }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(10))
        .max_buf_size(16 * 1024)
        .serve_connection(TokioIo::new(stream), svc);
    let _ = conn.await;
}

fn page(status: StatusCode, title: &str, extra: &str) -> Response<Full<Bytes>> {
    let body = format!(
        "<html>\n<head><title>{title}</title></head>\n<body>\n<center><h1>{title}</h1>{extra}</center>\n<hr><center>cache-purged</center>\n</body>\n</html>\n"
    );
    Response::builder()
        .status(status)
        .header("Content-Type", "text/html")
        .header("Cache-Control", "no-store")
        .body(Full::new(Bytes::from(body)))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

async fn handle<B>(req: Request<B>, caller: &Caller, ctx: &Ctx) -> Response<Full<Bytes>> {
    let pq = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "/".into());
    let uri = if req.method() == Method::from_bytes(b"PURGE").unwrap_or(Method::DELETE) {
        pq
    } else if req.method() == Method::GET || req.method() == Method::HEAD {
        match pq.strip_prefix("/purge") {
            Some(rest) if rest.starts_with('/') => rest.to_owned(),
            Some(rest) if rest.is_empty() || rest.starts_with('?') => format!("/{rest}"),
            _ => return page(StatusCode::NOT_FOUND, "404 Not Found", ""),
        }
    } else {
        return page(StatusCode::METHOD_NOT_ALLOWED, "405 Not Allowed", "");
    };
    let host = req
        .headers()
        .get("host")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    let scheme = match req
        .headers()
        .get("x-forwarded-proto")
        .and_then(|h| h.to_str().ok())
    {
        Some("https") => "https",
        _ => "http",
    };
    let t = match Target::parse(&format!("{scheme}://{host}{uri}")) {
        Ok(t) => t,
        Err(e) => return page(StatusCode::BAD_REQUEST, "400 Bad Request", &escape(&e)),
    };
    let site = match ctx.site_for(caller, &t) {
        Ok(s) => s,
        Err(e) => return page(StatusCode::FORBIDDEN, "403 Forbidden", &escape(&e)),
    };
    let (op, warm) = if t.uri == "/*" || t.uri == "/purgeall" {
        (Op::All, WarmMode::Off)
    } else if let Some(p) = t.uri.strip_suffix('*') {
        let mut pt = t.clone();
        pt.uri = p.to_owned();
        (Op::Prefix(pt), WarmMode::Off)
    } else {
        (Op::Url(t.clone()), WarmMode::Queue)
    };
    let key = ctx.queue.sites().all[site].key_of(&t).unwrap_or_default();
    let rx = match ctx.queue.submit(site, op, warm) {
        Ok(rx) => rx,
        Err(_) => {
            let mut r = page(StatusCode::SERVICE_UNAVAILABLE, "503 Busy", "");
            r.headers_mut()
                .insert("Retry-After", hyper::header::HeaderValue::from_static("1"));
            return r;
        }
    };
    match rx.await {
        Ok(o) => match o.result {
            Ok(r) if r.files > 0 => page(
                StatusCode::OK,
                "Successful purge",
                &format!("\n<br>Key : {}\n", escape(&key)),
            ),
            Ok(_) => page(
                StatusCode::PRECONDITION_FAILED,
                "412 Precondition Failed",
                "",
            ),
            Err(e) => page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "500 Purge Failed",
                &escape(&e),
            ),
        },
        Err(_) => page(StatusCode::SERVICE_UNAVAILABLE, "503 Stopping", ""),
    }
}
