//! The edge: the daemon's pipeline with matching only. Each batch's matches are published to their
//! partitions' subjects, and the batch's source positions are saved only once the server has
//! acknowledged every one of them. While the server is away the batch is retried with the same
//! message ids and the sources wait behind it: the files are the buffer.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::wire::{MatchMsg, PartitionMsg, match_subject, partition_of};
use super::{Link, Outgoing, now_ms, pack_by_subject, publish_in_order, sleep_or_stop};
use crate::engine::Matched;
use crate::metrics::Metrics;
use crate::rules::RuleSet;

/// What the edge's pipeline publishes through.
pub struct Publisher {
    link: Link,
    handle: tokio::runtime::Handle,
    metrics: Arc<Metrics>,
    stop: watch::Receiver<bool>,
    /// Names this process's run in the ids of matches without a source position.
    run: String,
    counter: u64,
    pending: Vec<Outgoing>,
    /// Per origin, the position up to which this run's hits were acknowledged, and the highest
    /// position of those pending: a hit carries the first so a worker knows everything of its
    /// origin up to there is in the stream before it (see `wire::Taken`).
    acknowledged: HashMap<String, u64>,
    pending_upto: HashMap<String, u64>,
}

impl Publisher {
    pub fn new(
        link: Link,
        handle: tokio::runtime::Handle,
        metrics: Arc<Metrics>,
        stop: watch::Receiver<bool>,
    ) -> Publisher {
        Publisher {
            link,
            handle,
            metrics,
            stop,
            run: super::unique_id(),
            counter: 0,
            pending: Vec::new(),
            acknowledged: HashMap::new(),
            pending_upto: HashMap::new(),
        }
    }

    /// The node's name, for the origins of its lines.
    pub fn node(&self) -> &str {
        &self.link.node
    }

    /// Queues the hits of one line for the batch's publish.
    pub fn push(
        &mut self,
        rules: &RuleSet,
        origin: &str,
        pos: Option<u64>,
        clock: &str,
        matched: Matched,
    ) {
        let partitions = self.link.partitions();
        self.counter += 1;
        let committed = self.acknowledged.get(origin).copied();
        // Looked up before inserting: an origin's string is copied once per batch, not per line.
        match (pos, self.pending_upto.get_mut(origin)) {
            (Some(pos), Some(upto)) => *upto = (*upto).max(pos),
            (Some(pos), None) => {
                self.pending_upto.insert(origin.to_string(), pos);
            }
            (None, _) => {}
        }
        for (index, hit) in matched.hits.into_iter().enumerate() {
            let partition = partition_of(rules, hit.rule, &hit.group, partitions);
            let message = MatchMsg {
                origin: origin.to_string(),
                pos,
                hit: index as u32,
                committed,
                clock: clock.to_string(),
                ts: matched.ts,
                rule: rules.rule(hit.rule).id.clone(),
                group: hit.group,
                distinct: hit.distinct,
                evidence: hit.evidence,
                host: hit.host,
                system: hit.system.to_string(),
                level: hit.level,
                entity_fields: hit
                    .entity_fields
                    .into_iter()
                    .map(|(name, value)| (name.to_string(), value))
                    .collect(),
            };
            let id = message.message_id(&self.run, self.counter);
            let body = serde_json::to_vec(&PartitionMsg::Match(Box::new(message)))
                .expect("a match serializes");
            self.pending.push(Outgoing {
                subject: match_subject(partition),
                id,
                body: body.into(),
            });
        }
    }

    /// Publishes everything queued and waits until the server has acknowledged all of it,
    /// retrying (same ids: the server drops what it already has) while it is away. False when the
    /// daemon is stopping first: then nothing of the batch may be saved as done.
    pub fn publish(&mut self) -> bool {
        if self.pending.is_empty() {
            return true;
        }
        // Packed once: a retry sends the same messages with the same ids.
        let messages = pack_by_subject(&self.pending);
        let mut wait = Duration::from_millis(100);
        loop {
            let outcome = self
                .handle
                .block_on(publish_in_order(&self.link, &messages));
            match outcome {
                Ok(()) => {
                    self.metrics.cluster.up();
                    Metrics::inc(&self.metrics.cluster.published, self.pending.len() as u64);
                    self.pending.clear();
                    for (origin, upto) in self.pending_upto.drain() {
                        let acknowledged = self.acknowledged.entry(origin).or_insert(upto);
                        *acknowledged = (*acknowledged).max(upto);
                    }
                    return true;
                }
                Err(err) => {
                    let error = format!("{err:#}");
                    if self
                        .metrics
                        .cluster
                        .connected
                        .load(std::sync::atomic::Ordering::Relaxed)
                        == 1
                    {
                        tracing::warn!(error = %error, "cannot publish matches; holding the sources until the NATS server acknowledges");
                    }
                    self.metrics.cluster.down(&error, now_ms());
                }
            }
            let mut stop = self.stop.clone();
            if self.handle.block_on(sleep_or_stop(wait, &mut stop)) {
                return false;
            }
            wait = (wait * 2).min(Duration::from_secs(5));
        }
    }
}
