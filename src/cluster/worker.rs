//! The worker: owns a share of the partitions and correlates their matches. Ownership is a lease in
//! the owners bucket (renewed every beat, gone when the worker stops renewing), spread over the live
//! workers by rendezvous hashing. A partition's owner reads its match subject in stream order,
//! publishes the incident changes, then commits the correlation state with the stream position to
//! the state stream. A new owner (after a kill, a rebalance) reads the commits back and goes on from
//! the committed position: what the old owner did after its last commit is done again, with the
//! same message ids, so nothing is counted twice or lost.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use async_nats::jetstream::kv;
use async_nats::jetstream::message::PublishMessage as Publish;
use async_nats::jetstream::stream::LastRawMessageErrorKind;
use futures_util::StreamExt as _;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::wire::{
    self, ChangeMsg, Heartbeat, PartitionMsg, PartitionState, StateCommit, Taken, WireChange,
    owner_of,
};
use super::{BEAT, Link, now_ms, sleep_or_stop};
use crate::cases::Entity;
use crate::config::Config;
use crate::correlate::{Change, ClockId, Correlator, Limits, Observation, Origin};
use crate::metrics::Metrics;
use crate::rules::RuleSet;

/// Matches taken per batch (one state commit per batch).
const BATCH: usize = 2048;
/// A commit's entries are split into messages of at most this many bytes (the server's default
/// message limit is 1 MiB).
const PART_BYTES: usize = 512 * 1024;
/// Every this many commits the whole state is written again and the older commits purged, so a
/// takeover reads a bounded history.
const SNAPSHOT_EVERY: usize = 64;

