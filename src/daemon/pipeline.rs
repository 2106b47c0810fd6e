//! The pipeline, in two threads: the matching thread takes lines from the sources in chunks and
//! decodes and matches them; the pipeline thread drives the engine's correlation (the same engine
//! `scan` drives) in line order and writes each batch's incident changes, the correlation state
//! they left and the source positions they were derived up to in one store transaction, flushed
//! before the next batch. A restart takes the state back as saved: event time only, no wall clock.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use tokio::sync::{mpsc, watch};

use super::systemd::Progress;
use crate::cases::Case;
use crate::config::{Config, FileSource, JournaldSource};
use crate::correlate::{Change, ClockId, Limits};
use crate::engine::{Engine, Matched, Matcher, Sink, Source, SourceSpec, TouchedCases};
use crate::metrics::Metrics;
use crate::model::{Checkpoint, Format, Logsource, Status};
use crate::rules::RuleSet;
use crate::sources::journald::JournalLine;
use crate::sources::syslog::{SyslogMessage, SyslogStats};
use crate::sources::tail::{FileKey, TailedLine};
use crate::store::{Position, Store};

/// Lines handled per store transaction at most; a batch is also cut when the channel runs dry.
/// A batch writes each incident, case and correlation group it touched once, however many of its
/// lines touched them, so under load larger batches write less per line (a brute force touches
/// the same few groups with thousands of lines); idle, a line still makes its own batch at once.
pub const BATCH_LINES: usize = 16384;

/// Lines the matching thread hands over at a time: small enough that the matched lines in flight
/// between the threads stay a few megabytes (a line's hits own copies of what they need), while the
/// pipeline thread still writes batches of up to `BATCH_LINES`.
const CHUNK_LINES: usize = 1024;

/// How long a batch whose input ran dry waits for more lines while the lines are coming steadily
/// (the previous batch was at least a chunk): each batch rewrites every incident, case and group
/// it touched, so under load fewer, larger batches write less per line. An idle daemon never
/// waits: a lone line is written at once.
const LINGER: Duration = Duration::from_millis(50);

/// How often a source's reference for the year of RFC 3164 stamps follows the clock.
const REFERENCE_REFRESH: Duration = Duration::from_secs(3600);

pub enum Input {
    File { source: usize, line: TailedLine },
    Syslog(SyslogMessage),
    Journal { source: usize, line: JournalLine },
}

/// Where a line came from, as far as its decoding state goes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum SourceKey {
    /// A configured file source and the file's name.
    File(usize, Arc<Path>),
    /// A syslog listener and the peer's address: each sender has its own clock and year inference,
    /// while system and level come from the listener it used.
    Syslog(usize, std::net::IpAddr),
    /// A journal source.
    Journal(usize),
}

/// What the pipeline thread needs.
pub struct Pipeline {
    pub config: Config,
    pub rules: watch::Receiver<Arc<RuleSet>>,
    pub store: Arc<Store>,
    pub metrics: Arc<Metrics>,
    pub syslog_stats: Arc<SyslogStats>,
    pub files: Vec<FileSource>,
    pub journals: Vec<JournaldSource>,
    /// Each file source's configured logsource, parsed once.
    pub file_logsources: Vec<Logsource>,
    pub host: String,
    pub progress: Arc<Progress>,
    /// A cluster edge publishes what matched instead of correlating it here.
    pub edge: Option<crate::cluster::edge::Publisher>,
}

/// One store transaction in the making, gathered from the chunks the matching thread hands over:
/// the changes and which cases they touched (the cases themselves are taken from the engine when
/// the batch is written), the positions read up to, and counts for the metrics.
struct Batch {
    changes: Vec<Change>,
    cases: TouchedCases,
    /// By store key, so a position read again in a later chunk replaces the earlier one.
    positions: HashMap<String, Position>,
    read: HashMap<String, u64>,
    lines: usize,
    parse_errors: u64,
    matched: u64,
    opened_incidents: u64,
    updated: u64,
    correlating: Duration,
    /// When its first chunk came, and until when it waits for more (see `LINGER`).
    opened: Instant,
    linger_until: Option<Instant>,
}

