//! Rule reloads: a change in a rule folder, or SIGHUP, loads and validates the rules and publishes a
//! valid set on the rules channel, which the pipeline and the API both read. An invalid set is
//! logged and the running rules stay. SIGTERM and SIGINT end the `signals` future: the daemon stops.
//!
//! Only events that change what the rule folders hold count: reading the rules opens every file and
//! folder again, and an open answered with a reload is an endless loop. One burst of edits is one
//! reload.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use crate::rules::RuleSet;
use crate::sources::tail::watch::changes_files;

/// How long the rule folders must stay quiet before the rules are read: editors save in several
/// steps (a temporary file, a rename, a chmod), and one save must give one reload.
const SETTLE: Duration = Duration::from_millis(300);

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
    // Capacity 1: a pending wake-up already means "reload after the burst"; more add nothing.
    let (tx, mut rx) = mpsc::channel::<()>(1);
    let named = paths.clone();
    let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if changes_files(&event) && concerns_rules(&event, &named) {
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
        // Trailing debounce: read once nothing changed for SETTLE.
        loop {
            match tokio::time::timeout(SETTLE, rx.recv()).await {
                Ok(Some(())) => continue,
                Ok(None) => return,
                Err(_quiet) => break,
            }
        }
        let loaded = {
            let paths = paths.clone();
            tokio::task::spawn_blocking(move || crate::load::rules(&paths)).await
        };
        match loaded {
            Ok(Ok(set)) => {
                tracing::info!(
                    rules = set.len(),
                    "rule change validated; the new rules apply from the next line"
                );
                publish(&rules, set)
            }
            Ok(Err(problems)) => {
                tracing::error!(%problems, "rule change refused: the running rules stay")
            }
            Err(err) => tracing::error!(error = %err, "rule reload failed"),
        }
    }
}

/// Hands a validated rule set to the pipeline and the API.
pub fn publish(rules: &watch::Sender<Arc<RuleSet>>, set: RuleSet) {
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
                    .and_then(|config| {
                        if takes_cluster_rules(&config) {
                            Err("an edge or worker runs the rules the console publishes; reload them on the console".to_string())
                        } else {
                            Ok(config)
                        }
                    })
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

/// An edge or a worker runs the rule set the cluster's console publishes, never its own files.
pub fn takes_cluster_rules(config: &crate::config::Config) -> bool {
    config
        .cluster
        .as_ref()
        .is_some_and(|c| c.role != crate::config::Role::Console)
}

/// Whether a change can alter the loaded rules: a rule file (`*.yml`, `*.yaml`), a file named in
/// `daemon.rules`, or a name without extension (a folder). An editor's swap and backup files
/// (`.x.yml.swp`, `x.yml~`) are never loaded, and saving them while someone types must not reload.
fn concerns_rules(event: &notify::Result<notify::Event>, named: &[PathBuf]) -> bool {
    let Ok(event) = event else {
        return true; // an overflow or a watch error: anything may have changed
    };
    // An event without a path (a rescan notice) says only that something may have changed.
    event.paths.is_empty() || event.paths.iter().any(|path| is_rule_path(path, named))
}

fn is_rule_path(path: &Path, named: &[PathBuf]) -> bool {
    named.iter().any(|n| n == path)
        || match path.extension() {
            None => true,
            Some(ext) => ext == "yml" || ext == "yaml",
        }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_rule_files_and_folders_concern_the_rules() {
        let named = vec![
            PathBuf::from("/etc/socwatch/rules"),
            PathBuf::from("/etc/socwatch/extra.rules"),
        ];
        for (path, expected) in [
            ("/etc/socwatch/rules/ssh.yml", true),
            ("/etc/socwatch/rules/web.yaml", true),
            ("/etc/socwatch/rules/sub", true),
            ("/etc/socwatch/extra.rules", true),
            ("/etc/socwatch/rules/.ssh.yml.swp", false),
            ("/etc/socwatch/rules/ssh.yml~", false),
            ("/etc/socwatch/rules/notes.txt", false),
        ] {
            assert_eq!(is_rule_path(Path::new(path), &named), expected, "{path}");
        }
    }
}
