//! `socwatch run`: the long-running daemon. Wiring only: sources (file tailers, syslog receivers)
//! feed one bounded channel; one pipeline thread decodes, matches and correlates through the pure
//! core and writes each batch's incident changes *and* the source checkpoints in one store
//! transaction, flushed before the next batch; the API serves the store. Shutdown starts at the
//! sources, the pipeline drains when its channel closes, the API stops last, the store flushes.

use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use jiff::Timestamp;
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{mpsc, watch};

use crate::api::{self, ApiState, RuleInfo, Token};
use crate::config::{Config, FileSource, Protocol, StartAt};
use crate::correlate::{Change, Correlator, Limits, Observation, Origin};
use crate::decode::{DecodeContext, Decoder, prepare_line};
use crate::metrics::Metrics;
use crate::model::{Checkpoint, Format, Logsource, SourceMeta};
use crate::rules::{MatchScratch, RuleMatch, RuleSet};
use crate::sources::syslog::{self, SyslogMessage, SyslogStats};
use crate::sources::tail::{TailedLine, Tailer, TailerConfig, watch as tail_watch};
use crate::store::Store;

mod reload;

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

/// Lines handled per store transaction at most; a batch is also cut when the channel runs dry.
const BATCH_LINES: usize = 2048;
/// Capacity of the channel between the sources and the pipeline.
const PIPELINE_QUEUE: usize = 8192;

/// The sockets the daemon serves on, bound before it starts (tests bind port 0).
pub struct Bound {
    pub api: TcpListener,
    pub syslog_udp: Vec<(usize, UdpSocket)>,
    pub syslog_tcp: Vec<(usize, TcpListener)>,
}

impl Bound {
    pub async fn bind(config: &Config) -> anyhow::Result<Bound> {
        let api_addr = config.api.listen.get_ref();
        let api = TcpListener::bind(api_addr)
            .await
            .map_err(|err| bind_error(format!("cannot listen for the API on {api_addr}"), err))?;
        let mut syslog_udp = Vec::new();
        let mut syslog_tcp = Vec::new();
        for (index, source) in config.source.syslog.iter().enumerate() {
            let addr = source.listen.get_ref();
            match source.protocol {
                Protocol::Udp => syslog_udp.push((
                    index,
                    UdpSocket::bind(addr).await.map_err(|err| {
                        bind_error(format!("cannot listen for syslog on udp {addr}"), err)
                    })?,
                )),
                Protocol::Tcp => syslog_tcp.push((
                    index,
                    TcpListener::bind(addr).await.map_err(|err| {
                        bind_error(format!("cannot listen for syslog on tcp {addr}"), err)
                    })?,
                )),
            }
        }
        Ok(Bound {
            api,
            syslog_udp,
            syslog_tcp,
        })
    }
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

/// The file sources to tail: the configured ones, or, when the config names no source at all,
/// the usual system logs that exist on this machine.
pub fn file_sources(config: &Config) -> Vec<FileSource> {
    if !config.source.file.is_empty() || !config.source.syslog.is_empty() {
        return config.source.file.clone();
    }
    let existing: Vec<String> = DEFAULT_LOGS
        .iter()
        .filter(|path| Path::new(path).exists())
        .map(|path| path.to_string())
        .collect();
    if existing.is_empty() {
        return Vec::new();
    }
    vec![FileSource {
        paths: existing,
        format: Format::Auto,
        system: String::new(),
        level: toml::Spanned::new(0..0, 0),
        start_at: StartAt::End,
        logsource: None,
    }]
}

/// The machine's name, for incidents whose lines name no host.
pub fn hostname(config: &Config) -> String {
    config.daemon.host.clone().unwrap_or_else(|| {
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "localhost".into())
    })
}

enum Input {
    File { source: usize, line: TailedLine },
    Syslog(SyslogMessage),
}

/// What the pipeline thread needs.
struct Pipeline {
    config: Config,
    rules: RuleSet,
    store: Arc<Store>,
    metrics: Arc<Metrics>,
    syslog_stats: Arc<SyslogStats>,
    files: Vec<FileSource>,
    /// Each file source's configured logsource, parsed once.
    file_logsources: Vec<Logsource>,
    host: String,
    /// A rule set waiting to replace the running one (SIGHUP).
    reload: Arc<Mutex<Option<RuleSet>>>,
}

