//! `socwatch run`: the long-running daemon. Wiring only: sources (file tailers, syslog receivers)
//! feed one bounded channel; the pipeline thread (`pipeline`) drives the engine and writes each
//! batch's incident changes, correlation state and source checkpoints in one store transaction,
//! flushed before the next batch; the outputs drain the outbox; the API serves the store. Rules are
//! published on one channel (`reload`) that the pipeline and the API read. Shutdown starts at the
//! sources, the pipeline drains when its channel closes, the outputs and the API stop last, the
//! store flushes. Every task is joined.

mod pipeline;
pub mod reload;
pub mod systemd;

use std::collections::HashMap;
use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use jiff::Timestamp;
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{mpsc, watch};

use crate::api::{self, ApiState};
use crate::config::{Config, FileSource, Protocol, StartAt};
use crate::metrics::Metrics;
use crate::model::{Checkpoint, Format, Logsource};
use crate::rules::RuleSet;
use crate::sources::syslog::{self, SyslogMessage, SyslogStats};
use crate::sources::tail::{TailedLine, Tailer, TailerConfig, watch as tail_watch};
use crate::store::Store;
use pipeline::{Input, Pipeline};
pub use systemd::{notify_systemd, watchdog_interval};

/// The logs `socwatch run` watches when the config names no source (INTERFACE.md).
pub const DEFAULT_LOGS: [&str; 5] = [
    "/var/log/auth.log",
    "/var/log/secure",
    "/var/log/syslog",
    "/var/log/nginx/access.log",
    "/var/log/apache2/access.log",
];

/// How long SIGTERM waits for the sources and the pipeline to drain before giving up.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(20);

/// How often the daemon signs a checkpoint of the evidence log when it grew (and once at start and
/// at shutdown; deliveries sign one when the log grew since the last).
const CHECKPOINT_EVERY: Duration = Duration::from_secs(60);

/// Capacity of the channel between the sources and the pipeline.
const PIPELINE_QUEUE: usize = 8192;

/// The sockets the daemon serves on, bound before it starts (tests bind port 0).
pub struct Bound {
    pub api: TcpListener,
    pub syslog_udp: Vec<(usize, UdpSocket)>,
    pub syslog_tcp: Vec<(usize, TcpListener)>,
    pub syslog_tls: Vec<(usize, TcpListener, syslog::TlsAcceptor)>,
}

impl Bound {
    pub async fn bind(config: &Config) -> anyhow::Result<Bound> {
        let api_addr = config.api.listen.get_ref();
        let api = TcpListener::bind(api_addr)
            .await
            .map_err(|err| bind_error(format!("cannot listen for the API on {api_addr}"), err))?;
        let mut syslog_udp = Vec::new();
        let mut syslog_tcp = Vec::new();
        let mut syslog_tls = Vec::new();
        for (index, source) in config.source.syslog.iter().enumerate() {
            let addr = source.listen.get_ref();
            match source.protocol {
                Protocol::Udp => {
                    let socket = UdpSocket::bind(addr).await.map_err(|err| {
                        bind_error(format!("cannot listen for syslog on udp {addr}"), err)
                    })?;
                    match syslog::widen_receive_buffer(&socket) {
                        Ok(got) if got < syslog::UDP_RECEIVE_BUFFER => tracing::info!(
                            listen = %addr,
                            bytes = got,
                            asked = syslog::UDP_RECEIVE_BUFFER,
                            "udp receive buffer capped by net.core.rmem_max; raise it on a busy collector"
                        ),
                        Ok(got) => {
                            tracing::debug!(listen = %addr, bytes = got, "udp receive buffer")
                        }
                        Err(err) => {
                            tracing::warn!(listen = %addr, error = %err, "cannot size the udp receive buffer")
                        }
                    }
                    syslog_udp.push((index, socket));
                }
                Protocol::Tcp => syslog_tcp.push((
                    index,
                    TcpListener::bind(addr).await.map_err(|err| {
                        bind_error(format!("cannot listen for syslog on tcp {addr}"), err)
                    })?,
                )),
                Protocol::Tls => {
                    let acceptor = tls_acceptor(config, source)?;
                    let listener = TcpListener::bind(addr).await.map_err(|err| {
                        bind_error(format!("cannot listen for syslog on tls {addr}"), err)
                    })?;
                    syslog_tls.push((index, listener, acceptor));
                }
            }
        }
        Ok(Bound {
            api,
            syslog_udp,
            syslog_tcp,
            syslog_tls,
        })
    }
}

