//! Accept loops, connection limits, the idle exit and shutdown.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::Interest;
use tokio::net::{TcpListener, UnixListener, UnixStream};

use crate::peer::Caller;
use crate::proto::Ctx;

/// Connection limits.
#[derive(Debug, Clone, Copy)]
pub struct ConnLimits {
    /// Open connections in total.
    pub total: usize,
    /// Open connections of one uid (Unix socket) .
    pub per_uid: usize,
    /// Exit after this long without connections or work (`None` = never).
    pub idle_exit: Option<Duration>,
}

/// Shared accounting of open connections and the last activity.
pub struct Server {
    ctx: Arc<Ctx>,
    me: u32,
    limits: ConnLimits,
    open: AtomicUsize,
    per_uid: Mutex<HashMap<u32, usize>>,
    last: Mutex<Instant>,
}

/// Releases a connection slot when the connection ends.
struct Slot {
    srv: Arc<Server>,
    uid: Option<u32>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.srv.open.fetch_sub(1, Ordering::SeqCst);
        if let Some(uid) = self.uid {
            let mut m = self.srv.per_uid.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(n) = m.get_mut(&uid) {
                *n -= 1;
                if *n == 0 {
                    m.remove(&uid);
                }
            }
        }
        *self.srv.last.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
    }
}

impl Server {
    /// A server for a service running as uid `me`.
    pub fn new(ctx: Arc<Ctx>, me: u32, limits: ConnLimits) -> Arc<Server> {
        Arc::new(Server {
            ctx,
            me,
            limits,
            open: AtomicUsize::new(0),
            per_uid: Mutex::new(HashMap::new()),
            last: Mutex::new(Instant::now()),
        })
    }

    fn slot(self: &Arc<Self>, uid: Option<u32>) -> Option<Slot> {
        if self.open.fetch_add(1, Ordering::SeqCst) >= self.limits.total {
            self.open.fetch_sub(1, Ordering::SeqCst);
            return None;
        }
        if let Some(uid) = uid {
            let mut m = self.per_uid.lock().unwrap_or_else(|p| p.into_inner());
            let n = m.entry(uid).or_insert(0);
            if *n >= self.limits.per_uid {
                drop(m);
                self.open.fetch_sub(1, Ordering::SeqCst);
                return None;
            }
            *n += 1;
        }
        *self.last.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
        Some(Slot {
            srv: self.clone(),
            uid,
        })
    }

    /// Accepts on the Unix socket until the task is dropped.
    pub async fn unix_loop(self: Arc<Self>, l: UnixListener) {
        loop {
            let Ok((stream, _)) = l.accept().await else {
                // EMFILE and friends: back off instead of spinning.
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            };
            let Ok(cred) = stream.peer_cred() else {
                continue;
            };
            let Some(slot) = self.slot(Some(cred.uid())) else {
                // Over the limit: the client sees the connection closed at once.
                refuse(stream);
                continue;
            };
            let srv = self.clone();
            tokio::spawn(async move {
                let _slot = slot;
                let caller = Caller::identify(cred.uid(), cred.gid(), srv.me);
                srv.unix_conn(stream, caller).await;
            });
        }
    }

    async fn unix_conn(&self, stream: UnixStream, caller: Caller) {
        // The first byte tells the protocols apart: a JSON request starts with `{` (or white
        // space), an HTTP request with a method name.
        let mut first = [0u8; 1];
        let peek = async {
            loop {
                if stream.readable().await.is_err() {
                    return None;
                }
                match stream.try_io(Interest::READABLE, || {
                    rustix::net::recv(&stream, &mut first, rustix::net::RecvFlags::PEEK)
                        .map(|(n, _)| n)
                        .map_err(std::io::Error::from)
                }) {
                    Ok(n) => return Some(n),
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                    Err(_) => return None,
                }
            }
        };
        match tokio::time::timeout(crate::proto::LINE_TIMEOUT, peek).await {
            Ok(Some(1)) => {}
            _ => return,
        }
        if first[0].is_ascii_uppercase() {
            crate::http::serve(stream, caller, self.ctx.clone()).await;
        } else {
            crate::proto::serve(stream, caller, self.ctx.clone()).await;
        }
    }

    /// Accepts SpinupWP connections until the task is dropped; only loopback peers are served.
    pub async fn tcp_loop(self: Arc<Self>, l: TcpListener) {
        loop {
            let Ok((stream, addr)) = l.accept().await else {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            };
            if !addr.ip().is_loopback() {
                continue;
            }
            let Some(slot) = self.slot(None) else {
                continue;
            };
            let ctx = self.ctx.clone();
            tokio::spawn(async move {
                let _slot = slot;
                crate::spinup::serve(stream, ctx).await;
            });
        }
    }

    /// Resolves when the service has been idle for the configured time.
    pub async fn idle(self: Arc<Self>) {
        let Some(limit) = self.limits.idle_exit else {
            return std::future::pending().await;
        };
        loop {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let quiet = self.open.load(Ordering::SeqCst) == 0
                && self.ctx.queue.idle()
                && !self.ctx.preloads.any().await;
            if !quiet {
                *self.last.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
                continue;
            }
            let last = *self.last.lock().unwrap_or_else(|p| p.into_inner());
            if last.elapsed() >= limit {
                return;
            }
        }
    }
}

/// Closes a refused connection; the peer reads EOF (or a reset) right away.
fn refuse(stream: UnixStream) {
    let _ = stream.try_write(b"{\"ok\":false,\"error\":\"too many connections; retry\"}\n");
    drop(stream);
}
