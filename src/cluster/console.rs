//! The console's intake: incident changes from every partition into the store, with the case book
//! (cases need every incident of an entity, whichever worker correlated it), in batches. Each batch
//! is one store transaction that also records, per partition, which changes it holds (`Taken`), so
//! a change delivered again (a worker repeating work after a takeover) is dropped, and the change
//! stream's position it holds everything up to, where the next run reads on. An operator closing an
//! incident is sent to the incident's partition, where its worker starts the group over.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use async_nats::jetstream::message::PublishMessage as Publish;
use tokio::sync::watch;

use super::wire::{self, ChangeMsg, PartitionMsg, Taken, WireChange};
use super::{Link, now_ms, sleep_or_stop};
use crate::cases::CaseBook;
use crate::config::Config;
use crate::correlate::Change;
use crate::engine::CaseStates;
use crate::metrics::Metrics;
use crate::rules::RuleSet;
use crate::store::{Position, Store};

const BATCH: usize = 2048;

/// The checkpoint key of the change stream's sequence the store holds everything up to.
const STREAM_KEY: &str = "cluster:changes";

/// The checkpoint key of what the console's store holds of a partition's changes.
fn mark_key(partition: u32) -> String {
    format!("cluster:p{partition}")
}

/// Runs the intake until `stop`; any failure starts it over from the store's position.
pub async fn run(
    link: Link,
    config: Config,
    store: Arc<Store>,
    rules: watch::Receiver<Arc<RuleSet>>,
    metrics: Arc<Metrics>,
    mut stop: watch::Receiver<bool>,
) {
    let mut wait = Duration::from_millis(200);
    loop {
        match intake(&link, &config, &store, &rules, &metrics, stop.clone()).await {
            Ok(()) => return,
            Err(err) => {
                tracing::warn!(error = %format!("{err:#}"), "console intake restarts");
                metrics.cluster.down(&format!("{err:#}"), now_ms());
            }
        }
        if sleep_or_stop(wait, &mut stop).await {
            return;
        }
        wait = (wait * 2).min(Duration::from_secs(5));
    }
}