impl Batch {
    fn new(opened: Instant) -> Batch {
        Batch {
            changes: Vec::new(),
            cases: TouchedCases::default(),
            positions: HashMap::new(),
            read: HashMap::new(),
            lines: 0,
            parse_errors: 0,
            matched: 0,
            opened_incidents: 0,
            updated: 0,
            correlating: Duration::ZERO,
            opened,
            linger_until: None,
        }
    }
}

impl Sink for Batch {
    fn change(&mut self, change: Change) {
        match change {
            Change::Opened(_) => self.opened_incidents += 1,
            Change::Updated { .. } => self.updated += 1,
        }
        self.changes.push(change);
    }

    fn case(&mut self, case: &Case) {
        self.cases.record(case);
    }
}

impl Pipeline {
    /// Runs the pipeline on this thread and its matching on another: the matching thread decodes
    /// and matches the next chunk while this one correlates the last and makes batches durable. Correlation
    /// stays on one thread, in line order, so the incidents are those of one thread doing both.
    pub fn run(self, rx: mpsc::Receiver<Input>) -> anyhow::Result<()> {
        let Pipeline {
            config,
            rules,
            store,
            metrics,
            syslog_stats,
            files,
            journals,
            file_logsources,
            host,
            progress,
            edge,
        } = self;
        let reader = Reader {
            rules: rules.clone(),
            config: config.clone(),
            files,
            journals,
            file_logsources,
            host,
            edge: edge.is_some(),
        };
        // One chunk matched ahead of the one being correlated, no more: the lines waiting beyond it
        // stay in the sources' channel, whose bound is what back-pressures a TCP sender.
        let (matched_tx, matched_rx) = std::sync::mpsc::sync_channel(1);
        let matching = std::thread::Builder::new()
            .name("socwatch-match".into())
            .spawn(move || reader.run(rx, matched_tx))?;
        let storer = Storer {
            config,
            rules,
            store,
            metrics,
            syslog_stats,
            progress,
            edge,
            under_load: false,
        };
        storer.run(matched_rx)?;
        // The matching thread ends once its input closed and it handed over what it had; a panic
        // there must not pass for a clean stop.
        matching
            .join()
            .map_err(|_| anyhow::anyhow!("the matching thread panicked"))
    }
}

/// A line that matched, as the matching thread hands it on.
struct MatchedLine {
    /// The matching thread's number for its source's clock (see `Matches::new_clocks`).
    clock: usize,
    matched: Matched,
    /// Only on a cluster edge: the line's origin and position, which make its message id.
    origin: String,
    pos: Option<u64>,
}

/// One chunk as the matching thread hands it on: what its lines matched, in line order, with the
/// rules they were matched with; the positions its lines were read up to; counts for the metrics.
struct Matches {
    rules: Arc<RuleSet>,
    /// The clocks numbered since the previous chunk, by name, in the order of their numbers.
    new_clocks: Vec<String>,
    lines: Vec<MatchedLine>,
    positions: Vec<(String, Position)>,
    /// Lines per source.
    read: HashMap<String, u64>,
    inputs: usize,
    parse_errors: u64,
    matched: u64,
    /// The sources' channel ran dry: no line waits behind this chunk, so the batch can be written.
    dry: bool,
}

/// The matching thread: takes the sources' lines in chunks, decodes and matches them.
struct Reader {
    rules: watch::Receiver<Arc<RuleSet>>,
    config: Config,
    files: Vec<FileSource>,
    journals: Vec<JournaldSource>,
    file_logsources: Vec<Logsource>,
    host: String,
    /// On a cluster edge: name each matched line's origin and position.
    edge: bool,
}

/// A line's source: known from the line before it, or to look up.
enum Lookup {
    Known(usize),
    Look(SourceKey),
}
use Lookup::{Known, Look};

