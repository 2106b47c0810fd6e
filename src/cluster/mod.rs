//! Several socwatch nodes over NATS JetStream (INTERFACE.md, "Running on several machines"): edges
//! match and publish, workers correlate their partitions, the console stores, serves and delivers.
//! This module is the connection and what every role shares (the streams and buckets, the rule set
//! from the rules bucket, heartbeats); `wire` is the pure part, `edge`, `worker` and `console` the
//! roles. Only this module and its children know NATS.

pub mod console;
pub mod edge;
pub mod status;
pub mod wire;
pub mod worker;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Context;
use async_nats::jetstream::{self, kv, stream};
use jiff::Timestamp;
use tokio::sync::watch;

use crate::config::{Cluster, Config};
use crate::metrics::Metrics;
use crate::rules::RuleSet;
use wire::{Heartbeat, RuleBundle};

/// How often a node beats and a worker renews its leases.
pub const BEAT: Duration = Duration::from_secs(2);
/// How long a node's heartbeat and a worker's lease live without renewal: a killed worker's
/// partitions are taken over within this (plus one beat).
pub const LEASE: Duration = Duration::from_secs(10);
/// How long the server remembers message ids to drop repeats. Repeats older than this are still
/// dropped by the worker (by source position) and the console (by partition mark).
const DUPLICATE_WINDOW: Duration = Duration::from_secs(600);
/// How long matches stay in their stream: a worker that falls further behind than this loses them.
pub const MATCH_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);
/// How long a request to the server may take before the node counts it failed and retries.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// A connected node: its name, the JetStream context, and the cluster settings.
#[derive(Clone)]
pub struct Link {
    pub node: String,
    pub js: jetstream::Context,
    pub client: async_nats::Client,
    pub settings: Cluster,
}

/// This node's name in the cluster: `cluster.node`, else the host name and the role.
pub fn node_name(config: &Config, settings: &Cluster) -> String {
    settings.node.clone().unwrap_or_else(|| {
        format!(
            "{}-{}",
            crate::daemon::hostname(config),
            settings.role.as_str()
        )
    })
}

/// Connects to the NATS server with the configured TLS and credentials (secrets read through the
/// one secret-file reader), retrying until it answers: a node started before its server waits.
pub async fn connect(
    config: &Config,
    settings: &Cluster,
    metrics: &Arc<Metrics>,
) -> anyhow::Result<Link> {
    let trust = crate::security::Trust::new(&config.daemon.data_dir);
    let node = node_name(config, settings);
    let mut options = async_nats::ConnectOptions::new()
        .name(format!("socwatch {node}"))
        .retry_on_initial_connect()
        .max_reconnects(None)
        .request_timeout(Some(REQUEST_TIMEOUT))
        .connection_timeout(REQUEST_TIMEOUT);
    if let Some(creds) = &settings.creds_file {
        let text = crate::security::read_text(creds, "cluster.creds_file", &trust)?;
        options = options
            .credentials(&text)
            .with_context(|| format!("cluster.creds_file {}", creds.display()))?;
    }
    if let Some(ca) = &settings.ca_file {
        options = options.add_root_certificates(ca.clone()).require_tls(true);
    }
    if let (Some(cert), Some(key)) = (&settings.client_cert, &settings.client_key) {
        // Read once through the secret-file rule (owner and mode), then handed to the client by path.
        crate::security::read_bytes(key, "cluster.client_key", &trust)?;
        options = options
            .add_client_certificate(cert.clone(), key.clone())
            .require_tls(true);
    }
    let events = metrics.clone();
    options = options.event_callback(move |event| {
        let events = events.clone();
        async move {
            match event {
                async_nats::Event::Connected => {
                    tracing::info!("connected to the NATS server");
                    events.cluster.up();
                }
                async_nats::Event::Disconnected => {
                    tracing::warn!("lost the NATS server; waiting for it");
                    events.cluster.down("disconnected", now_ms());
                }
                other => tracing::warn!(event = %other, "NATS"),
            }
        }
    });
    *metrics
        .cluster
        .role
        .write()
        .unwrap_or_else(|e| e.into_inner()) = settings.role.as_str().to_string();
    metrics.cluster.down("connecting", now_ms());
    let servers: Vec<async_nats::ServerAddr> = settings
        .nats
        .get_ref()
        .split(',')
        .map(|url| url.trim().parse())
        .collect::<Result<_, _>>()
        .with_context(|| format!("cluster.nats '{}'", settings.nats.get_ref()))?;
    let client = options
        .connect(servers)
        .await
        .context("cannot connect to the NATS server")?;
    let js = jetstream::new(client.clone());
    Ok(Link {
        node,
        js,
        client,
        settings: settings.clone(),
    })
}

