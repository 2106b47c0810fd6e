//! `socwatch scan`: one pass over log files (plain, gzip, stdin) through the same engine as the
//! daemon (`engine::Engine`). Several files are merged by event time, so `auth.log.2.gz auth.log.1
//! auth.log` gives the incidents that watching those days live would have given.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::PathBuf;
use std::sync::Arc;

use flate2::read::MultiGzDecoder;
use jiff::Timestamp;
use jiff::tz::TimeZone;

use crate::cases::Case;
use crate::correlate::{Change, Limits, Stats};
use crate::decode::{detect_format, prepare_line};
use crate::engine::{CaseStates, Engine, LineStats, Sink, Source, SourceSpec};
use crate::model::{Format, Incident, Logsource};
use crate::rules::RuleSet;
use crate::sources::lines::read_capped_line;

/// Lines read ahead to detect a file's format.
const DETECT_LINES: usize = 20;

#[derive(Debug, Clone)]
pub enum Input {
    Stdin,
    Path(PathBuf),
}

impl Input {
    pub fn name(&self) -> String {
        match self {
            Input::Stdin => "-".into(),
            Input::Path(path) => path.display().to_string(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct ScanOptions {
    pub format: Format,
    /// Overrides of the logsource the decoder gives (`--logsource product=windows`).
    pub logsource: Logsource,
    pub zone: TimeZone,
    pub max_line_bytes: usize,
    /// Host for events that do not name one.
    pub host: String,
    pub unit: String,
    /// "Now" for stdin's year-less timestamps.
    pub now: Timestamp,
    pub limits: Limits,
    /// `[cases] window`: how far apart in event time incidents on one entity still share a case.
    pub case_window: std::time::Duration,
}

/// What was read from one input, and what was wrong with it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InputStats {
    pub source: String,
    pub format: Option<Format>,
    /// Lines, bytes, what was wrong with them and rule matches, as the engine counted them.
    pub counts: LineStats,
    /// Why reading stopped early (cannot open, truncated gzip, IO error).
    pub error: Option<InputError>,
}

/// Why an input could not be read to its end. The CLI words it in the operator's language;
/// the OS error text is kept as the OS gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputError {
    Open(String),
    Read(String),
    GzipTruncated,
}

impl std::fmt::Display for InputError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text(crate::model::Lang::En))
    }
}

