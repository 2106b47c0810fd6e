//! `socwatch scan`: one pass over log files (plain, gzip, stdin) through the same decoders, rules and
//! correlation as the daemon. Several files are merged by event time, so `auth.log.2.gz auth.log.1
//! auth.log` gives the incidents that watching those days live would have given.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::PathBuf;
use std::sync::Arc;

use flate2::read::MultiGzDecoder;
use jiff::Timestamp;
use jiff::tz::TimeZone;

use crate::correlate::{Change, Correlator, Limits, Observation, Origin, Stats};
use crate::decode::{DecodeContext, Decoder, detect_format, prepare_line};
use crate::model::{Format, Incident, Logsource, SourceMeta};
use crate::rules::{MatchScratch, RuleMatch, RuleSet};
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
}

/// What was read from one input, and what was wrong with it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InputStats {
    pub source: String,
    pub format: Option<Format>,
    pub lines: u64,
    pub bytes: u64,
    pub parse_errors: u64,
    pub invalid_utf8: u64,
    pub nul_bytes: u64,
    pub truncated: u64,
    /// Why reading stopped early (cannot open, truncated gzip, IO error).
    pub error: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct ScanReport {
    /// Oldest first.
    pub incidents: Vec<Incident>,
    pub inputs: Vec<InputStats>,
    pub matches: u64,
    pub correlation: Stats,
}

impl ScanReport {
    pub fn lines(&self) -> u64 {
        self.inputs.iter().map(|i| i.lines).sum()
    }

    pub fn failed_inputs(&self) -> usize {
        self.inputs
            .iter()
            .filter(|i| i.error.is_some() && i.lines == 0)
            .count()
    }
}

/// One open input, positioned on its next line.
struct Stream {
    reader: Box<dyn BufRead>,
    decoder: Decoder,
    meta: SourceMeta,
    stats_index: usize,
    /// Lines read ahead for format detection, with their full lengths.
    ahead: std::collections::VecDeque<(Vec<u8>, usize)>,
    line: Vec<u8>,
    line_len: usize,
    /// Time of the latest line that had one; lines without a time take it.
    last_ts: Timestamp,
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

/// Scans the inputs with the rules. Inputs that cannot be read are reported in `inputs`, never fatal.
pub fn scan(inputs: &[Input], rules: &RuleSet, opts: &ScanOptions) -> ScanReport {
    let mut report = ScanReport::default();
    let mut streams = Vec::new();
    for input in inputs {
        let mut stats = InputStats {
            source: input.name(),
            ..InputStats::default()
        };
        match open(input) {
            Ok((reader, mtime)) => {
                let ctx = DecodeContext::new(opts.zone.clone(), mtime.unwrap_or(opts.now));
                let mut stream = Stream {
                    reader,
                    decoder: Decoder::new(Format::Plain, ctx),
                    meta: SourceMeta::new(Arc::<str>::from(input.name())),
                    stats_index: report.inputs.len(),
                    ahead: Default::default(),
                    line: Vec::new(),
                    line_len: 0,
                    last_ts: mtime.unwrap_or(opts.now),
                    current_ts: None,
                };
                let format = detect(&mut stream, opts, &mut stats);
                stats.format = Some(format);
                stream.decoder = Decoder::new(format, stream.decoder.context().clone());
                report.inputs.push(stats);
                streams.push(stream);
            }
            Err(err) => {
                stats.error = Some(format!("cannot open: {err}"));
                report.inputs.push(stats);
            }
        }
    }

    let mut correlator = Correlator::new(rules, opts.limits);
    let mut open_incidents: HashMap<String, usize> = HashMap::new();
    let mut scratch = MatchScratch::default();
    let mut found: Vec<RuleMatch> = Vec::new();
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
                .min_by_key(|&i| live[i].current_ts.unwrap_or(live[i].last_ts))
                .unwrap_or(0)
        } else {
            0
        };
        let stream = &mut live[pick];
        let stats = &mut report.inputs[stream.stats_index];
        let prepared = prepare_line(&stream.line, opts.max_line_bytes);
        if prepared.flags.invalid_utf8 {
            stats.invalid_utf8 += 1;
        }
        if prepared.flags.nul_bytes {
            stats.nul_bytes += 1;
        }
        if stream.line_len > opts.max_line_bytes {
            stats.truncated += 1;
        }
        let mut event = stream.decoder.decode(&prepared.text);
        if event.parse_error {
            stats.parse_errors += 1;
        }
        event.logsource.override_with(&opts.logsource);
        let ts = event.ts.unwrap_or(stream.last_ts);
        stream.last_ts = ts;
        rules.matches_into(&event, &stream.meta, &mut scratch, &mut found);
        for rule_match in &found {
            report.matches += 1;
            let origin = Origin {
                host: event.get("host").unwrap_or(&opts.host),
                system: &stream.meta.system,
                level: stream.meta.level,
                unit: &opts.unit,
            };
            let obs = Observation::of(rules, rule_match, &event, &stream.meta, ts, origin);
            match correlator.observe(rules, obs) {
                Some(Change::Opened(incident)) => {
                    open_incidents.insert(incident.id.clone(), report.incidents.len());
                    report.incidents.push(*incident);
                }
                Some(Change::Updated {
                    id,
                    count,
                    last_seen,
                    evidence,
                    ..
                }) => {
                    if let Some(&at) = open_incidents.get(&id) {
                        let incident = &mut report.incidents[at];
                        incident.count = count;
                        incident.last_seen = last_seen;
                        incident.revision += 1;
                        if incident.evidence.len() < opts.limits.evidence_lines {
                            incident.evidence.push(evidence);
                        } else {
                            incident.evidence_omitted += 1;
                        }
                    }
                }
                None => {}
            }
        }
        if !advance(stream, opts, &mut report.inputs, merging) {
            live.swap_remove(pick);
        }
    }
    report.correlation = correlator.stats();
    report
        .incidents
        .sort_by_key(|i| (i.first_seen, i.id.clone()));
    report
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

fn read_error(err: &io::Error) -> String {
    if err.kind() == io::ErrorKind::UnexpectedEof {
        "stopped early: the gzip stream is truncated".into()
    } else {
        format!("read error: {err}")
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
    stats.lines += 1;
    stats.bytes += stream.line_len as u64 + 1;
    if merging {
        let prepared = prepare_line(&stream.line, opts.max_line_bytes);
        stream.current_ts = stream.decoder.decode(&prepared.text).ts;
    }
    true
}