/// A source as the matching thread keeps it (its place in the thread's list is its clock's number):
/// its decoding state, when its year reference was set.
struct Live {
    source: Source,
    reference: Timestamp,
    /// Its name in the lines-read metrics, and how many of the chunk's lines it read.
    label: String,
    read: u64,
}

impl Reader {
    /// A source's name in the lines-read metrics: a file's path, a journal source's name, a
    /// syslog listener's address.
    fn label(&self, key: &SourceKey) -> String {
        match key {
            SourceKey::File(_, path) => path.display().to_string(),
            SourceKey::Journal(index) => self.journals[*index].name(),
            SourceKey::Syslog(index, _) => {
                self.config.source.syslog[*index].listen.get_ref().clone()
            }
        }
    }

    fn spec(&self, key: &SourceKey) -> SourceSpec {
        match key {
            SourceKey::File(index, path) => {
                let config = &self.files[*index];
                let name = path.display().to_string();
                SourceSpec {
                    clock: name.clone(),
                    name,
                    format: config.format,
                    logsource: self.file_logsources[*index].clone(),
                    zone: self.config.zone_or_default(config.timezone.as_ref()),
                    system: config.system.clone(),
                    level: *config.level.get_ref(),
                    host: self.host.clone(),
                }
            }
            SourceKey::Journal(index) => {
                let config = &self.journals[*index];
                let name = config.name();
                SourceSpec {
                    clock: name.clone(),
                    name,
                    format: Format::Syslog,
                    logsource: Logsource::default(),
                    // The lines carry their offset; the zone only matters for a stamp without one.
                    zone: jiff::tz::TimeZone::UTC,
                    system: config.system.clone(),
                    level: *config.level.get_ref(),
                    host: self.host.clone(),
                }
            }
            SourceKey::Syslog(index, peer) => {
                let config = &self.config.source.syslog[*index];
                SourceSpec {
                    name: format!("syslog://{peer}"),
                    clock: format!("syslog://{}/{peer}", config.listen.get_ref()),
                    format: Format::Syslog,
                    logsource: Logsource::default(),
                    zone: self.config.zone_or_default(config.timezone.as_ref()),
                    system: config.system.clone(),
                    level: *config.level.get_ref(),
                    host: self.host.clone(),
                }
            }
        }
    }