pub fn now_ms() -> u64 {
    Timestamp::now().as_millisecond().max(0) as u64
}

impl Link {
    pub fn partitions(&self) -> u32 {
        *self.settings.partitions.get_ref()
    }

    /// Makes the streams and buckets the cluster uses, if they are missing (any node may be first),
    /// retrying while the server does not answer.
    pub async fn ensure_layout(
        &self,
        metrics: &Metrics,
        mut stop: watch::Receiver<bool>,
    ) -> anyhow::Result<()> {
        let mut wait = Duration::from_millis(200);
        loop {
            match self.try_layout().await {
                Ok(()) => {
                    metrics.cluster.up();
                    return Ok(());
                }
                Err(err) => {
                    tracing::warn!(error = %format!("{err:#}"), "cannot set up the cluster's streams yet; retrying");
                    metrics.cluster.down(&format!("{err:#}"), now_ms());
                }
            }
            if sleep_or_stop(wait, &mut stop).await {
                anyhow::bail!("stopped while waiting for the NATS server");
            }
            wait = (wait * 2).min(Duration::from_secs(5));
        }
    }

    async fn try_layout(&self) -> anyhow::Result<()> {
        // Matches and changes stay for `MATCH_RETENTION` whoever read them: a partition's next
        // owner (and the console after a restart) reads on from the position committed with its
        // state, and two owners overlapping for a moment (a lease lapsing while the server
        // restarts) must see the same messages to derive the same changes.
        let streams = [
            (
                wire::MATCH_STREAM,
                wire::MATCH_SUBJECTS,
                stream::RetentionPolicy::Limits,
                MATCH_RETENTION,
            ),
            (
                wire::CHANGE_STREAM,
                wire::CHANGE_SUBJECTS,
                stream::RetentionPolicy::Limits,
                MATCH_RETENTION,
            ),
            (
                wire::STATE_STREAM,
                wire::STATE_SUBJECTS,
                stream::RetentionPolicy::Limits,
                Duration::ZERO,
            ),
        ];
        for (name, subjects, retention, max_age) in streams {
            self.js
                .get_or_create_stream(stream::Config {
                    name: name.to_string(),
                    subjects: vec![subjects.to_string()],
                    retention,
                    max_age,
                    storage: stream::StorageType::File,
                    duplicate_window: DUPLICATE_WINDOW,
                    // Losing a message is worse than refusing one: a full stream makes the
                    // publisher wait (its files are its buffer), it never drops the oldest.
                    discard: stream::DiscardPolicy::New,
                    ..Default::default()
                })
                .await
                .with_context(|| format!("stream {name}"))?;
        }
        for (bucket, max_age, history) in [
            (wire::RULES_BUCKET, Duration::ZERO, 5),
            (wire::NODES_BUCKET, LEASE, 1),
            (wire::OWNERS_BUCKET, LEASE, 1),
        ] {
            if self.js.get_key_value(bucket).await.is_err() {
                self.js
                    .create_key_value(kv::Config {
                        bucket: bucket.to_string(),
                        max_age,
                        history,
                        storage: stream::StorageType::File,
                        ..Default::default()
                    })
                    .await
                    .with_context(|| format!("bucket {bucket}"))?;
            }
        }
        Ok(())
    }

    pub async fn bucket(&self, name: &str) -> anyhow::Result<kv::Store> {
        self.js
            .get_key_value(name)
            .await
            .with_context(|| format!("bucket {name}"))
    }

