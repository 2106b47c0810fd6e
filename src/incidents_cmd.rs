//! `socwatch incidents list | show | ack | resolve | false-positive | reopen | export`, working on the
//! store at `daemon.data_dir` opened directly (the daemon's API path comes later).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand, ValueEnum};
use jiff::Timestamp;
use socwatch::config::Config;
use socwatch::duration::parse_duration;
use socwatch::model::{Incident, Lang, Severity, Status, display_zone, rfc3339};
use socwatch::report;
use socwatch::store::{Action, Query, Store, StoreError};

const EXIT_RUNTIME: u8 = 1;
const EXIT_USAGE: u8 = 2;

/// How many incidents `list` shows without `--limit`: a screenful, not a million rows.
const DEFAULT_LIST_LIMIT: usize = 100;

#[derive(Args, Debug, Default)]
pub struct Filters {
    /// Last seen at or after: a duration back from now (24h, 7d) or a date (2026-11-01) or RFC 3339 time
    #[arg(long, value_name = "WHEN")]
    since: Option<String>,
    /// Last seen at or before: a duration back from now, a date (the whole day counts) or RFC 3339 time
    #[arg(long, value_name = "WHEN")]
    until: Option<String>,
    /// This severity and above: info, low, medium, high, critical
    #[arg(long)]
    severity: Option<Severity>,
    /// open, acknowledged, resolved or false_positive
    #[arg(long, value_parser = parse_status)]
    status: Option<Status>,
    #[arg(long, value_name = "ID")]
    rule: Option<String>,
    #[arg(long, value_name = "NAME")]
    host: Option<String>,
    #[arg(long, value_name = "NAME")]
    system: Option<String>,
    /// A group value, e.g. src_ip=203.0.113.7 (repeatable: all must hold)
    #[arg(long = "field", value_name = "KEY=VALUE")]
    fields: Vec<String>,
    #[arg(long, value_name = "N")]
    limit: Option<usize>,
}