    fn run(mut self, mut rx: mpsc::Receiver<Input>, out: std::sync::mpsc::SyncSender<Matches>) {
        let max_line_bytes = self.config.daemon.max_line_bytes;
        let matcher_for =
            |rules: Arc<RuleSet>| Matcher::new(rules, max_line_bytes).without_captured();
        let mut matcher = matcher_for(self.rules.borrow_and_update().clone());
        // Sources by number (their clock's), and the number of each key; ahash, not SipHash: a
        // key is looked up for every line that does not come from the previous line's file.
        let mut sources: Vec<Live> = Vec::new();
        let mut numbers: crate::correlate::Map<SourceKey, usize> = Default::default();
        // The previous line's file source, its name (the tailer shares one per file) and number.
        let mut last_file: Option<(usize, Arc<Path>, usize)> = None;
        while let Some(first) = rx.blocking_recv() {
            if self.rules.has_changed().unwrap_or(false) {
                matcher = matcher_for(self.rules.borrow_and_update().clone());
            }
            let mut inputs = vec![first];
            while inputs.len() < CHUNK_LINES {
                match rx.try_recv() {
                    Ok(input) => inputs.push(input),
                    Err(_) => break,
                }
            }
            let dry = rx.is_empty();
            let now = Timestamp::now();
            let mut chunk = Matches {
                rules: matcher.rules().clone(),
                new_clocks: Vec::new(),
                lines: Vec::new(),
                positions: Vec::new(),
                read: HashMap::new(),
                inputs: inputs.len(),
                parse_errors: 0,
                matched: 0,
                dry,
            };
            // Files by identity, turned into their store keys once per chunk rather than per line;
            // journal sources by number, each with its latest cursor.
            let mut file_positions: crate::correlate::Map<FileKey, Checkpoint> = Default::default();
            let mut cursors: HashMap<usize, &String> = HashMap::new();
            for input in &inputs {
                // `origin` and `pos` name the line for a cluster edge's message ids (only an edge
                // needs them: formatting them for every line cost more than some decoding).
                let (key, bytes, len, origin, pos) = match input {
                    Input::File { source, line } => {
                        let (file, checkpoint) = line.checkpoint();
                        file_positions.insert(file, checkpoint);
                        // The file's first line too, not its inode alone: after a copytruncate
                        // (or an inode reused) the new lines sit at offsets the old ones had, and
                        // a worker drops what it counted of an origin up to its offset.
                        let origin = if self.edge {
                            format!("{}:{:x}", file.store_key(), checkpoint.fingerprint)
                        } else {
                            String::new()
                        };
                        let key = match &last_file {
                            Some((index, name, number))
                                if index == source && Arc::ptr_eq(name, &line.source) =>
                            {
                                Known(*number)
                            }
                            _ => Look(SourceKey::File(*source, line.source.clone())),
                        };
                        (key, &line.bytes, line.len, origin, Some(checkpoint.offset))
                    }
                    Input::Journal { source, line } => {
                        cursors.insert(*source, &line.cursor);
                        let len = line.bytes.len();
                        let origin = if self.edge {
                            self.journals[*source].checkpoint_key()
                        } else {
                            String::new()
                        };
                        let key = Look(SourceKey::Journal(*source));
                        (key, &line.bytes, len, origin, None)
                    }
                    Input::Syslog(message) => {
                        let listen = self.config.source.syslog[message.source].listen.get_ref();
                        let key = SourceKey::Syslog(message.source, message.peer.ip());
                        let origin = if self.edge {
                            format!("syslog://{listen}/{}", message.peer.ip())
                        } else {
                            String::new()
                        };
                        (
                            Look(key),
                            &message.bytes,
                            message.original_len,
                            origin,
                            None,
                        )
                    }
                };
                let number = match key {
                    Known(number) => number,
                    Look(key) => {
                        let number = match numbers.get(&key) {
                            Some(number) => *number,
                            None => {
                                let spec = self.spec(&key);
                                chunk.new_clocks.push(spec.clock.clone());
                                sources.push(Live {
                                    label: self.label(&key),
                                    source: Source::unclocked(spec, now),
                                    reference: now,
                                    read: 0,
                                });
                                numbers.insert(key.clone(), sources.len() - 1);
                                sources.len() - 1
                            }
                        };
                        last_file = match key {
                            SourceKey::File(index, name) => Some((index, name, number)),
                            _ => None,
                        };
                        number
                    }
                };
                let live = &mut sources[number];
                live.read += 1;
                if now.duration_since(live.reference).unsigned_abs() > REFERENCE_REFRESH {
                    live.source.set_reference(now);
                    live.reference = now;
                }
                let before = live.source.stats;
                if let Some(matched) = matcher.match_line(&mut live.source, bytes, len, now) {
                    chunk.lines.push(MatchedLine {
                        clock: number,
                        matched,
                        origin,
                        pos,
                    });
                }
                chunk.parse_errors += live.source.stats.parse_errors - before.parse_errors;
                chunk.matched += live.source.stats.matches - before.matches;
            }
            for live in sources.iter_mut().filter(|live| live.read > 0) {
                *chunk.read.entry(live.label.clone()).or_insert(0) += live.read;
                live.read = 0;
            }
            chunk.positions = file_positions
                .into_iter()
                .map(|(file, checkpoint)| (file.store_key(), Position::File(checkpoint)))
                .chain(cursors.into_iter().map(|(index, cursor)| {
                    let key = self.journals[index].checkpoint_key();
                    (key, Position::Cursor(cursor.clone()))
                }))
                .collect();
            // The storing thread stopped (a store error, an edge stopping): nothing more to do.
            if out.send(chunk).is_err() {
                return;
            }
        }
    }
}