    /// Publishes the node's heartbeat every `BEAT` until `stop`, with what `fill` says of it.
    pub async fn beat(
        self,
        role: &'static str,
        metrics: Arc<Metrics>,
        mut stop: watch::Receiver<bool>,
    ) {
        loop {
            if let Ok(nodes) = self.bucket(wire::NODES_BUCKET).await {
                let beat = Heartbeat {
                    node: self.node.clone(),
                    role: role.to_string(),
                    at: Timestamp::now(),
                    partitions: metrics
                        .cluster
                        .partitions
                        .read()
                        .unwrap_or_else(|e| e.into_inner())
                        .clone(),
                    published: metrics.cluster.published.load(Ordering::Relaxed),
                    rules: metrics
                        .cluster
                        .rules
                        .read()
                        .unwrap_or_else(|e| e.into_inner())
                        .clone(),
                };
                if let Ok(body) = serde_json::to_vec(&beat) {
                    let _ = nodes.put(&self.node, body.into()).await;
                }
            }
            if sleep_or_stop(BEAT, &mut stop).await {
                if let Ok(nodes) = self.bucket(wire::NODES_BUCKET).await {
                    let _ = nodes.delete(&self.node).await;
                }
                return;
            }
        }
    }
}

/// Deletes a durable consumer; fine when it does not exist, an error when the server refuses.
async fn drop_consumer(stream: &jetstream::stream::Stream, name: &str) -> anyhow::Result<()> {
    match stream.delete_consumer(name).await {
        Ok(_) => Ok(()),
        Err(err) if err.to_string().contains("consumer not found") => Ok(()),
        Err(err) => Err(anyhow::Error::new(err).context(format!("deleting consumer {name}"))),
    }
}

/// A durable pull consumer `name` made afresh, delivering `filter` (empty: every subject) from the
/// stream sequence right after `position`, the one a reader saved with what it derived. The old
/// one is deleted first, and the new one made only if it is gone: a consumer left in place (a
/// delete refused while the server is starting) would go on from its own deliveries, and what it
/// had handed to the run that died would come back only after the acknowledgement wait, behind
/// the saved position.
pub async fn fresh_consumer(
    stream: &jetstream::stream::Stream,
    name: &str,
    filter: String,
    position: u64,
) -> anyhow::Result<jetstream::consumer::Consumer<jetstream::consumer::pull::Config>> {
    use jetstream::consumer;
    drop_consumer(stream, name).await?;
    stream
        .create_consumer_strict(consumer::pull::Config {
            durable_name: Some(name.to_string()),
            filter_subject: filter,
            deliver_policy: consumer::DeliverPolicy::ByStartSequence {
                start_sequence: position + 1,
            },
            // The acknowledgement only moves the consumer (the lag `cluster status` shows).
            ack_policy: consumer::AckPolicy::All,
            ack_wait: Duration::from_secs(60),
            max_ack_pending: -1,
            ..Default::default()
        })
        .await
        .with_context(|| format!("consumer {name}"))
}

/// Messages ready to publish: subject, message id (the server drops a repeat within its duplicate
/// window), body.
pub struct Outgoing {
    pub subject: String,
    pub id: String,
    pub body: bytes::Bytes,
}

/// `items` per subject (each queue non-empty), subjects in the order first seen, items in order.
fn by_subject(items: &[Outgoing]) -> Vec<Vec<&Outgoing>> {
    let mut queues: Vec<Vec<&Outgoing>> = Vec::new();
    for item in items {
        match queues
            .iter_mut()
            .find(|queue| queue[0].subject == item.subject)
        {
            Some(queue) => queue.push(item),
            None => queues.push(vec![item]),
        }
    }
    queues
}

/// Joins `items` (one JSON value each) into messages of up to `wire::MESSAGE_BYTES`, per subject
/// in the order given; a message's id names its first and last item's ids and how many it holds,
/// so the same items packed again (a retry) give the same id and the server drops the repeat.
pub fn pack_by_subject(items: &[Outgoing]) -> Vec<Outgoing> {
    let mut messages = Vec::new();
    for queue in by_subject(items) {
        let subject = &queue[0].subject;
        let bodies: Vec<&[u8]> = queue.iter().map(|item| item.body.as_ref()).collect();
        for packed in wire::pack(&bodies, wire::MESSAGE_BYTES) {
            let first = &queue[packed.range.start].id;
            let last = &queue[packed.range.end - 1].id;
            messages.push(Outgoing {
                subject: subject.clone(),
                id: format!("{first}~{last}#{}", packed.range.len()),
                body: packed.body.into(),
            });
        }
    }
    messages
}