/// Runs the daemon until `shutdown` completes. `ready` is called once every source runs.
pub async fn run(
    config: Config,
    rules: RuleSet,
    store: Arc<Store>,
    bound: Bound,
    shutdown: impl Future<Output = ()>,
    reload: Arc<Mutex<Option<RuleSet>>>,
    ready: impl FnOnce(),
) -> anyhow::Result<()> {
    let reload_slot = reload.clone();
    let metrics = Arc::new(Metrics::default());
    let token = match &config.api.token_file {
        Some(path) => Some(Token::read(path).map_err(|err| anyhow::anyhow!(err))?),
        None => None,
    };
    let rule_infos: Vec<RuleInfo> = rules.rules().iter().map(RuleInfo::from).collect();
    // Read once: the senders name it in every alert, the pipeline in incidents whose lines name none.
    let host = hostname(&config);

    // Outputs: the outbox policy first, so that no incident change goes unreported; then one
    // sender per destination, woken once queued alerts are durable.
    let policy = crate::alerting::OutboxPolicy::from_config(&config);
    let destinations: Vec<String> = policy.destinations.iter().map(|d| d.name.clone()).collect();
    store.set_outbox_policy(policy);
    let signals = crate::outputs::Signals::default();
    let (stop_outputs, outputs_stopped) = watch::channel(false);
    let mut outputs = tokio::task::JoinSet::new();
    if let Some(settings) = &config.forward.national {
        let sender = crate::outputs::national::NationalSender::from_config(
            settings,
            crate::outputs::national::SenderInfo {
                unit: config.daemon.unit.clone(),
                host: host.clone(),
                agent_version: env!("CARGO_PKG_VERSION").to_string(),
            },
        )
        .context("forward.national")?;
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
            .map(email::read_secret)
            .transpose()
            .map_err(|err| anyhow::anyhow!("email.password_file: {err}"))?;
        let mailer = email::Mailer::new(settings, password)
            .map_err(|err| anyhow::anyhow!("email: {err}"))?;
        let sender = email::deliver::EmailSender {
            mailer,
            context: email::RenderContext {
                lang: config.daemon.lang,
                unit: config.daemon.unit.clone(),
                host: host.clone(),
            },
            limit: *settings.max_per_hour.get_ref(),
            window: settings.flood_window(),
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
    let api_state = ApiState::new(store.clone(), rule_infos, token, metrics.clone())
        .with_outputs(destinations, signals.clone());

    let (stop_sources, sources_stopped) = watch::channel(false);
    let (tx, rx) = mpsc::channel::<Input>(PIPELINE_QUEUE);
    let mut sources = tokio::task::JoinSet::new();

    // File tailers, resumed from their checkpoints.
    let files = file_sources(&config);
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
    drop(msg_tx);
    let forward = tx.clone();
    sources.spawn(async move {
        while let Some(message) = msg_rx.recv().await {
            if forward.send(Input::Syslog(message)).await.is_err() {
                break;
            }
        }
    });
    drop(tx);

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
    let pipeline = Pipeline {
        file_logsources,
        config: config.clone(),
        rules,
        store: store.clone(),
        metrics: metrics.clone(),
        syslog_stats,
        files,
        host,
        reload,
    };
    let worker = std::thread::Builder::new()
        .name("socwatch-pipeline".into())
        .spawn(move || pipeline.run(rx))
        .context("cannot start the pipeline thread")?;

    let (stop_api, api_stopped) = watch::channel(false);
    let api_task = tokio::spawn(api::serve(bound.api, api_state, async move {
        let mut stopped = api_stopped;
        let _ = stopped.wait_for(|s| *s).await;
    }));

    let retention = retention_task(config.clone(), store.clone(), sources_stopped.clone());
    let retention_task = tokio::spawn(retention);

    // A change in a rule folder reloads the rules like SIGHUP does.
    let _rule_watcher = reload::watch_rule_files(&config.daemon.rules, reload_slot.clone());

    ready();
    shutdown.await;
    tracing::info!("stopping: sources first");
    let _ = stop_sources.send(true);
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
    let _ = stop_api.send(true);
    let _ = api_task.await;
    let _ = retention_task.await;
    store.flush()?;
    pipeline_result
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

impl Pipeline {
    fn run(mut self, mut rx: mpsc::Receiver<Input>) -> anyhow::Result<()> {
        let mut correlator = self.seeded_correlator()?;
        let mut decoders: HashMap<String, (Decoder, Timestamp)> = HashMap::new();
        let mut metas: HashMap<String, SourceMeta> = HashMap::new();
        let mut scratch = MatchScratch::default();
        let mut found: Vec<RuleMatch> = Vec::new();
        let unit = self.config.daemon.unit.clone();
        let zone = self.config.log_zone();
        let max = self.config.daemon.max_line_bytes;
        while let Some(first) = rx.blocking_recv() {
            if let Some(new_rules) = self.reload.lock().ok().and_then(|mut slot| slot.take()) {
                let old_rules = std::mem::replace(&mut self.rules, new_rules);
                let old = std::mem::replace(&mut correlator, self.seeded_correlator()?);
                let kept = correlator.carry_over(&self.rules, old, &old_rules);
                tracing::info!(
                    rules = self.rules.len(),
                    kept_state = kept,
                    "rules reloaded"
                );
            }
            for id in self.store.take_closed() {
                correlator.forget(&id);
            }
            let mut batch = vec![first];
            while batch.len() < BATCH_LINES {
                match rx.try_recv() {
                    Ok(input) => batch.push(input),
                    Err(_) => break,
                }
            }
            let now = Timestamp::now();
            let mut changes: Vec<Change> = Vec::new();
            let mut checkpoints: HashMap<String, Checkpoint> = HashMap::new();
            // Lines per source, counted in the metrics once the batch is durable.
            let mut read: HashMap<String, u64> = HashMap::new();
            for input in batch {
                let (label, format, meta_key, bytes, system, level, logsource) = match &input {
                    Input::File { source, line } => {
                        let (key, checkpoint) = line.checkpoint();
                        checkpoints.insert(key.store_key(), checkpoint);
                        let config = &self.files[*source];
                        (
                            line.source.display().to_string(),
                            config.format,
                            line.source.display().to_string(),
                            &line.bytes,
                            config.system.clone(),
                            *config.level.get_ref(),
                            Some(&self.file_logsources[*source]),
                        )
                    }
                    Input::Syslog(message) => {
                        let config = &self.config.source.syslog[message.source];
                        (
                            config.listen.get_ref().clone(),
                            Format::Syslog,
                            format!("syslog://{}", message.peer.ip()),
                            &message.bytes,
                            config.system.clone(),
                            *config.level.get_ref(),
                            None,
                        )
                    }
                };
                *read.entry(label).or_insert(0) += 1;
                let prepared = prepare_line(bytes, max);
                let (decoder, made) = decoders.entry(meta_key.clone()).or_insert_with(|| {
                    (
                        Decoder::new(format, DecodeContext::new(zone.clone(), now)),
                        now,
                    )
                });
                // The year of RFC 3164 stamps is inferred against "now": refresh it now and then.
                if now.duration_since(*made).as_secs() > 3600 {
                    *decoder = Decoder::new(format, DecodeContext::new(zone.clone(), now));
                    *made = now;
                }
                let mut event = decoder.decode(&prepared.text);
                if event.parse_error {
                    Metrics::inc(&self.metrics.parse_errors, 1);
                }
                if let Some(given) = logsource {
                    event.logsource.override_with(given);
                }
                let meta = metas.entry(meta_key.clone()).or_insert_with(|| SourceMeta {
                    source: Arc::from(meta_key.as_str()),
                    system: Arc::from(system.as_str()),
                    level,
                });
                let ts = event.ts.unwrap_or(now);
                self.rules
                    .matches_into(&event, meta, &mut scratch, &mut found);
                Metrics::inc(&self.metrics.events_matched, found.len() as u64);
                for rule_match in &found {
                    let origin = Origin {
                        host: event.get("host").unwrap_or(&self.host),
                        system: &meta.system,
                        level: meta.level,
                        unit: &unit,
                    };
                    let observation =
                        Observation::of(&self.rules, rule_match, &event, meta, ts, origin);
                    if let Some(change) = correlator.observe(&self.rules, observation) {
                        match &change {
                            Change::Opened(_) => Metrics::inc(&self.metrics.incidents_opened, 1),
                            Change::Updated { .. } => {
                                Metrics::inc(&self.metrics.incidents_updated, 1)
                            }
                        }
                        changes.push(change);
                    }
                }
            }
            let checkpoints: Vec<(String, Checkpoint)> = checkpoints.into_iter().collect();
            let pending = correlator.take_pending(&self.rules);
            // One transaction for the incidents, the threshold windows still counting, and the
            // positions they were derived up to, flushed before the next batch: a crash loses
            // none of them and repeats none.
            self.store
                .apply_with_pending(&changes, &checkpoints, &pending)?;
            self.store.flush()?;
            for (label, lines) in read.drain() {
                self.metrics.lines_read.add(&label, lines);
            }
            self.metrics.syslog_dropped.store(
                self.syslog_stats.dropped.load(Ordering::Relaxed),
                Ordering::Relaxed,
            );
        }
        Ok(())
    }

    /// A correlator that knows the incidents still open in the store, so a restart folds repeats
    /// into them instead of opening new ones.
    fn seeded_correlator(&self) -> anyhow::Result<Correlator> {
        let mut correlator = Correlator::new(&self.rules, Limits::default());
        let longest = self
            .rules
            .rules()
            .iter()
            .map(|r| r.suppress)
            .max()
            .unwrap_or(Duration::from_secs(3600));
        let since = Timestamp::now()
            .checked_sub(
                jiff::SignedDuration::try_from(longest).unwrap_or(jiff::SignedDuration::MAX),
            )
            .unwrap_or(Timestamp::MIN);
        for incident in self.store.open_incidents_since(since)? {
            correlator.restore(&self.rules, &incident);
        }
        for saved in self.store.saved_values(crate::correlate::PENDING_PREFIX)? {
            correlator.restore_pending(&self.rules, &saved);
        }
        Ok(correlator)
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