impl InputError {
    pub fn text(&self, lang: crate::model::Lang) -> String {
        match self {
            InputError::Open(error) => crate::tr!(lang, InputCannotOpen, error = error),
            InputError::Read(error) => crate::tr!(lang, InputReadError, error = error),
            InputError::GzipTruncated => crate::tr!(lang, InputGzipTruncated),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct ScanReport {
    /// Oldest first.
    pub incidents: Vec<Incident>,
    /// The cases the incidents form, oldest first.
    pub cases: Vec<Case>,
    pub inputs: Vec<InputStats>,
    pub matches: u64,
    pub correlation: Stats,
}

impl ScanReport {
    pub fn lines(&self) -> u64 {
        self.inputs.iter().map(|i| i.counts.lines).sum()
    }

    pub fn failed_inputs(&self) -> usize {
        self.inputs
            .iter()
            .filter(|i| i.error.is_some() && i.counts.lines == 0)
            .count()
    }
}

/// One open input, positioned on its next line.
struct Stream {
    reader: Box<dyn BufRead>,
    source: Source,
    stats_index: usize,
    /// Lines read ahead for format detection, with their full lengths.
    ahead: std::collections::VecDeque<(Vec<u8>, usize)>,
    line: Vec<u8>,
    line_len: usize,
    /// For lines before the first that has a time: the file's mtime, else "now".
    received: Timestamp,
    /// The current line's time, for merging several inputs.
    current_ts: Option<Timestamp>,
}

fn open(input: &Input) -> io::Result<(Box<dyn BufRead>, Option<Timestamp>)> {
    const BUFFER: usize = 256 * 1024;
    let (raw, mtime): (Box<dyn Read>, Option<Timestamp>) = match input {
        Input::Stdin => (Box::new(io::stdin().lock()), None),
        Input::Path(path) => {
            let file = File::open(path)?;
            let mtime = file
                .metadata()
                .ok()
                .and_then(|m| m.modified().ok())
                .and_then(|t| Timestamp::try_from(t).ok());
            (Box::new(file), mtime)
        }
    };
    let mut reader = BufReader::with_capacity(BUFFER, raw);
    let gzip = reader.fill_buf()?.starts_with(&[0x1f, 0x8b]);
    if gzip {
        Ok((
            Box::new(BufReader::with_capacity(
                BUFFER,
                MultiGzDecoder::new(reader),
            )),
            mtime,
        ))
    } else {
        Ok((Box::new(reader), mtime))
    }
}

/// Collects changes into the incident list, in the order the incidents opened, and each case's
/// latest state.
#[derive(Default)]
struct Collect {
    incidents: Vec<Incident>,
    slot_of: HashMap<String, usize>,
    cases: CaseStates,
}

impl Sink for Collect {
    fn change(&mut self, change: Change) {
        match &change {
            Change::Opened(incident) => {
                self.slot_of
                    .insert(incident.id.clone(), self.incidents.len());
                self.incidents.push((**incident).clone());
            }
            Change::Updated { id, .. } => {
                if let Some(&at) = self.slot_of.get(id) {
                    self.incidents[at].apply(&change);
                }
            }
        }
    }

    fn case(&mut self, case: &Case) {
        self.cases.record(case);
    }
}

/// Scans the inputs with the rules. Inputs that cannot be read are reported in `inputs`, never fatal.
pub fn scan(inputs: &[Input], rules: &Arc<RuleSet>, opts: &ScanOptions) -> ScanReport {
    let mut report = ScanReport::default();
    let mut engine = Engine::new(rules.clone(), opts.limits, &opts.unit, opts.max_line_bytes)
        .with_case_window(opts.case_window);
    let mut streams = Vec::new();
    for input in inputs {
        let mut stats = InputStats {
            source: input.name(),
            ..InputStats::default()
        };
        match open(input) {
            Ok((reader, mtime)) => {
                let spec = SourceSpec {
                    name: input.name(),
                    clock: input.name(),
                    format: Format::Plain,
                    logsource: opts.logsource.clone(),
                    zone: opts.zone.clone(),
                    system: String::new(),
                    level: 0,
                    host: opts.host.clone(),
                };
                let mut stream = Stream {
                    reader,
                    source: engine.source(spec, mtime.unwrap_or(opts.now)),
                    stats_index: report.inputs.len(),
                    ahead: Default::default(),
                    line: Vec::new(),
                    line_len: 0,
                    received: mtime.unwrap_or(opts.now),
                    current_ts: None,
                };
                let format = detect(&mut stream, opts, &mut stats);
                stats.format = Some(format);
                stream.source.set_format(format);
                report.inputs.push(stats);
                streams.push(stream);
            }
            Err(err) => {
                stats.error = Some(InputError::Open(err.to_string()));
                report.inputs.push(stats);
            }
        }
    }

    let mut sink = Collect::default();
    let merging = streams.len() > 1;
    let mut live: Vec<Stream> = Vec::new();
    for mut stream in streams {
        if advance(&mut stream, opts, &mut report.inputs, merging) {
            live.push(stream);
        }
    }
    while !live.is_empty() {
        let pick = if merging {
            (0..live.len())
                .min_by_key(|&i| {
                    live[i]
                        .current_ts
                        .or(live[i].source.last_time())
                        .unwrap_or(live[i].received)
                })
                .unwrap_or(0)
        } else {
            0
        };
        let stream = &mut live[pick];
        engine.feed(
            &mut stream.source,
            &stream.line,
            stream.line_len,
            stream.received,
            &mut sink,
        );
        if !advance(stream, opts, &mut report.inputs, merging) {
            let done = live.swap_remove(pick);
            finish(&done, &mut report.inputs);
        }
    }
    report.matches = report.inputs.iter().map(|i| i.counts.matches).sum();
    report.correlation = engine.correlation_stats();
    report.incidents = sink.incidents;
    report.cases = sink.cases.into_cases();
    // An incident names the case it ended in (cases bridged by a later incident became one).
    let case_of: HashMap<&str, &str> = report
        .cases
        .iter()
        .flat_map(|c| c.incidents.iter().map(|i| (i.id.as_str(), c.id.as_str())))
        .collect();
    for incident in &mut report.incidents {
        if let Some(case) = case_of.get(incident.id.as_str()) {
            incident.case_id = case.to_string();
        }
    }
    report
        .incidents
        .sort_by_key(|i| (i.first_seen, i.id.clone()));
    for case in &mut report.cases {
        case.revision = 1;
        case.merged_from.clear();
    }
    report.cases.sort_by_key(|c| (c.first_seen, c.id.clone()));
    report
}

/// Records a finished stream's line counters in its input's stats.
fn finish(stream: &Stream, inputs: &mut [InputStats]) {
    inputs[stream.stats_index].counts = stream.source.stats;
}

/// Reads ahead and picks the input's format (or takes the one given).
fn detect(stream: &mut Stream, opts: &ScanOptions, stats: &mut InputStats) -> Format {
    let mut buf = Vec::new();
    while stream.ahead.len() < DETECT_LINES {
        match read_capped_line(&mut stream.reader, &mut buf, opts.max_line_bytes) {
            Ok(Some(len)) => stream.ahead.push_back((std::mem::take(&mut buf), len)),
            Ok(None) => break,
            Err(err) => {
                stats.error = Some(read_error(&err));
                break;
            }
        }
    }
    if opts.format != Format::Auto {
        return opts.format;
    }
    let prepared: Vec<_> = stream
        .ahead
        .iter()
        .map(|(line, _)| prepare_line(line, opts.max_line_bytes))
        .collect();
    let sample: Vec<&str> = prepared
        .iter()
        .map(|l| l.text.as_ref())
        .filter(|l| !l.trim().is_empty())
        .collect();
    detect_format(&sample)
}

fn read_error(err: &io::Error) -> InputError {
    if err.kind() == io::ErrorKind::UnexpectedEof {
        InputError::GzipTruncated
    } else {
        InputError::Read(err.to_string())
    }
}

/// Moves to the next line. False at the end of the input (or after a read error, which is recorded).
fn advance(
    stream: &mut Stream,
    opts: &ScanOptions,
    inputs: &mut [InputStats],
    merging: bool,
) -> bool {
    let stats = &mut inputs[stream.stats_index];
    if stats.error.is_some() && stream.ahead.is_empty() {
        return false;
    }
    if let Some((line, len)) = stream.ahead.pop_front() {
        stream.line = line;
        stream.line_len = len;
    } else {
        match read_capped_line(&mut stream.reader, &mut stream.line, opts.max_line_bytes) {
            Ok(Some(len)) => stream.line_len = len,
            Ok(None) => return false,
            Err(err) => {
                stats.error = Some(read_error(&err));
                return false;
            }
        }
    }
    if merging {
        stream.current_ts = stream.source.peek_time(&stream.line, opts.max_line_bytes);
    }
    true
}