/// Publishes `messages` and waits until the server acknowledged every one, each subject's in the
/// order given: at most one message per subject is in flight (subjects go side by side). Why: when
/// the server goes away, publishes on the wire are lost while the client sends what it had
/// buffered after the reconnect, so with several in flight a later message could land before an
/// earlier one of its subject, and the reader would apply them out of order.
pub async fn publish_in_order(link: &Link, messages: &[Outgoing]) -> anyhow::Result<()> {
    let queues = by_subject(messages);
    let rounds = queues.iter().map(Vec::len).max().unwrap_or(0);
    for round in 0..rounds {
        let mut acks = Vec::with_capacity(queues.len());
        for message in queues.iter().filter_map(|queue| queue.get(round)) {
            let publish = jetstream::message::PublishMessage::build()
                .payload(message.body.clone())
                .message_id(&message.id);
            acks.push(
                link.js
                    .send_publish(message.subject.clone(), publish)
                    .await?,
            );
        }
        for ack in acks {
            ack.await?;
        }
    }
    Ok(())
}

/// Each rule's index in `set` by its id: messages name rules by id, the correlator by index.
pub fn rule_indexes(set: &RuleSet) -> std::collections::HashMap<String, usize> {
    set.rules()
        .iter()
        .enumerate()
        .map(|(index, rule)| (rule.id.clone(), index))
        .collect()
}

/// A pull consumer made by `fresh_consumer`, read in order with no delivery missed unseen.
///
/// Why the check: a pull request in flight when the server goes away loses its messages on the
/// way, yet the server counts them delivered and, after its restart, delivers the next ones; the
/// acknowledgement (policy `All`) of a later message then covers the lost ones too, so they would
/// be skipped for good. The consumer's delivery sequence counts every delivery by one: a step
/// other than one means deliveries went missing, and the caller starts over from its own saved
/// position with a fresh consumer.
pub struct Reader {
    consumer: jetstream::consumer::Consumer<jetstream::consumer::pull::Config>,
    delivered: u64,
}

impl Reader {
    pub fn new(consumer: jetstream::consumer::Consumer<jetstream::consumer::pull::Config>) -> Self {
        Reader {
            consumer,
            delivered: 0,
        }
    }

    /// Up to `max` messages, waiting at most a second for the first; an error when a delivery
    /// before one of them never arrived.
    pub async fn fetch(&mut self, max: usize) -> anyhow::Result<Vec<jetstream::Message>> {
        use futures_util::StreamExt as _;
        let mut batch = self
            .consumer
            .batch()
            .max_messages(max)
            .expires(Duration::from_secs(1))
            .messages()
            .await?;
        let mut messages = Vec::new();
        while let Some(message) = batch.next().await {
            let message = message.map_err(|err| anyhow::anyhow!("fetch: {err}"))?;
            let delivery = message
                .info()
                .map_err(|err| anyhow::anyhow!("{err}"))?
                .consumer_sequence;
            anyhow::ensure!(
                wire::next_delivery_in_order(self.delivered, delivery),
                "deliveries {}..{} of the consumer never arrived (the server restarted with them on the way)",
                self.delivered + 1,
                delivery.saturating_sub(1)
            );
            self.delivered = delivery;
            messages.push(message);
        }
        Ok(messages)
    }
}

/// Sleeps `wait`, or less when `stop` turns true; returns whether it did.
pub async fn sleep_or_stop(wait: Duration, stop: &mut watch::Receiver<bool>) -> bool {
    if *stop.borrow() {
        return true;
    }
    tokio::select! {
        _ = tokio::time::sleep(wait) => {}
        _ = stop.wait_for(|s| *s) => {}
    }
    *stop.borrow()
}

/// A fresh ULID (time and randomness), for commit and run names.
pub fn unique_id() -> String {
    ulid::Ulid::from_parts(now_ms(), fastrand::u128(..)).to_string()
}

