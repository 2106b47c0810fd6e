//! The tailer's async driver: inotify (through `notify`, on the *directories*) wakes it up when a
//! file is created, written, removed or renamed (never when one is only opened or read, the
//! tailer's own doing), and a periodic rescan is the fallback for what inotify misses (NFS,
//! exhausted watches, a directory created later, lost events). All file logic stays in the
//! synchronous `Tailer`.

use std::collections::HashSet;
use std::future::Future;
use std::io;
use std::path::PathBuf;
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc;

use super::{TailedLine, Tailer};

/// How often the files are looked at without any inotify event.
pub const DEFAULT_RESCAN: Duration = Duration::from_secs(1);

/// Whether an inotify event can change what a glob matches or what a file holds: a creation, a
/// write, a removal, a rename, a metadata change (a file made readable), and any error or queue
/// overflow (something may have been missed; the poll looks at everything anyway). Opening,
/// reading and closing without writing cannot, and must not wake anyone: every poll opens the
/// folders it globs and the files it reads, so answering those events is a loop that never idles.
pub fn changes_files(event: &notify::Result<notify::Event>) -> bool {
    use notify::EventKind;
    use notify::event::{AccessKind, AccessMode};
    match event {
        Err(_) => true,
        Ok(event) => match event.kind {
            // A writer closing its file: what it wrote is complete.
            EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
            EventKind::Access(_) => false,
            EventKind::Any | EventKind::Create(_) | EventKind::Modify(_) | EventKind::Remove(_) => {
                true
            }
            EventKind::Other => true,
        },
    }
}

/// Runs `tailer` until `shutdown` completes or `tx` is closed, sending every line into the bounded
/// channel `tx` (a full channel blocks the tailer: files wait, nothing is dropped). Returns the
/// tailer so a caller can inspect or reuse it.
pub async fn run(
    tailer: Tailer,
    tx: mpsc::Sender<TailedLine>,
    shutdown: impl Future<Output = ()>,
) -> io::Result<Tailer> {
    run_with_rescan(tailer, tx, shutdown, DEFAULT_RESCAN).await
}

/// `run` with a chosen rescan interval.
pub async fn run_with_rescan(
    mut tailer: Tailer,
    tx: mpsc::Sender<TailedLine>,
    shutdown: impl Future<Output = ()>,
    rescan: Duration,
) -> io::Result<Tailer> {
    // Capacity 1: a pending wake-up already means "poll soon"; more events add nothing.
    let (wake_tx, mut wake_rx) = mpsc::channel::<()>(1);
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if changes_files(&event) {
            let _ = wake_tx.try_send(());
        }
    })
    .map_err(io::Error::other)?;
    let mut watched: HashSet<PathBuf> = HashSet::new();
    let mut ticker = tokio::time::interval(rescan);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(shutdown);

    loop {
        // Watch directories as they come to exist and as new files point elsewhere (symlinks).
        for dir in tailer.watch_dirs() {
            if !watched.contains(&dir) && watcher.watch(&dir, RecursiveMode::NonRecursive).is_ok() {
                watched.insert(dir);
            }
        }

        let sender = tx.clone();
        let (back, result) = tokio::task::spawn_blocking(move || {
            let mut closed = false;
            let result = tailer.poll(&mut |line| {
                if !closed && sender.blocking_send(line).is_err() {
                    closed = true;
                }
            });
            (tailer, result.map(|stats| (stats, closed)))
        })
        .await
        .map_err(io::Error::other)?;
        tailer = back;
        let (stats, closed) = result?;
        if closed {
            return Ok(tailer);
        }
        if stats.more {
            // A backlog: keep reading, but let shutdown in between.
            tokio::select! {
                biased;
                _ = &mut shutdown => return Ok(tailer),
                _ = tokio::task::yield_now() => continue,
            }
        }

        tokio::select! {
            biased;
            _ = &mut shutdown => return Ok(tailer),
            _ = wake_rx.recv() => {}
            _ = ticker.tick() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use notify::event::{
        AccessKind, AccessMode, CreateKind, DataChange, MetadataKind, ModifyKind, RemoveKind,
        RenameMode,
    };
    use notify::{Event, EventKind};

    use super::changes_files;

    #[test]
    fn only_events_that_change_files_wake_the_tailer() {
        let cases = [
            (EventKind::Create(CreateKind::File), true),
            (EventKind::Modify(ModifyKind::Data(DataChange::Any)), true),
            (EventKind::Modify(ModifyKind::Name(RenameMode::From)), true),
            (EventKind::Modify(ModifyKind::Name(RenameMode::To)), true),
            (
                EventKind::Modify(ModifyKind::Metadata(MetadataKind::Any)),
                true,
            ),
            (EventKind::Remove(RemoveKind::File), true),
            (
                EventKind::Access(AccessKind::Close(AccessMode::Write)),
                true,
            ),
            (EventKind::Other, true),
            (EventKind::Any, true),
            // What every poll does itself: open the folders it globs and the files it reads.
            (EventKind::Access(AccessKind::Open(AccessMode::Any)), false),
            (EventKind::Access(AccessKind::Read), false),
            (
                EventKind::Access(AccessKind::Close(AccessMode::Read)),
                false,
            ),
        ];
        for (kind, expected) in cases {
            assert_eq!(changes_files(&Ok(Event::new(kind))), expected, "{kind:?}");
        }
        assert!(changes_files(&Err(notify::Error::generic(
            "queue overflow"
        ))));
    }
}