#[derive(Args, Debug)]
pub struct Lifecycle {
    id: String,
    #[arg(long, default_value = "")]
    note: String,
    /// Who acts (default: $SUDO_USER, else $USER)
    #[arg(long, value_name = "NAME")]
    by: Option<String>,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ExportFormat {
    Json,
    Csv,
}

#[derive(Subcommand, Debug)]
pub enum IncidentsAction {
    /// Incidents matching the filters, most recently seen first (default limit 100)
    List {
        #[command(flatten)]
        filters: Filters,
        #[arg(long)]
        json: bool,
    },
    /// One incident with its evidence lines and history
    Show {
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Acknowledge: someone is on it
    Ack(Lifecycle),
    /// Resolve: the attack is over or handled
    Resolve(Lifecycle),
    /// Close as a false positive
    FalsePositive(Lifecycle),
    /// Reopen an acknowledged, resolved or false-positive incident
    Reopen(Lifecycle),
    /// Every incident matching the filters, as JSON or CSV
    Export {
        #[command(flatten)]
        filters: Filters,
        #[arg(long)]
        format: ExportFormat,
        /// Write here instead of stdout
        #[arg(long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
}

fn parse_status(text: &str) -> Result<Status, String> {
    match text {
        "open" => Ok(Status::Open),
        "acknowledged" => Ok(Status::Acknowledged),
        "resolved" => Ok(Status::Resolved),
        "false_positive" | "false-positive" => Ok(Status::FalsePositive),
        other => Err(format!(
            "unknown status '{other}' (expected open, acknowledged, resolved or false_positive)"
        )),
    }
}

/// `24h` (back from now), `2026-11-01` (that day in Asia/Ho_Chi_Minh; its start, or with `end_of_day`
/// its last instant) or an RFC 3339 time.
fn parse_when(text: &str, now: Timestamp, end_of_day: bool) -> Result<Timestamp, String> {
    if let Ok(duration) = parse_duration(text) {
        let back = jiff::SignedDuration::try_from(duration).map_err(|e| e.to_string())?;
        return now.checked_sub(back).map_err(|e| e.to_string());
    }
    if let Ok(date) = text.parse::<jiff::civil::Date>() {
        let day = date.to_zoned(display_zone()).map_err(|e| e.to_string())?;
        return if end_of_day {
            let next = day.tomorrow().map_err(|e| e.to_string())?;
            Ok(next.timestamp() - jiff::SignedDuration::from_nanos(1))
        } else {
            Ok(day.timestamp())
        };
    }
    text.parse::<Timestamp>().map_err(|_| {
        format!(
            "bad time '{text}' (expected e.g. 24h, 7d, 2026-11-01 or 2026-11-01T08:00:00+07:00)"
        )
    })
}

fn build_query(
    filters: &Filters,
    now: Timestamp,
    default_limit: Option<usize>,
) -> Result<Query, String> {
    let mut fields = Vec::new();
    for pair in &filters.fields {
        let (key, value) = pair
            .split_once('=')
            .filter(|(k, _)| !k.is_empty())
            .ok_or_else(|| format!("--field takes KEY=VALUE, got '{pair}'"))?;
        fields.push((key.to_string(), value.to_string()));
    }
    Ok(Query {
        since: filters
            .since
            .as_deref()
            .map(|t| parse_when(t, now, false))
            .transpose()?,
        until: filters
            .until
            .as_deref()
            .map(|t| parse_when(t, now, true))
            .transpose()?,
        min_severity: filters.severity,
        status: filters.status,
        rule: filters.rule.clone(),
        host: filters.host.clone(),
        system: filters.system.clone(),
        fields,
        limit: filters.limit.or(default_limit),
    })
}

fn default_actor() -> String {
    ["SUDO_USER", "USER"]
        .iter()
        .find_map(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
        .unwrap_or_else(|| "unknown".into())
}

fn fail(err: impl std::fmt::Display) -> ExitCode {
    eprintln!("{err}");
    ExitCode::from(EXIT_RUNTIME)
}

fn usage(err: impl std::fmt::Display) -> ExitCode {
    eprintln!("{err}");
    ExitCode::from(EXIT_USAGE)
}

pub fn run(config: &Config, lang: Lang, action: IncidentsAction) -> ExitCode {
    let now = Timestamp::now();
    // Check arguments before touching the store, so bad usage is exit 2 whatever the store's state.
    let query = match &action {
        IncidentsAction::List { filters, .. } => {
            build_query(filters, now, Some(DEFAULT_LIST_LIMIT))
        }
        IncidentsAction::Export { filters, .. } => build_query(filters, now, None),
        _ => Ok(Query::default()),
    };
    let query = match query {
        Ok(query) => query,
        Err(err) => return usage(err),
    };
    let dir = &config.daemon.data_dir;
    if !dir.exists() {
        return fail(format!(
            "no incident store at {} (nothing has been stored yet, or daemon.data_dir points elsewhere)",
            dir.display()
        ));
    }
    let store = match Store::open(dir) {
        Ok(store) => store,
        Err(err) => return fail(err),
    };
    let outcome = match action {
        IncidentsAction::List { json, .. } => store.list(&query).map(|found| {
            if json {
                json_text(&found)
            } else {
                report::incidents_table(&found, lang)
            }
        }),
        IncidentsAction::Show { id, json } => match store.get(&id) {
            Ok(Some(incident)) if json => Ok(json_text(&incident)),
            Ok(Some(incident)) => Ok(report::incident_detail(&incident, lang)),
            Ok(None) => Err(StoreError::NotFound(id)),
            Err(err) => Err(err),
        },
        IncidentsAction::Ack(args) => transition(&store, Action::Ack, args, now, lang),
        IncidentsAction::Resolve(args) => transition(&store, Action::Resolve, args, now, lang),
        IncidentsAction::FalsePositive(args) => {
            transition(&store, Action::FalsePositive, args, now, lang)
        }
        IncidentsAction::Reopen(args) => transition(&store, Action::Reopen, args, now, lang),
        IncidentsAction::Export { format, output, .. } => {
            let found = match store.list(&query) {
                Ok(found) => found,
                Err(err) => return fail(err),
            };
            let text = match format {
                ExportFormat::Json => json_text(&found),
                ExportFormat::Csv => csv_text(&found),
            };
            if let Some(path) = output {
                return match std::fs::write(&path, text) {
                    Ok(()) => ExitCode::SUCCESS,
                    Err(err) => fail(format!("cannot write {}: {err}", path.display())),
                };
            }
            Ok(text)
        }
    };
    match outcome {
        Ok(text) => {
            let mut stdout = std::io::stdout().lock();
            match stdout.write_all(text.as_bytes()) {
                Err(err) if err.kind() != std::io::ErrorKind::BrokenPipe => {
                    fail(format!("cannot write output: {err}"))
                }
                _ => ExitCode::SUCCESS,
            }
        }
        Err(err) => fail(err),
    }
}

fn transition(
    store: &Store,
    action: Action,
    args: Lifecycle,
    now: Timestamp,
    lang: Lang,
) -> Result<String, StoreError> {
    let by = args.by.unwrap_or_else(default_actor);
    let incident = store.transition(&args.id, action, &by, &args.note, now)?;
    let status = socwatch::store::status_name(incident.status);
    Ok(match lang {
        Lang::Vi => format!(
            "Sự cố {}: {} bởi {by} (phiên bản {})\n",
            incident.id, status, incident.revision
        ),
        Lang::En => format!(
            "incident {}: {} by {by} (revision {})\n",
            incident.id, status, incident.revision
        ),
    })
}

fn json_text<T: serde::Serialize + ?Sized>(value: &T) -> String {
    let mut text = serde_json::to_string_pretty(value).unwrap_or_default();
    text.push('\n');
    text
}

/// One CSV field (RFC 4180). Text from log lines that a spreadsheet would run as a formula
/// (`=`, `+`, `-`, `@`, and tab or CR that some treat alike) gets a leading `'`.
fn csv_field(value: &str) -> String {
    let guarded = if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{value}")
    } else {
        value.to_string()
    };
    if guarded.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", guarded.replace('"', "\"\""))
    } else {
        guarded
    }
}

const CSV_HEADER: [&str; 17] = [
    "id",
    "rule_id",
    "title",
    "severity",
    "status",
    "first_seen",
    "last_seen",
    "count",
    "group",
    "host",
    "system",
    "level",
    "unit",
    "tags",
    "revision",
    "evidence_lines",
    "first_evidence",
];

fn csv_text(incidents: &[Incident]) -> String {
    let mut out = String::new();
    let mut record = |cells: Vec<String>| {
        let line: Vec<String> = cells.iter().map(|c| csv_field(c)).collect();
        out.push_str(&line.join(","));
        out.push_str("\r\n");
    };
    record(CSV_HEADER.iter().map(|h| h.to_string()).collect());
    for i in incidents {
        let group: Vec<String> = i.group.iter().map(|(k, v)| format!("{k}={v}")).collect();
        record(vec![
            i.id.clone(),
            i.rule_id.clone(),
            i.title.clone(),
            i.severity.as_str().to_string(),
            socwatch::store::status_name(i.status).to_string(),
            rfc3339::format(&i.first_seen),
            rfc3339::format(&i.last_seen),
            i.count.to_string(),
            group.join(";"),
            i.host.clone(),
            i.system.clone(),
            i.level.to_string(),
            i.unit.clone(),
            i.tags.join(";"),
            i.revision.to_string(),
            (i.evidence.len() as u64 + i.evidence_omitted).to_string(),
            i.evidence
                .first()
                .map(|e| e.line.clone())
                .unwrap_or_default(),
        ]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_and_guarded_against_formulas() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(csv_field("-1+2"), "'-1+2");
        assert_eq!(csv_field("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(csv_field("line\nbreak"), "\"line\nbreak\"");
    }

    #[test]
    fn times_are_durations_dates_or_rfc3339() {
        let now: Timestamp = "2026-11-22T03:00:00Z".parse().unwrap();
        assert_eq!(
            parse_when("24h", now, false).unwrap(),
            "2026-11-21T03:00:00Z".parse::<Timestamp>().unwrap()
        );
        assert_eq!(
            parse_when("2026-11-01", now, false).unwrap(),
            "2026-10-31T17:00:00Z".parse::<Timestamp>().unwrap()
        );
        assert_eq!(
            parse_when("2026-11-01", now, true).unwrap(),
            "2026-11-01T16:59:59.999999999Z"
                .parse::<Timestamp>()
                .unwrap()
        );
        assert!(parse_when("yesterday", now, false).is_err());
    }
}