async fn intake(
    link: &Link,
    config: &Config,
    store: &Arc<Store>,
    rules: &watch::Receiver<Arc<RuleSet>>,
    metrics: &Arc<Metrics>,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let mut book = CaseBook::new(config.cases.window()).with_external_clocks();
    // Per source clock, how far each partition's incidents have come: a case may only expire once
    // every partition has passed it, as if the incidents came in time order. (A source that feeds
    // few partitions keeps its cases open longer: memory, not a different grouping, since an
    // incident joins only a case whose span widened by the window holds it.)
    let mut progress: HashMap<String, HashMap<u32, jiff::Timestamp>> = HashMap::new();
    let saved = store.engine_state()?;
    let (restored, unreadable) = book.restore_state(
        saved
            .into_iter()
            .filter(|(key, _)| crate::cases::is_state_key(key)),
    );
    for id in book.open_cases() {
        if store.case(&id)?.is_none_or(|case| case.is_closed()) {
            book.forget(&id);
        }
    }
    let mut held: HashMap<u32, Taken> = HashMap::new();
    for partition in 0..link.partitions() {
        if let Some(text) = store.text_checkpoint(&mark_key(partition))? {
            match Taken::decode(&text) {
                Some(mark) => {
                    held.insert(partition, mark);
                }
                None => tracing::error!(
                    partition,
                    text,
                    "unreadable record of the partition's changes; its repeats will be stored again"
                ),
            }
        }
    }
    tracing::info!(
        cases = restored,
        unreadable,
        partitions = held.len(),
        "console intake starts"
    );

    let changes = link.js.get_stream(wire::CHANGE_STREAM).await?;
    // Where the store says the console stopped: the change stream's sequence saved with the last
    // stored batch. A fresh consumer starts right after it, in order, whatever a consumer of an
    // earlier run had delivered or not.
    let position = store
        .text_checkpoint(STREAM_KEY)?
        .and_then(|text| text.parse::<u64>().ok())
        .unwrap_or(0);
    let mut reader = super::Reader::new(
        super::fresh_consumer(&changes, wire::CONSOLE_CONSUMER, String::new(), position)
            .await
            .context("the console's consumer")?,
    );
    metrics.cluster.up();
    loop {
        if *stop.borrow() {
            return Ok(());
        }
        let set = rules.borrow().clone();
        forward_closed(link, store, &set, &mut book).await?;
        let messages = reader.fetch(BATCH).await?;
        if messages.is_empty() {
            continue;
        }
        let by_id = super::rule_indexes(&set);
        let mut stored: Vec<Change> = Vec::new();
        let mut cases = CaseStates::default();
        let mut moved: Vec<u32> = Vec::new();
        let mut behind = 0u64;
        for message in &messages {
            let changes: Vec<ChangeMsg> = match wire::unpack(&message.payload) {
                Ok(changes) => changes,
                Err(err) => {
                    tracing::error!(error = %err, "unreadable incident changes skipped");
                    continue;
                }
            };
            for change in changes {
                let partition = held.entry(change.partition).or_default();
                let late = partition.behind(change.seq, change.index);
                if !partition.take(change.seq, change.index, change.committed) {
                    continue;
                }
                behind += u64::from(late);
                if !moved.contains(&change.partition) {
                    moved.push(change.partition);
                }
                let at = match &change.change {
                    WireChange::Opened { incident, .. } => incident.last_seen,
                    WireChange::Updated { last_seen, .. } => *last_seen,
                };
                let fed = progress.entry(change.clock.clone()).or_default();
                let slot = fed.entry(change.partition).or_insert(at);
                *slot = (*slot).max(at);
                // A partition that has not fed this source yet may still bring its oldest incidents.
                if fed.len() as u32 == link.partitions()
                    && let Some(slowest) = fed.values().min()
                {
                    book.advance(&change.clock, *slowest);
                }
                match change.change {
                    WireChange::Opened {
                        mut incident,
                        entity,
                        follow_up,
                    } => {
                        let case = book.opened(&mut incident, entity, follow_up, &change.clock);
                        cases.record(case);
                        stored.push(Change::Opened(incident));
                    }
                    WireChange::Updated {
                        id,
                        rule,
                        count,
                        last_seen,
                        evidence,
                    } => {
                        if let Some(case) = book.updated(&id, count, last_seen, &change.clock) {
                            cases.record(case);
                        }
                        stored.push(Change::Updated {
                            id,
                            // The store folds count, time and evidence; the index is only for the engine.
                            rule: by_id.get(&rule).copied().unwrap_or(0),
                            count,
                            last_seen,
                            evidence,
                        });
                    }
                }
            }
        }
        let last_seq = messages
            .last()
            .and_then(|m| m.info().ok().map(|info| info.stream_sequence))
            .unwrap_or(position);
        if behind > 0 {
            tracing::info!(
                changes = behind,
                "changes arrived behind later ones of their partition (a worker's publishing was cut); repeats dropped, the rest stored"
            );
        }
        let mut positions: Vec<(String, Position)> = moved
            .iter()
            .map(|partition| {
                let text = held.get(partition).map(Taken::encode).unwrap_or_default();
                (mark_key(*partition), Position::Cursor(text))
            })
            .collect();
        positions.push((
            STREAM_KEY.to_string(),
            Position::Cursor(last_seq.to_string()),
        ));
        let state = book.take_state_changes();
        let (store_now, count) = (store.clone(), stored.len());
        tokio::task::spawn_blocking(move || {
            store_now.apply_batch(&stored, &cases.into_cases(), &positions, &state)?;
            store_now.flush()
        })
        .await??;
        Metrics::inc(&metrics.cluster.published, count as u64);
        // A work queue takes explicit acknowledgements; what is acknowledged leaves the stream.
        // The acknowledgement only moves the consumer (the lag `cluster status` shows).
        if let Some(last) = messages.last() {
            last.ack()
                .await
                .map_err(|err| anyhow::anyhow!("ack: {err}"))?;
        }
        metrics.cluster.up();
    }
}

/// Incidents an operator closed go to their partition (its worker starts the group over); closed
/// cases leave the case book.
async fn forward_closed(
    link: &Link,
    store: &Arc<Store>,
    set: &RuleSet,
    book: &mut CaseBook,
) -> anyhow::Result<()> {
    for id in store.take_closed() {
        book.forget(&id);
        let Some(incident) = store.get(&id)? else {
            continue;
        };
        let Some(rule) = set.rules().iter().position(|r| r.id == incident.rule_id) else {
            continue;
        };
        let group: Vec<String> = set
            .rule(rule)
            .threshold
            .group_by
            .iter()
            .map(|field| incident.group.get(field).cloned().unwrap_or_default())
            .collect();
        let partition = wire::partition_of(set, rule, &group, link.partitions());
        let body = serde_json::to_vec(&PartitionMsg::Forget {
            incident: id.clone(),
        })?;
        link.js
            .send_publish(
                wire::match_subject(partition),
                Publish::build()
                    .payload(body.into())
                    .message_id(format!("forget|{id}|{}", incident.revision)),
            )
            .await?
            .await
            .context("telling the worker of a closed incident")?;
    }
    Ok(())
}