/// The TLS side of a `protocol = "tls"` listener, read from its files at start (the key through the
/// secret-file rule), so a bad certificate stops the start instead of every sender's handshake.
fn tls_acceptor(
    config: &Config,
    source: &crate::config::SyslogSource,
) -> anyhow::Result<syslog::TlsAcceptor> {
    let addr = source.listen.get_ref();
    let (Some(cert), Some(key)) = (&source.cert_file, &source.key_file) else {
        anyhow::bail!("syslog tls {addr}: cert_file and key_file are required");
    };
    let trust = crate::security::Trust::new(&config.daemon.data_dir);
    let cert_pem = std::fs::read(cert)
        .with_context(|| format!("cannot read source.syslog cert_file {}", cert.display()))?;
    let key_pem = crate::security::read_bytes(key, "source.syslog key_file", &trust)?;
    let ca_pem = source
        .client_ca_file
        .as_ref()
        .map(|ca| {
            std::fs::read(ca).with_context(|| {
                format!("cannot read source.syslog client_ca_file {}", ca.display())
            })
        })
        .transpose()?;
    syslog::tls_acceptor(&cert_pem, &key_pem, ca_pem.as_deref())
        .map_err(|err| anyhow::anyhow!("syslog tls {addr}: {err}"))
}

/// A bind failure; a refused port below 1024 says what the process lacks and where the shipped
/// unit grants it, because "permission denied" alone sends people looking at file modes.
fn bind_error(what: String, err: std::io::Error) -> anyhow::Error {
    if err.kind() == std::io::ErrorKind::PermissionDenied {
        anyhow::anyhow!(
            "{what}: {err}; ports below 1024 need CAP_NET_BIND_SERVICE (the shipped unit grants it with AmbientCapabilities=CAP_NET_BIND_SERVICE)"
        )
    } else {
        anyhow::Error::new(err).context(what)
    }
}

/// Whether the config names no source at all, so the built-in defaults apply. A cluster's workers
/// and console read no logs (their edges do), so they take no defaults either.
fn uses_defaults(config: &Config) -> bool {
    reads_sources(config)
        && config.source.file.is_empty()
        && config.source.syslog.is_empty()
        && config.source.journald.is_empty()
}

/// Whether this node reads logs: a lone node and a cluster's edges do.
pub fn reads_sources(config: &Config) -> bool {
    config
        .cluster
        .as_ref()
        .is_none_or(|cluster| cluster.role == crate::config::Role::Edge)
}

/// The file sources to tail: the configured ones, or, when the config names no source at all,
/// the usual system logs. All of them are watched, present or not, so a log that appears later
/// (nginx installed next week) is picked up.
pub fn file_sources(config: &Config) -> Vec<FileSource> {
    if !uses_defaults(config) {
        return config.source.file.clone();
    }
    vec![FileSource {
        paths: DEFAULT_LOGS.iter().map(|path| path.to_string()).collect(),
        format: Format::Auto,
        system: String::new(),
        level: toml::Spanned::new(0..0, 0),
        start_at: StartAt::End,
        logsource: None,
        timezone: None,
    }]
}

/// The sources `status` lists even before they deliver a line, named as their lines are counted.
fn configured_sources(
    config: &Config,
    files: &[FileSource],
    journals: &[crate::config::JournaldSource],
) -> Vec<api::ConfiguredSource> {
    let files = files
        .iter()
        .flat_map(|source| source.paths.iter().cloned())
        .map(|name| api::ConfiguredSource {
            kind: "file".into(),
            name,
        });
    let syslog = config
        .source
        .syslog
        .iter()
        .map(|source| api::ConfiguredSource {
            kind: "syslog".into(),
            name: source.listen.get_ref().clone(),
        });
    let journals = journals.iter().map(|source| api::ConfiguredSource {
        kind: "journald".into(),
        name: source.name(),
    });
    files.chain(syslog).chain(journals).collect()
}