/// The console's side of the rules: publishes every rule set the console runs (at start and on
/// each reload) to the rules bucket, where edges and workers take it.
pub async fn publish_rules(
    link: Link,
    config: Config,
    metrics: Arc<Metrics>,
    mut rules: watch::Receiver<Arc<RuleSet>>,
    mut stop: watch::Receiver<bool>,
) {
    let lang = config.daemon.lang;
    loop {
        match crate::load::rule_sources(&config.daemon.rules, lang) {
            Ok(sources) => {
                let bundle = RuleBundle::of(&sources);
                let mut wait = Duration::from_millis(200);
                loop {
                    let put = async {
                        let bucket = link.bucket(wire::RULES_BUCKET).await?;
                        let body = serde_json::to_vec(&bundle)?;
                        bucket.put(wire::RULES_KEY, body.into()).await?;
                        anyhow::Ok(())
                    };
                    match put.await {
                        Ok(()) => {
                            *metrics
                                .cluster
                                .rules
                                .write()
                                .unwrap_or_else(|e| e.into_inner()) = bundle.fingerprint.clone();
                            tracing::info!(files = bundle.files.len(), fingerprint = %&bundle.fingerprint[..12], "rules published to the cluster");
                            break;
                        }
                        Err(err) => {
                            tracing::warn!(error = %format!("{err:#}"), "cannot publish the rules yet; retrying")
                        }
                    }
                    if sleep_or_stop(wait, &mut stop).await {
                        return;
                    }
                    wait = (wait * 2).min(Duration::from_secs(5));
                }
            }
            Err(problems) => tracing::error!(
                problems = problems.len(),
                "the rule files do not load; the cluster keeps its published rules"
            ),
        }
        tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            changed = rules.changed() => if changed.is_err() { return },
        }
    }
}

/// The edge's and worker's side: waits for the console's rule set, publishes it on `rules`, and
/// follows every later one (a rule set that does not compile here is refused and logged).
pub async fn follow_rules(
    link: Link,
    metrics: Arc<Metrics>,
    rules: watch::Sender<Arc<RuleSet>>,
    first: tokio::sync::oneshot::Sender<()>,
    mut stop: watch::Receiver<bool>,
) {
    let mut first = Some(first);
    let mut wait = Duration::from_millis(200);
    loop {
        let watched = async {
            let bucket = link.bucket(wire::RULES_BUCKET).await?;
            anyhow::Ok(bucket.watch_with_history(wire::RULES_KEY).await?)
        };
        let mut watch = match watched.await {
            Ok(watch) => watch,
            Err(err) => {
                tracing::warn!(error = %format!("{err:#}"), "cannot watch the cluster's rules yet; retrying");
                if sleep_or_stop(wait, &mut stop).await {
                    return;
                }
                wait = (wait * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        if first.is_some() {
            tracing::info!("waiting for the console to publish the rules");
        }
        loop {
            use futures_util::StreamExt as _;
            let entry = tokio::select! {
                _ = stop.wait_for(|s| *s) => return,
                entry = watch.next() => entry,
            };
            let Some(Ok(entry)) = entry else { break };
            if entry.operation != kv::Operation::Put {
                continue;
            }
            let bundle: RuleBundle = match serde_json::from_slice(&entry.value) {
                Ok(bundle) => bundle,
                Err(err) => {
                    tracing::error!(error = %err, "the cluster's rules are not readable; keeping the running ones");
                    continue;
                }
            };
            let running = metrics
                .cluster
                .rules
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .clone();
            // A watch started again (the server restarted) replays the entry: same rules, no reload.
            if running == bundle.fingerprint {
                continue;
            }
            match RuleSet::build(&bundle.sources()) {
                Ok(set) => {
                    tracing::info!(rules = set.len(), fingerprint = %&bundle.fingerprint[..12], "rules from the cluster");
                    *metrics
                        .cluster
                        .rules
                        .write()
                        .unwrap_or_else(|e| e.into_inner()) = bundle.fingerprint.clone();
                    let _ = rules.send(Arc::new(set));
                    if let Some(first) = first.take() {
                        let _ = first.send(());
                    }
                }
                Err(problems) => tracing::error!(
                    problems = problems.len(),
                    "the cluster's rules do not compile here; keeping the running ones"
                ),
            }
        }
    }
}