struct Owned {
    revision: u64,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

/// Runs the worker until `stop`: keeps its leases, starts and stops the partitions it owns.
pub async fn run(
    link: Link,
    config: Config,
    rules: watch::Receiver<Arc<RuleSet>>,
    metrics: Arc<Metrics>,
    mut stop: watch::Receiver<bool>,
) {
    let mut owned: BTreeMap<u32, Owned> = BTreeMap::new();
    let unit = config.daemon.unit.clone();
    loop {
        if let Err(err) = balance(&link, &mut owned, &rules, &metrics, &unit).await {
            tracing::warn!(error = %format!("{err:#}"), "cannot reach the leases; partitions keep running until their lease lapses");
            metrics.cluster.down(&format!("{err:#}"), now_ms());
        }
        *metrics
            .cluster
            .partitions
            .write()
            .unwrap_or_else(|e| e.into_inner()) = owned.keys().copied().collect();
        if sleep_or_stop(BEAT, &mut stop).await {
            break;
        }
    }
    let owners = link.bucket(wire::OWNERS_BUCKET).await.ok();
    for (partition, own) in owned {
        release(partition, own, owners.as_ref()).await;
    }
}

/// The live workers, this one included, by name.
async fn live_workers(link: &Link) -> anyhow::Result<Vec<String>> {
    let nodes = link.bucket(wire::NODES_BUCKET).await?;
    let mut keys = nodes.keys().await?;
    let mut workers = vec![link.node.clone()];
    while let Some(key) = keys.next().await {
        let key = key?;
        if key == link.node {
            continue;
        }
        if let Some(value) = nodes.get(&key).await?
            && let Ok(beat) = serde_json::from_slice::<Heartbeat>(&value)
            && beat.role == "worker"
        {
            workers.push(beat.node);
        }
    }
    workers.sort();
    workers.dedup();
    Ok(workers)
}

async fn balance(
    link: &Link,
    owned: &mut BTreeMap<u32, Owned>,
    rules: &watch::Receiver<Arc<RuleSet>>,
    metrics: &Arc<Metrics>,
    unit: &str,
) -> anyhow::Result<()> {
    let workers = live_workers(link).await?;
    let owners = link.bucket(wire::OWNERS_BUCKET).await?;
    for partition in 0..link.partitions() {
        let key = wire::lease_key(partition);
        let mine = owner_of(&workers, partition) == Some(link.node.as_str());
        if let Some(own) = owned.get_mut(&partition) {
            if !mine || own.task.is_finished() {
                let own = owned.remove(&partition).expect("present");
                tracing::info!(partition, "handing the partition over");
                release(partition, own, Some(&owners)).await;
                continue;
            }
            match owners
                .update(&key, link.node.clone().into_bytes().into(), own.revision)
                .await
            {
                Ok(revision) => own.revision = revision,
                Err(err) => {
                    // Someone else holds it now (our lease lapsed): stop at once, commit nothing more.
                    tracing::warn!(partition, error = %err, "lost the partition's lease");
                    let own = owned.remove(&partition).expect("present");
                    let _ = own.stop.send(true);
                    let _ = own.task.await;
                }
            }
        } else if mine {
            match owners
                .create(&key, link.node.clone().into_bytes().into())
                .await
            {
                Ok(revision) => {
                    tracing::info!(partition, "took the partition");
                    let (stop_tx, stop_rx) = watch::channel(false);
                    let task = tokio::spawn(own_partition(
                        link.clone(),
                        partition,
                        rules.clone(),
                        metrics.clone(),
                        unit.to_string(),
                        stop_rx,
                    ));
                    owned.insert(
                        partition,
                        Owned {
                            revision,
                            stop: stop_tx,
                            task,
                        },
                    );
                }
                // Still leased by its previous owner: taken once that lease lapses.
                Err(_) => continue,
            }
        }
    }
    metrics.cluster.up();
    Ok(())
}

async fn release(partition: u32, own: Owned, owners: Option<&kv::Store>) {
    let _ = own.stop.send(true);
    let _ = own.task.await;
    if let Some(owners) = owners {
        // Only our own lease: a lapsed one may be someone else's by now.
        let _ = owners
            .delete_expect_revision(wire::lease_key(partition), Some(own.revision))
            .await;
    }
}

/// Owns one partition until `stop`: any failure (the server restarting, a commit refused because
/// another owner wrote) starts it over from the committed state.
async fn own_partition(
    link: Link,
    partition: u32,
    rules: watch::Receiver<Arc<RuleSet>>,
    metrics: Arc<Metrics>,
    unit: String,
    mut stop: watch::Receiver<bool>,
) {
    let mut wait = Duration::from_millis(200);
    loop {
        match correlate_partition(
            &link,
            partition,
            rules.clone(),
            &metrics,
            &unit,
            stop.clone(),
        )
        .await
        {
            Ok(()) => return,
            Err(err) => {
                tracing::warn!(partition, error = %format!("{err:#}"), "partition restarts from its last commit");
                metrics.cluster.down(&format!("{err:#}"), now_ms());
            }
        }
        if sleep_or_stop(wait, &mut stop).await {
            return;
        }
        wait = (wait * 2).min(Duration::from_secs(5));
    }
}

/// Reads a partition's commits; returns the state and the subject's last sequence (0: none yet).
async fn read_state(link: &Link, partition: u32) -> anyhow::Result<(PartitionState, u64)> {
    let stream = link.js.get_stream(wire::STATE_STREAM).await?;
    let subject = wire::state_subject(partition);
    let last = match stream.get_last_raw_message_by_subject(&subject).await {
        Ok(message) => message.sequence,
        Err(err) if err.kind() == LastRawMessageErrorKind::NoMessageFound => {
            return Ok((PartitionState::default(), 0));
        }
        Err(err) => return Err(err.into()),
    };
    let mut commits = Vec::new();
    let mut next = 1;
    while next <= last {
        let message = stream
            .raw_message_builder()
            .sequence(next)
            .next_by_subject(subject.clone())
            .send()
            .await
            .context("reading the partition's state")?;
        if message.sequence > last {
            break;
        }
        next = message.sequence + 1;
        match serde_json::from_slice::<StateCommit>(&message.payload) {
            Ok(commit) => commits.push(commit),
            Err(err) => {
                tracing::error!(partition, sequence = message.sequence, error = %err, "unreadable state commit skipped")
            }
        }
    }
    Ok((wire::restore(commits), last))
}

/// The owner's loop for one partition.
async fn correlate_partition(
    link: &Link,
    partition: u32,
    mut rules: watch::Receiver<Arc<RuleSet>>,
    metrics: &Arc<Metrics>,
    unit: &str,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let (mut state, mut state_seq) = read_state(link, partition).await?;
    let mut set = rules.borrow_and_update().clone();
    let mut correlator = Correlator::new(&set, Limits::default());
    let report =
        correlator.restore_state(state.entries.iter().map(|(k, v)| (k.clone(), v.clone())));
    tracing::info!(
        partition,
        pos = state.pos,
        groups = report.groups,
        "partition state restored"
    );

    let matches = link.js.get_stream(wire::MATCH_STREAM).await?;
    let name = wire::partition_consumer(partition);
    // A consumer left by the previous owner has deliveries pending that would come out of order;
    // a fresh one starts right after the committed position.
    let mut reader = super::Reader::new(
        super::fresh_consumer(&matches, &name, wire::match_subject(partition), state.pos)
            .await
            .context("the partition's consumer")?,
    );

    let changes_subject = wire::change_subject(partition);
    let mut by_id = super::rule_indexes(&set);
    loop {
        if *stop.borrow() {
            return Ok(());
        }
        if rules.has_changed().unwrap_or(false) {
            set = rules.borrow_and_update().clone();
            let fresh = Correlator::new(&set, Limits::default());
            let old = std::mem::replace(&mut correlator, fresh);
            let kept = correlator.carry_over(old);
            by_id = super::rule_indexes(&set);
            tracing::info!(
                partition,
                rules = set.len(),
                kept_state = kept,
                "rules reloaded"
            );
        }
        let messages = reader.fetch(BATCH).await?;
        let Some(last) = messages.last() else {
            continue;
        };
        let last_seq = last
            .info()
            .map_err(|err| anyhow::anyhow!("{err}"))?
            .stream_sequence;
        let mut outgoing: Vec<ChangeMsg> = Vec::new();
        let mut behind = 0u64;
        // The origins whose counted hits this batch moved, for the commit.
        let mut seen_now: HashSet<String> = HashSet::new();
        for message in &messages {
            let seq = message
                .info()
                .map_err(|err| anyhow::anyhow!("{err}"))?
                .stream_sequence;
            if seq <= state.pos {
                continue;
            }
            let items: Vec<PartitionMsg> = match wire::unpack(&message.payload) {
                Ok(items) => items,
                Err(err) => {
                    tracing::error!(partition, seq, error = %err, "unreadable matches skipped");
                    continue;
                }
            };
            for (index, parsed) in items.into_iter().enumerate() {
                match parsed {
                    PartitionMsg::Forget { incident } => correlator.forget(&incident),
                    PartitionMsg::Match(hit) => {
                        let late = hit.pos.is_some_and(|pos| {
                            let taken = state.seen.get(&hit.origin);
                            taken.is_some_and(|taken| taken.behind(pos, hit.hit))
                        });
                        if !state.take(&hit) {
                            continue;
                        }
                        behind += u64::from(late);
                        if hit.pos.is_some() {
                            seen_now.insert(hit.origin.clone());
                        }
                        let Some(&rule) = by_id.get(&hit.rule) else {
                            tracing::warn!(partition, rule = %hit.rule, "a match of a rule this worker does not run; skipped");
                            continue;
                        };
                        if let Some(change) = observe(&mut correlator, &set, rule, &hit, unit) {
                            outgoing.push(ChangeMsg {
                                partition,
                                seq,
                                // A match makes at most one change.
                                index: index as u32,
                                committed: state.pos,
                                change,
                                clock: hit.clock.clone(),
                            });
                        }
                    }
                }
            }
        }
        if behind > 0 {
            tracing::info!(
                partition,
                hits = behind,
                "hits arrived behind later ones of their origin (an edge's publishing was cut); repeats dropped, the rest counted"
            );
        }
        publish_changes(link, &changes_subject, &outgoing).await?;
        Metrics::inc(&metrics.cluster.published, outgoing.len() as u64);

        let delta = correlator.take_state_changes();
        state.absorb(&delta);
        let snapshot = state.commits_since_snapshot + 1 >= SNAPSHOT_EVERY;
        let (taken, entries) = if snapshot {
            (
                state
                    .seen
                    .iter()
                    .map(|(origin, taken)| (origin.clone(), taken.encode()))
                    .collect(),
                state
                    .entries
                    .iter()
                    .map(|(k, v)| (wire::hex(k), Some(wire::to_base64(v))))
                    .collect(),
            )
        } else {
            (
                seen_now
                    .into_iter()
                    .map(|origin| {
                        let text = state.seen.get(&origin).map(Taken::encode);
                        (origin, text.unwrap_or_default())
                    })
                    .collect(),
                delta
                    .iter()
                    .map(|(k, v)| (wire::hex(k), v.as_deref().map(wire::to_base64)))
                    .collect(),
            )
        };
        let commit_id = super::unique_id();
        let parts = wire::commit_parts(&commit_id, snapshot, last_seq, taken, entries, PART_BYTES);
        let mut first_seq = None;
        for part in &parts {
            let body = serde_json::to_vec(part)?;
            // The fence: a commit lands only on top of the last one this owner read or wrote.
            let ack = link
                .js
                .send_publish(
                    wire::state_subject(partition),
                    Publish::build()
                        .payload(body.into())
                        .expected_last_subject_sequence(state_seq),
                )
                .await?
                .await
                .context("state commit")?;
            state_seq = ack.sequence;
            first_seq.get_or_insert(ack.sequence);
        }
        if snapshot {
            state.commits_since_snapshot = 0;
            let stream = link.js.get_stream(wire::STATE_STREAM).await?;
            if let Some(first) = first_seq {
                // Everything before the snapshot is in it.
                stream
                    .purge()
                    .filter(wire::state_subject(partition))
                    .sequence(first)
                    .await
                    .context("purging old state commits")?;
            }
        } else {
            state.commits_since_snapshot += 1;
        }
        state.pos = last_seq;
        // The acknowledgement only moves the consumer (the lag `cluster status` shows); the
        // committed position is what a next owner starts from.
        last.ack()
            .await
            .map_err(|err| anyhow::anyhow!("ack: {err}"))?;
        metrics.cluster.up();
    }
}

/// One match through the correlator, as `Engine::correlate` does it, with what the console's case
/// book needs of an opened incident.
fn observe(
    correlator: &mut Correlator,
    set: &RuleSet,
    rule: usize,
    hit: &wire::MatchMsg,
    unit: &str,
) -> Option<WireChange> {
    let clock: ClockId = correlator.clock(&hit.clock);
    let observation = Observation {
        rule,
        group: hit.group.clone(),
        distinct: hit.distinct.clone(),
        ts: hit.ts,
        evidence: hit.evidence.clone(),
        origin: Origin {
            host: &hit.host,
            system: &hit.system,
            level: hit.level,
            unit,
        },
        clock,
    };
    match correlator.observe(set, observation)? {
        Change::Opened(incident) => {
            let entity = Entity::of(&incident, |field| {
                hit.entity_fields
                    .iter()
                    .find(|(name, _)| name == field)
                    .map(|(_, value)| value.as_str())
            });
            Some(WireChange::Opened {
                incident,
                entity,
                follow_up: set.rule(rule).requires.is_some(),
            })
        }
        Change::Updated {
            id,
            count,
            last_seen,
            evidence,
            ..
        } => Some(WireChange::Updated {
            id,
            rule: set.rule(rule).id.clone(),
            count,
            last_seen,
            evidence,
        }),
    }
}

async fn publish_changes(link: &Link, subject: &str, changes: &[ChangeMsg]) -> anyhow::Result<()> {
    let messages = changes
        .iter()
        .map(|change| {
            Ok(super::Outgoing {
                subject: subject.to_string(),
                id: change.message_id(),
                body: serde_json::to_vec(change)?.into(),
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    super::publish_in_order(link, &super::pack_by_subject(&messages))
        .await
        .context("publishing incident changes")
}
