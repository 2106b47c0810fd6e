//! systemd integration: `sd_notify` messages (`READY=1`, `RELOADING=1`, `STOPPING=1`) and the
//! watchdog, which is fed only while the pipeline makes progress, so a hung pipeline gets the
//! service restarted instead of a timer vouching for it.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::watch;

/// What the pipeline reports of itself: whether it is inside a batch, and since when.
#[derive(Debug)]
pub struct Progress {
    started: Instant,
    /// Milliseconds since `started` at which the current batch began; 0 while waiting for input.
    busy_since_ms: AtomicU64,
    batches: AtomicU64,
}

impl Default for Progress {
    fn default() -> Self {
        Progress {
            started: Instant::now(),
            busy_since_ms: AtomicU64::new(0),
            batches: AtomicU64::new(0),
        }
    }
}

impl Progress {
    pub fn batch_started(&self) {
        let ms = self.started.elapsed().as_millis() as u64;
        self.busy_since_ms.store(ms.max(1), Ordering::Release);
    }

    pub fn batch_done(&self) {
        self.busy_since_ms.store(0, Ordering::Release);
        self.batches.fetch_add(1, Ordering::Relaxed);
    }

    pub fn batches(&self) -> u64 {
        self.batches.load(Ordering::Relaxed)
    }

    /// How long the current batch has taken so far; None while the pipeline waits for input.
    pub fn stuck_for(&self) -> Option<Duration> {
        let since = self.busy_since_ms.load(Ordering::Acquire);
        (since != 0).then(|| {
            let now = self.started.elapsed().as_millis() as u64;
            Duration::from_millis(now.saturating_sub(since))
        })
    }
}

/// Pings the watchdog every `every` while the pipeline is waiting for input or its batch is younger
/// than `every`; stops when `stopped` says so.
pub async fn feed_watchdog(
    every: Duration,
    progress: Arc<Progress>,
    mut stopped: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(every);
    loop {
        tokio::select! {
            _ = stopped.wait_for(|s| *s) => return,
            _ = tick.tick() => match progress.stuck_for() {
                Some(stuck) if stuck > every => {
                    tracing::warn!(stuck_s = stuck.as_secs(), "pipeline is stuck in one batch: watchdog not fed")
                }
                _ => notify_systemd("WATCHDOG=1"),
            },
        }
    }
}

/// Tells systemd about the daemon's state (`READY=1`, `STOPPING=1`, ...) when it runs us as
/// `Type=notify`; does nothing otherwise.
pub fn notify_systemd(state: &str) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let Ok(socket) = std::os::unix::net::UnixDatagram::unbound() else {
        return;
    };
    let path = PathBuf::from(path);
    let sent = match path.to_str().and_then(|p| p.strip_prefix('@')) {
        Some(abstract_name) => {
            use std::os::linux::net::SocketAddrExt;
            std::os::unix::net::SocketAddr::from_abstract_name(abstract_name.as_bytes())
                .and_then(|addr| socket.send_to_addr(state.as_bytes(), &addr))
        }
        None => socket.send_to(state.as_bytes(), &path),
    };
    if let Err(err) = sent {
        tracing::warn!(error = %err, "cannot notify systemd");
    }
}

/// The watchdog interval systemd asked for (`WatchdogSec=`), halved as sd_watchdog_enabled advises.
pub fn watchdog_interval() -> Option<Duration> {
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    Some(Duration::from_micros(usec / 2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_says_stuck_only_inside_a_batch() {
        let progress = Progress::default();
        assert_eq!(progress.stuck_for(), None, "waiting for input is not stuck");
        progress.batch_started();
        let inside = progress.stuck_for().expect("inside a batch");
        assert!(inside < Duration::from_secs(60), "{inside:?}");
        progress.batch_done();
        assert_eq!(progress.stuck_for(), None);
        assert_eq!(progress.batches(), 1);
    }
}
