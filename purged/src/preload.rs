//! Preloads the service runs itself, so a Purge All can stop one and start it again.
//!
//! Why the service does not stop a preload that a site user started through safexec: that
//! job runs as safexec's job user, its record in /run/safexec is root-only, and the service runs
//! as the cache owner with no capabilities and `NoNewPrivileges` (so it cannot run the setuid
//! safexec either). The kernel lets it signal only its own processes. What it can make
//! well-defined is the preloads it owns: started by a `preload` request or by the timer unit,
//! they are its children. A Purge All of a site stops that site's preload (SIGTERM, then SIGKILL
//! after 5 s; the same order `safexec --kill` uses), purges, and starts the preload again from
//! the beginning, so no page warmed before the purge stays deleted and none is warmed with the
//! old content. A client that started its own preload through safexec stops it first with
//! `safexec --kill=<pid>` (NPP's order) or asks the service to run the preload instead.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};
use tokio::sync::Mutex;

/// How a stopped preload is started again.
#[derive(Debug, Clone, Copy)]
pub struct Restart {
    by: u32,
}

struct Running {
    child: Child,
    pid: u32,
    by: u32,
}

/// The service's own preload processes, one per site at most.
pub struct Preloads {
    bin: Option<PathBuf>,
    args: Vec<String>,
    bases: Vec<Option<String>>,
    running: Mutex<HashMap<usize, Running>>,
}

impl Preloads {
    /// `bin` runs with `args`, where `{url}` is the site's first base URL (no trailing slash).
    pub fn new(bin: Option<PathBuf>, args: Vec<String>, bases: Vec<Option<String>>) -> Preloads {
        Preloads {
            bin,
            args,
            bases,
            running: Mutex::new(HashMap::new()),
        }
    }

    /// Starts the site's preload for caller `by`; returns its pid.
    pub async fn start(&self, site: usize, by: u32) -> Result<u32, String> {
        let Some(bin) = &self.bin else {
            return Err("no preload command configured (--preload-bin)".into());
        };
        let Some(Some(base)) = self.bases.get(site) else {
            return Err("the site has no url= to preload".into());
        };
        let mut running = self.running.lock().await;
        if let Some(r) = running.get_mut(&site) {
            if matches!(r.child.try_wait(), Ok(None)) {
                return Err(format!(
                    "a preload of this site already runs (pid {})",
                    r.pid
                ));
            }
        }
        let args: Vec<String> = self.args.iter().map(|a| a.replace("{url}", base)).collect();
        let child = Command::new(bin)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
        let pid = child.id().unwrap_or(0);
        running.insert(site, Running { child, pid, by });
        Ok(pid)
    }

    /// The pid of the site's running preload.
    pub async fn status(&self, site: usize) -> Option<u32> {
        let mut running = self.running.lock().await;
        let r = running.get_mut(&site)?;
        match r.child.try_wait() {
            Ok(None) => Some(r.pid),
            _ => {
                running.remove(&site);
                None
            }
        }
    }

    /// Whether any preload runs (keeps the service from idling out).
    pub async fn any(&self) -> bool {
        let mut running = self.running.lock().await;
        running.retain(|_, r| matches!(r.child.try_wait(), Ok(None)));
        !running.is_empty()
    }

    /// Stops the site's preload; `Some` when one ran (to restart it after the purge).
    pub async fn stop(&self, site: usize) -> Option<Restart> {
        let mut r = self.running.lock().await.remove(&site)?;
        if !matches!(r.child.try_wait(), Ok(None)) {
            return None;
        }
        if let Some(pid) = rustix::process::Pid::from_raw(r.pid as i32) {
            // The child is ours and not yet reaped, so the pid cannot have been reused.
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        }
        if tokio::time::timeout(Duration::from_secs(5), r.child.wait())
            .await
            .is_err()
        {
            let _ = r.child.kill().await;
        }
        Some(Restart { by: r.by })
    }

    /// Starts a stopped preload again.
    pub async fn restart(&self, site: usize, r: Restart) {
        if let Err(e) = self.start(site, r.by).await {
            eprintln!("cache-purged: preload restart failed: {e}");
        }
    }

    /// Stops every preload (shutdown).
    pub async fn stop_all(&self) {
        let sites: Vec<usize> = self.running.lock().await.keys().copied().collect();
        for s in sites {
            self.stop(s).await;
        }
    }
}