/// The journal sources: the configured ones, or, with the built-in defaults, this machine's whole
/// journal when it has one (a stock Debian 12 logs to journald and writes none of the default files).
pub fn journald_sources(config: &Config) -> Vec<crate::config::JournaldSource> {
    if !uses_defaults(config) {
        return config.source.journald.clone();
    }
    if crate::sources::journald::journal_available() {
        vec![crate::config::JournaldSource::default()]
    } else {
        Vec::new()
    }
}

/// Says so when the built-in defaults find nothing to read: no default file exists and there is no
/// journal. The files are still watched, in case one appears.
fn warn_if_nothing_to_watch(config: &Config, journals: &[crate::config::JournaldSource]) {
    if uses_defaults(config)
        && journals.is_empty()
        && !DEFAULT_LOGS.iter().any(|path| Path::new(path).exists())
    {
        tracing::warn!(
            files = %DEFAULT_LOGS.join(", "),
            "no log to watch yet: none of the default files exists and this machine has no systemd journal; configure [[source.file]], [[source.syslog]] or [[source.journald]] (the default files are watched and read once they appear)"
        );
    }
}

/// The machine's name, for incidents whose lines name no host.
pub fn hostname(config: &Config) -> String {
    config.daemon.host.clone().unwrap_or_else(|| {
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "localhost".into())
    })
}

