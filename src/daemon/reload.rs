//! Rule-folder watching: a change to the rule files reloads the rules like SIGHUP does, once per
//! burst of edits. Only events that change what the rule folders hold count: reading the rules
//! opens every file and folder again, and an open answered with a reload is an endless loop.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use notify::Watcher;
use tokio::sync::mpsc;

use crate::rules::RuleSet;
use crate::sources::tail::watch::changes_files;

/// How long the rule folders must stay quiet before the rules are read: editors save in several
/// steps (a temporary file, a rename, a chmod), and one save must give one reload.
const SETTLE: Duration = Duration::from_millis(300);

/// Watches the rule files and folders; after a burst of changes, loads and validates the rules
/// and hands a valid set to the pipeline (`slot`). An invalid set is logged and the running rules
/// stay. The watcher stops when the returned value is dropped.
pub(super) fn watch_rule_files(
    paths: &[PathBuf],
    slot: Arc<Mutex<Option<RuleSet>>>,
) -> Option<notify::RecommendedWatcher> {
    if paths.is_empty() {
        return None;
    }
    // Capacity 1: a pending wake-up already means "reload after the burst"; more add nothing.
    let (tx, mut rx) = mpsc::channel::<()>(1);
    let named = paths.to_vec();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if changes_files(&event) && concerns_rules(&event, &named) {
            let _ = tx.try_send(());
        }
    })
    .ok()?;
    for path in paths {
        if let Err(err) = watcher.watch(path, notify::RecursiveMode::Recursive) {
            tracing::warn!(path = %path.display(), error = %err, "cannot watch rules for changes");
        }
    }
    let paths = paths.to_vec();
    tokio::spawn(async move {
        while rx.recv().await.is_some() {
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
                Ok(Ok(rules)) => {
                    tracing::info!(
                        rules = rules.len(),
                        "rule change validated; the new rules apply from the next line"
                    );
                    if let Ok(mut pending) = slot.lock() {
                        *pending = Some(rules);
                    }
                }
                Ok(Err(problems)) => {
                    tracing::error!(%problems, "rule change refused: the running rules stay")
                }
                Err(err) => tracing::error!(error = %err, "rule reload failed"),
            }
        }
    });
    Some(watcher)
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