/// The storing thread: correlates each matched batch and writes it durably.
struct Storer {
    config: Config,
    rules: watch::Receiver<Arc<RuleSet>>,
    store: Arc<Store>,
    metrics: Arc<Metrics>,
    syslog_stats: Arc<SyslogStats>,
    progress: Arc<Progress>,
    edge: Option<crate::cluster::edge::Publisher>,
    /// The last batch written was at least a chunk: lines are coming steadily, so a batch whose
    /// input ran dry waits up to `LINGER` for more rather than paying a whole write for a few lines.
    under_load: bool,
}

impl Storer {
    /// The engine with the state saved by the last durable batch, reconciled with the store: an
    /// incident an operator closed (or retention purged) after that batch is not folded into again.
    fn engine(&self) -> anyhow::Result<Engine> {
        let rules = self.rules.borrow().clone();
        let mut engine = Engine::new(
            rules,
            Limits::default(),
            &self.config.daemon.unit,
            self.config.daemon.max_line_bytes,
        )
        .with_case_window(self.config.cases.window())
        .keeping_touched_cases();
        let report = engine.restore_state(self.store.engine_state()?);
        let mut closed = 0;
        for id in engine.open_incidents() {
            let still_open = self
                .store
                .get(&id)?
                .is_some_and(|i| matches!(i.status, Status::Open | Status::Acknowledged));
            if !still_open {
                engine.forget(&id);
                closed += 1;
            }
        }
        for id in engine.open_cases() {
            // A case the book has but the store does not was saved by a batch that never reached
            // the store's cases tree: impossible, since both are one transaction; forget it anyway.
            if self.store.case(&id)?.is_none_or(|case| case.is_closed()) {
                engine.forget(&id);
                closed += 1;
            }
        }
        tracing::info!(
            cases = report.cases,
            groups = report.groups,
            dropped = report.dropped,
            unreadable = report.unreadable,
            closed_since = closed,
            "correlation state restored"
        );
        Ok(engine)
    }

    fn run(mut self, matches: std::sync::mpsc::Receiver<Matches>) -> anyhow::Result<()> {
        let mut engine = self.engine()?;
        // The engine's number of each clock the matching thread numbered, by its number.
        let mut clocks: Vec<ClockId> = Vec::new();
        let mut batch: Option<Batch> = None;
        loop {
            let lingering = batch
                .as_ref()
                .and_then(|open| open.linger_until)
                .map(|until| until.saturating_duration_since(Instant::now()));
            let chunk = match lingering {
                None => match matches.recv() {
                    Ok(chunk) => chunk,
                    Err(_) => break,
                },
                Some(left) => match matches.recv_timeout(left) {
                    Ok(chunk) => chunk,
                    Err(RecvTimeoutError::Timeout) => {
                        let done = batch.take().expect("a batch lingers");
                        if !self.write(&mut engine, done)? {
                            return Ok(());
                        }
                        continue;
                    }
                    Err(RecvTimeoutError::Disconnected) => break,
                },
            };
            if !Arc::ptr_eq(&chunk.rules, engine.rules()) {
                // The batch so far was correlated with the old rules: written before they go.
                if let Some(done) = batch.take()
                    && !self.write(&mut engine, done)?
                {
                    return Ok(());
                }
                let kept = engine.reload(chunk.rules.clone());
                tracing::info!(
                    rules = chunk.rules.len(),
                    kept_state = kept,
                    "rules reloaded"
                );
            }
            let open = batch.get_or_insert_with(|| {
                self.progress.batch_started();
                for id in self.store.take_closed() {
                    engine.forget(&id);
                }
                Batch::new(Instant::now())
            });
            for name in &chunk.new_clocks {
                clocks.push(engine.clock(name));
            }
            let started = Instant::now();
            for line in chunk.lines {
                let clock = clocks[line.clock];
                match &mut self.edge {
                    None => engine.correlate(clock, line.matched, open),
                    Some(edge) => {
                        let node = edge.node().to_string();
                        let clock = format!("{node}/{}", engine.clock_name(clock));
                        let origin = format!("{node}|{}", line.origin);
                        edge.push(engine.rules(), &origin, line.pos, &clock, line.matched);
                    }
                }
            }
            open.correlating += started.elapsed();
            open.lines += chunk.inputs;
            // Later chunks' positions are further on: they replace the earlier ones.
            open.positions.extend(chunk.positions);
            for (label, lines) in chunk.read {
                *open.read.entry(label).or_insert(0) += lines;
            }
            open.parse_errors += chunk.parse_errors;
            open.matched += chunk.matched;
            let full = open.lines >= BATCH_LINES;
            if chunk.dry && !full && self.under_load && open.linger_until.is_none() {
                open.linger_until = Some(open.opened + LINGER);
            }
            let lingered = open
                .linger_until
                .is_some_and(|until| Instant::now() >= until);
            if full || (chunk.dry && (!self.under_load || lingered)) {
                let done = batch.take().expect("a batch is open");
                if !self.write(&mut engine, done)? {
                    return Ok(());
                }
            }
        }
        if let Some(done) = batch.take() {
            self.write(&mut engine, done)?;
        }
        Ok(())
    }