/// Runs the daemon until `shutdown` completes. `rules` is the rules channel: the daemon reads the
/// running set from it, and a reload (the rule-folder watcher here, SIGHUP in `main`) sends a new
/// one. `ready` is called once every source runs.
pub async fn run(
    config: Config,
    rules: watch::Sender<Arc<RuleSet>>,
    store: Arc<Store>,
    bound: Bound,
    shutdown: impl Future<Output = ()>,
    ready: impl FnOnce(),
) -> anyhow::Result<()> {
    let metrics = Arc::new(Metrics::default());
    // A cluster node connects in the background: it starts (and says it waits) without its server.
    let link = match &config.cluster {
        Some(settings) => Some(crate::cluster::connect(&config, settings, &metrics).await?),
        None => None,
    };
    let role = config.cluster.as_ref().map(|cluster| cluster.role);
    // Every secret file goes through the one reader in `security`, under one permission rule.
    let trust = crate::security::Trust::new(&config.daemon.data_dir);
    let auth = api::Auth::load(&config)?;
    let tls = api::tls_server_config(&config)?;
    // Read once: the senders name it in every alert, the pipeline in incidents whose lines name none.
    let host = hostname(&config);
    // What to read, decided once: the built-in defaults look at the file system.
    let files = file_sources(&config);
    let journals = journald_sources(&config);
    // The evidence log's notary: its key is made on first start; a checkpoint now covers what the
    // store already holds.
    let notary = Arc::new(
        crate::evidence::notary::Notary::load(&config.daemon.data_dir, &host, &trust)
            .context("evidence signing key")?,
    );
    notary.checkpoint(&store, Timestamp::now())?;

    // Outputs: the store was opened with the outbox policy, so no incident change goes unreported;
    // one sender per destination, woken once queued alerts are durable.
    let destinations: Vec<String> = store.destinations();
    let signals = crate::outputs::Signals::default();
    let (stop_outputs, outputs_stopped) = watch::channel(false);
    let mut outputs = tokio::task::JoinSet::new();
    if let Some(settings) = &config.forward.national {
        let mut sender = crate::outputs::national::NationalSender::from_config(
            settings,
            crate::outputs::national::SenderInfo {
                unit: config.daemon.unit.clone(),
                host: host.clone(),
                agent_version: env!("CARGO_PKG_VERSION").to_string(),
            },
            &trust,
        )
        .context("forward.national")?;
        sender.notary = Some(notary.clone());
        outputs.spawn(crate::outputs::national::run(
            sender,
            store.clone(),
            signals.add(),
            metrics.clone(),
            outputs_stopped.clone(),
        ));
    }
    if let Some(settings) = &config.email {
        use crate::outputs::email;
        let password = settings
            .password_file
            .as_deref()
            .map(|path| crate::security::read_text(path, "email.password_file", &trust))
            .transpose()?;
        let mailer = email::Mailer::new(settings, password)
            .map_err(|err| anyhow::anyhow!("email: {err}"))?;
        let sender = email::deliver::EmailSender {
            mailer,
            context: email::RenderContext {
                lang: config.daemon.lang,
                unit: config.daemon.unit.clone(),
                host: host.clone(),
                checkpoint: None,
            },
            notary: Some(notary.clone()),
            limit: *settings.max_per_hour.get_ref(),
            window: settings.flood_window(),
            case_hold: settings.case_hold(),
        };
        outputs.spawn(email::deliver::run(
            sender,
            store.clone(),
            signals.add(),
            metrics.clone(),
            outputs_stopped.clone(),
        ));
    }
    {
        let signals = signals.clone();
        store.on_alerts(move || signals.alerts_queued());
    }
    let api_state = ApiState::new(store.clone(), Vec::new(), auth, metrics.clone())
        .with_rules(rules.subscribe())
        .with_outputs(destinations, signals.clone())
        .with_sources(configured_sources(&config, &files, &journals))
        .with_console(crate::console::Settings {
            lang: config.daemon.lang,
            tls: tls.is_some(),
        })
        .with_notary(notary.clone());

    let (stop_sources, sources_stopped) = watch::channel(false);
    let (tx, rx) = mpsc::channel::<Input>(PIPELINE_QUEUE);
    let mut sources = tokio::task::JoinSet::new();

    // File tailers, resumed from their checkpoints.
    let saved: HashMap<_, Checkpoint> = store
        .checkpoints("file:")?
        .into_iter()
        .filter_map(|(key, checkpoint)| Some((key.parse().ok()?, checkpoint)))
        .collect();
    for (index, source) in files.iter().enumerate() {
        let tailer = Tailer::new(
            TailerConfig::from_source(source, config.daemon.max_line_bytes),
            saved.clone(),
        )
        .with_context(|| format!("bad paths in source {}", index + 1))?;
        let (line_tx, mut line_rx) = mpsc::channel::<TailedLine>(1024);
        let mut stop = sources_stopped.clone();
        sources.spawn(async move {
            let stopped = async move {
                let _ = stop.wait_for(|s| *s).await;
            };
            if let Err(err) = tail_watch::run(tailer, line_tx, stopped).await {
                tracing::error!(error = %err, source = index, "file source stopped");
            }
        });
        let forward = tx.clone();
        sources.spawn(async move {
            while let Some(line) = line_rx.recv().await {
                if forward
                    .send(Input::File {
                        source: index,
                        line,
                    })
                    .await
                    .is_err()
                {
                    break;
                }
            }
        });
    }

    // Syslog receivers: each forwards into the pipeline channel.
    let syslog_stats = Arc::new(SyslogStats::default());
    let limits = syslog::Limits {
        max_message_bytes: config.daemon.max_line_bytes,
        ..syslog::Limits::default()
    };
    let (msg_tx, mut msg_rx) = mpsc::channel::<SyslogMessage>(PIPELINE_QUEUE);
    for (index, socket) in bound.syslog_udp {
        sources.spawn(syslog::run_udp(
            socket,
            index,
            msg_tx.clone(),
            syslog_stats.clone(),
            limits,
            sources_stopped.clone(),
        ));
    }
    for (index, listener) in bound.syslog_tcp {
        sources.spawn(syslog::run_tcp(
            listener,
            index,
            msg_tx.clone(),
            syslog_stats.clone(),
            limits,
            sources_stopped.clone(),
        ));
    }
    for (index, listener, acceptor) in bound.syslog_tls {
        sources.spawn(syslog::run_tls(
            listener,
            acceptor,
            index,
            msg_tx.clone(),
            syslog_stats.clone(),
            limits,
            sources_stopped.clone(),
        ));
    }
    drop(msg_tx);
    let forward = tx.clone();
    sources.spawn(async move {
        while let Some(message) = msg_rx.recv().await {
            if forward.send(Input::Syslog(message)).await.is_err() {
                break;
            }
        }
    });
    // Journal sources, resumed after their saved cursors.
    warn_if_nothing_to_watch(&config, &journals);
    let journald_stats = Arc::new(crate::sources::journald::JournaldStats::default());
    for (index, source) in journals.iter().enumerate() {
        let cursor = store.text_checkpoint(&source.checkpoint_key())?;
        let (line_tx, mut line_rx) = mpsc::channel(1024);
        let mut stop = sources_stopped.clone();
        sources.spawn(crate::sources::journald::run(
            source.clone(),
            cursor,
            line_tx,
            journald_stats.clone(),
            crate::sources::journald::Limits::default(),
            async move {
                let _ = stop.wait_for(|s| *s).await;
            },
        ));
        let forward = tx.clone();
        sources.spawn(async move {
            while let Some(line) = line_rx.recv().await {
                if forward
                    .send(Input::Journal {
                        source: index,
                        line,
                    })
                    .await
                    .is_err()
                {
                    break;
                }
            }
        });
    }

    // Held until shutdown, so a daemon with no source (only the API) keeps its pipeline waiting
    // rather than seeing the channel close at once.
    let held_open = tx;

    let file_logsources = files
        .iter()
        .map(|source| {
            let pairs = source
                .logsource
                .iter()
                .flat_map(|given| given.get_ref().iter());
            Logsource::from_pairs(pairs.map(|(k, v)| (k.as_str(), v.as_str())))
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| anyhow::anyhow!("source.file: {err}"))?;
    let progress = Arc::new(systemd::Progress::default());
    // An edge matches only, once the console's rules have come.
    let (first_rules_tx, first_rules) = tokio::sync::oneshot::channel::<()>();
    let edge = match (&link, role) {
        (Some(link), Some(crate::config::Role::Edge)) => {
            Some(crate::cluster::edge::Publisher::new(
                link.clone(),
                tokio::runtime::Handle::current(),
                metrics.clone(),
                sources_stopped.clone(),
            ))
        }
        _ => None,
    };
    let wait_for_rules = edge.is_some();
    let pipeline = Pipeline {
        edge,
        file_logsources,
        config: config.clone(),
        rules: rules.subscribe(),
        store: store.clone(),
        metrics: metrics.clone(),
        syslog_stats,
        files,
        journals,
        host,
        progress: progress.clone(),
    };
    // The pipeline's end (a store error, a panic) must stop the daemon, not leave it running blind.
    let (pipeline_done_tx, pipeline_done) = tokio::sync::oneshot::channel::<()>();
    let handle = tokio::runtime::Handle::current();
    let worker = std::thread::Builder::new()
        .name("socwatch-pipeline".into())
        .spawn(move || {
            // Stopped before the first rules came: nothing was read, nothing to save.
            if wait_for_rules && handle.block_on(first_rules).is_err() {
                let _ = pipeline_done_tx.send(());
                return Ok(());
            }
            let result = pipeline.run(rx);
            let _ = pipeline_done_tx.send(());
            result
        })
        .context("cannot start the pipeline thread")?;

    // The other tasks, joined at the end like the sources and outputs.
    let (stop_rest, rest_stopped) = watch::channel(false);
    let mut rest = tokio::task::JoinSet::new();
    let mut api_stopped = rest_stopped.clone();
    rest.spawn(async move {
        let stopped = async move {
            let _ = api_stopped.wait_for(|s| *s).await;
        };
        let served = match tls {
            Some(tls) => api::serve_tls(bound.api, api_state, tls, stopped).await,
            None => api::serve(bound.api, api_state, stopped).await,
        };
        if let Err(err) = served {
            tracing::error!(error = %err, "the API stopped");
        }
    });
    rest.spawn(checkpoint_task(
        notary.clone(),
        store.clone(),
        rest_stopped.clone(),
    ));
    rest.spawn(retention_task(
        config.clone(),
        store.clone(),
        sources_stopped.clone(),
    ));
    // Every rule set published after start (SIGHUP, the folder watcher) is an admin leaf.
    rest.spawn(audit_rules_task(
        rules.subscribe(),
        store.clone(),
        rest_stopped.clone(),
    ));
    // A change in a rule folder reloads the rules like SIGHUP does (an edge's and a worker's rules
    // come from the console instead).
    if !reload::takes_cluster_rules(&config) {
        rest.spawn(reload::watch_rule_files(
            config.daemon.rules.clone(),
            rules.clone(),
            rest_stopped.clone(),
        ));
    }
    if let (Some(link), Some(role)) = (link, role) {
        spawn_cluster_role(
            ClusterRole {
                link,
                role,
                config: config.clone(),
                rules: rules.clone(),
                store: store.clone(),
                metrics: metrics.clone(),
                first_rules: first_rules_tx,
            },
            &mut rest,
            rest_stopped.clone(),
            sources_stopped.clone(),
        );
    }
    if let Some(every) = watchdog_interval() {
        rest.spawn(systemd::feed_watchdog(
            every,
            progress.clone(),
            rest_stopped.clone(),
        ));
    }

    ready();
    let pipeline_failed = tokio::select! {
        _ = shutdown => false,
        _ = pipeline_done => true,
    };
    if pipeline_failed {
        tracing::error!("the pipeline stopped: stopping the daemon");
    } else {
        tracing::info!("stopping: sources first");
    }
    let _ = stop_sources.send(true);
    drop(held_open);
    let drained = tokio::time::timeout(SHUTDOWN_GRACE, async move {
        while sources.join_next().await.is_some() {}
        tokio::task::spawn_blocking(move || worker.join()).await
    })
    .await;
    let pipeline_result = match drained {
        Ok(joined) => joined
            .context("pipeline join")?
            .map_err(|_| anyhow::anyhow!("the pipeline thread panicked"))?,
        Err(_) => anyhow::bail!(
            "the pipeline did not drain within {}s; stopping anyway (what was not stored is read again at the next start)",
            SHUTDOWN_GRACE.as_secs()
        ),
    };
    // Outputs stop last: an attempt in flight is abandoned, its alerts stay in the outbox.
    let _ = stop_outputs.send(true);
    while outputs.join_next().await.is_some() {}
    let _ = stop_rest.send(true);
    while rest.join_next().await.is_some() {}
    store.flush()?;
    // The last checkpoint covers everything this run logged.
    notary.checkpoint(&store, Timestamp::now())?;
    pipeline_result
}

struct ClusterRole {
    link: crate::cluster::Link,
    role: crate::config::Role,
    config: Config,
    rules: watch::Sender<Arc<RuleSet>>,
    store: Arc<Store>,
    metrics: Arc<Metrics>,
    first_rules: tokio::sync::oneshot::Sender<()>,
}

/// A cluster node's own tasks, once the streams and buckets exist: the heartbeat; for an edge or a
/// worker the rules from the console (and the worker's partitions); for the console its rules to
/// the cluster and the intake of incident changes. The intake and the partitions stop with the
/// sources, before the store's last flush.
fn spawn_cluster_role(
    node: ClusterRole,
    rest: &mut tokio::task::JoinSet<()>,
    rest_stopped: watch::Receiver<bool>,
    sources_stopped: watch::Receiver<bool>,
) {
    use crate::config::Role;
    rest.spawn(async move {
        let ClusterRole {
            link,
            role,
            config,
            rules,
            store,
            metrics,
            first_rules,
        } = node;
        if link
            .ensure_layout(&metrics, sources_stopped.clone())
            .await
            .is_err()
        {
            return;
        }
        let beat = link
            .clone()
            .beat(role.as_str(), metrics.clone(), rest_stopped.clone());
        match role {
            Role::Edge => {
                let follow = crate::cluster::follow_rules(
                    link.clone(),
                    metrics.clone(),
                    rules,
                    first_rules,
                    sources_stopped,
                );
                tokio::join!(beat, follow);
            }
            Role::Worker => {
                let (worker_first, worker_ready) = tokio::sync::oneshot::channel();
                let follow = crate::cluster::follow_rules(
                    link.clone(),
                    metrics.clone(),
                    rules.clone(),
                    worker_first,
                    sources_stopped.clone(),
                );
                let work = async {
                    if worker_ready.await.is_ok() {
                        crate::cluster::worker::run(
                            link.clone(),
                            config.clone(),
                            rules.subscribe(),
                            metrics.clone(),
                            sources_stopped.clone(),
                        )
                        .await;
                    }
                };
                drop(first_rules);
                tokio::join!(beat, follow, work);
            }
            Role::Console => {
                drop(first_rules);
                let publish = crate::cluster::publish_rules(
                    link.clone(),
                    config.clone(),
                    metrics.clone(),
                    rules.subscribe(),
                    sources_stopped.clone(),
                );
                let intake = crate::cluster::console::run(
                    link.clone(),
                    config,
                    store,
                    rules.subscribe(),
                    metrics.clone(),
                    sources_stopped,
                );
                tokio::join!(beat, publish, intake);
            }
        }
    });
}

/// Signs a checkpoint of the evidence log every `CHECKPOINT_EVERY` when it grew.
async fn checkpoint_task(
    notary: Arc<crate::evidence::notary::Notary>,
    store: Arc<Store>,
    mut stopped: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(CHECKPOINT_EVERY);
    tick.tick().await;
    loop {
        tokio::select! {
            _ = async { stopped.wait_for(|s| *s).await.is_ok() } => return,
            _ = tick.tick() => {
                let (notary, store) = (notary.clone(), store.clone());
                let signed = tokio::task::spawn_blocking(move || {
                    notary.checkpoint(&store, Timestamp::now())
                })
                .await;
                if let Ok(Err(err)) = signed {
                    tracing::warn!(error = %err, "cannot sign an evidence checkpoint");
                }
            }
        }
    }
}

/// Logs each rule set published while running (`rules_reloaded`, by `socwatch`: the reload came
/// from SIGHUP or the rule-folder watcher) with its count and a fingerprint of the rules as parsed.
async fn audit_rules_task(
    mut rules: watch::Receiver<Arc<RuleSet>>,
    store: Arc<Store>,
    mut stopped: watch::Receiver<bool>,
) {
    rules.borrow_and_update();
    loop {
        tokio::select! {
            _ = async { stopped.wait_for(|s| *s).await.is_ok() } => return,
            changed = rules.changed() => {
                if changed.is_err() {
                    return;
                }
                let set = rules.borrow_and_update().clone();
                let store = store.clone();
                let logged = tokio::task::spawn_blocking(move || {
                    let detail = format!("{} rules, sha256 {}", set.len(), rules_fingerprint(&set));
                    store.log_admin("rules_reloaded", "socwatch", &detail, Timestamp::now())
                })
                .await;
                if let Ok(Err(err)) = logged {
                    tracing::warn!(error = %err, "cannot log the rule reload as evidence");
                }
            }
        }
    }
}

/// Hex SHA-256 over the loaded rules as parsed (their `Debug` form, in load order).
pub fn rules_fingerprint(set: &RuleSet) -> String {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    for rule in set.rules() {
        hasher.update(format!("{rule:?}\n").as_bytes());
    }
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Purges old incidents hourly, off the pipeline, until the sources stop.
async fn retention_task(config: Config, store: Arc<Store>, mut stopped: watch::Receiver<bool>) {
    let Ok(retention) = crate::duration::parse_duration(config.daemon.retention.get_ref()) else {
        return;
    };
    let floors = config.retention_floors();
    let mut tick = tokio::time::interval(Duration::from_secs(3600));
    loop {
        tokio::select! {
            _ = async { stopped.wait_for(|s| *s).await.is_ok() } => return,
            _ = tick.tick() => {
                let (store, floors) = (store.clone(), floors.clone());
                let purged = tokio::task::spawn_blocking(move || {
                    store.purge(Timestamp::now(), retention, &floors)
                })
                .await;
                match purged {
                    Ok(Ok(n)) if n > 0 => tracing::info!(purged = n, "retention: old incidents purged"),
                    Ok(Err(err)) => tracing::warn!(error = %err, "retention purge failed"),
                    _ => {}
                }
            }
        }
    }
}
