//! Rule reloads: a change in a rule folder, or SIGHUP, loads and validates the rules and publishes a
//! valid set on the rules channel, which the pipeline and the API both read. An invalid set is
//! logged and the running rules stay. SIGTERM and SIGINT end the `signals` future: the daemon stops.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use crate::rules::RuleSet;

/// How long a burst of file events must be quiet before the rules are read: editors write in steps.
const SETTLE: Duration = Duration::from_millis(300);

/// Whether a file event can change what the rule files say. Reading the files (which the reload
/// itself does) raises access events; counting those would reload for ever.
fn changes_content(event: &notify::Event) -> bool {
    use notify::EventKind;
    matches!(
        event.kind,
        EventKind::Create(_) | EventKind::Modify(_) | EventKind::Remove(_) | EventKind::Any
    ) && !matches!(
        event.kind,
        EventKind::Modify(notify::event::ModifyKind::Metadata(
            notify::event::MetadataKind::AccessTime
        ))
    )
}

/// Watches `paths` until `stopped`; each settled burst of changes reloads the rules once.
pub async fn watch_rule_files(
    paths: Vec<PathBuf>,
    rules: watch::Sender<Arc<RuleSet>>,
    mut stopped: watch::Receiver<bool>,
) {
    use notify::Watcher;
    if paths.is_empty() {
        return;
    }
    let (tx, mut rx) = mpsc::channel::<()>(1);
    let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if event.as_ref().is_ok_and(changes_content) {
            let _ = tx.try_send(());
        }
    });
    let mut watcher = match watcher {
        Ok(watcher) => watcher,
        Err(err) => {
            tracing::warn!(error = %err, "cannot watch the rules for changes");
            return;
        }
    };
    for path in &paths {
        if let Err(err) = watcher.watch(path, notify::RecursiveMode::Recursive) {
            tracing::warn!(path = %path.display(), error = %err, "cannot watch rules for changes");
        }
    }
    loop {
        tokio::select! {
            _ = stopped.wait_for(|s| *s) => return,
            event = rx.recv() => if event.is_none() { return },
        }
        // Let the burst settle: wait until no event came for SETTLE.
        while let Ok(Some(())) = tokio::time::timeout(SETTLE, rx.recv()).await {}
        let loaded = {
            let paths = paths.clone();
            tokio::task::spawn_blocking(move || crate::load::rules(&paths)).await
        };
        match loaded {
            Ok(Ok(set)) => publish(&rules, set),
            Ok(Err(problems)) => {
                tracing::error!(%problems, "rule change refused: the running rules stay")
            }
            Err(err) => tracing::error!(error = %err, "rule reload failed"),
        }
    }
}

/// Hands a validated rule set to the pipeline and the API.
pub fn publish(rules: &watch::Sender<Arc<RuleSet>>, set: RuleSet) {
    tracing::info!(rules = set.len(), "new rules loaded");
    rules.send_replace(Arc::new(set));
}

/// Completes on SIGTERM or SIGINT. SIGHUP re-reads the config's rules meanwhile: a valid set is
/// handed to the pipeline, an invalid one is logged and the running rules stay. The handlers are
/// installed by this call, not at the future's first poll, so a SIGTERM sent as soon as READY=1
/// arrives still stops the daemon gracefully.
pub fn signals(
    config_file: Option<PathBuf>,
    rules: watch::Sender<Arc<RuleSet>>,
) -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{SignalKind, signal};
    let handlers = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::hangup()),
    );
    wait_for_signals(handlers, config_file, rules)
}

type SignalHandlers = (
    std::io::Result<tokio::signal::unix::Signal>,
    std::io::Result<tokio::signal::unix::Signal>,
    std::io::Result<tokio::signal::unix::Signal>,
);

async fn wait_for_signals(
    handlers: SignalHandlers,
    config_file: Option<PathBuf>,
    rules: watch::Sender<Arc<RuleSet>>,
) {
    let (Ok(mut term), Ok(mut int), Ok(mut hup)) = handlers else {
        tracing::error!("cannot install signal handlers");
        return;
    };
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = hup.recv() => {
                super::notify_systemd("RELOADING=1");
                let loaded = crate::load::config(config_file.as_deref())
                    .map_err(|e| e.to_string())
                    .and_then(|config| crate::load::rules(&config.daemon.rules).map_err(|e| e.to_string()));
                match loaded {
                    Ok(set) => publish(&rules, set),
                    Err(problems) => tracing::error!(%problems, "reload refused: the running rules stay"),
                }
                super::notify_systemd("READY=1");
            }
        }
    }
    super::notify_systemd("STOPPING=1");
}