    /// Makes a batch durable: its incident changes, the cases they touched, the correlation state
    /// they left and the positions they were derived up to, in one transaction, flushed. False
    /// when a cluster edge is stopping before the server acknowledged the batch's matches.
    fn write(&mut self, engine: &mut Engine, mut batch: Batch) -> anyhow::Result<bool> {
        // An edge saves its positions only after the server acknowledged the batch's matches;
        // stopping before that leaves them to be read (and published, same ids) again.
        if let Some(edge) = &mut self.edge
            && !edge.publish()
        {
            tracing::info!(
                "stopping before the NATS server acknowledged the last batch; it is read again at the next start"
            );
            return Ok(false);
        }
        self.under_load = batch.lines >= CHUNK_LINES;
        let started = Instant::now();
        let cases = engine.touched_cases(std::mem::take(&mut batch.cases));
        let state = engine.take_state_changes();
        let positions: Vec<(String, Position)> = batch.positions.into_iter().collect();
        // One transaction for the incidents, the correlation state and the positions they were
        // derived up to, flushed before the next batch: a crash loses none and repeats none.
        self.store
            .apply_batch(&batch.changes, &cases, &positions, &state)?;
        let applied = Instant::now();
        self.store.flush()?;
        tracing::debug!(
            lines = batch.lines,
            changes = batch.changes.len(),
            cases = cases.len(),
            state_keys = state.len(),
            state_bytes = state
                .iter()
                .filter_map(|(_, v)| v.as_ref())
                .map(Vec::len)
                .sum::<usize>(),
            correlate_us = batch.correlating.as_micros() as u64,
            apply_us = (applied - started).as_micros() as u64,
            flush_us = applied.elapsed().as_micros() as u64,
            "batch durable"
        );
        let durable_ms = Timestamp::now().as_millisecond();
        for (label, lines) in batch.read {
            self.metrics.lines_read.add(&label, lines);
            self.metrics.activity.record(&label, lines, durable_ms);
        }
        Metrics::inc(&self.metrics.parse_errors, batch.parse_errors);
        Metrics::inc(&self.metrics.events_matched, batch.matched);
        Metrics::inc(&self.metrics.incidents_opened, batch.opened_incidents);
        Metrics::inc(&self.metrics.incidents_updated, batch.updated);
        self.metrics.syslog_dropped.store(
            self.syslog_stats.dropped.load(Ordering::Relaxed),
            Ordering::Relaxed,
        );
        self.progress.batch_done();
        Ok(true)
    }
}
