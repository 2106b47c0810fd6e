//! `socwatch incidents list | show | ack | resolve | false-positive | reopen | export`, working on the
//! store at `daemon.data_dir` opened directly, or, while the daemon holds it (or the store is
//! the service user's), through the daemon's local API (`api.listen`) with the shared token
//! (`api.token_file`, else the generated `DATA_DIR/api.token`), or with `--token-file` (an
//! operator's own token) always through the API.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand, ValueEnum};
use jiff::Timestamp;
use socwatch::api::{self, Client, ClientError};
use socwatch::config::Config;
use socwatch::model::{Incident, Lang, rfc3339};
use socwatch::query::Filters;
use socwatch::report;
use socwatch::store::{Action, Query, Store, StoreError};

const EXIT_RUNTIME: u8 = 1;
const EXIT_USAGE: u8 = 2;

/// How many incidents `list` shows without `--limit`: a screenful, not a million rows.
const DEFAULT_LIST_LIMIT: usize = 100;

#[derive(Args, Debug)]
pub struct Lifecycle {
    id: String,
    #[arg(long, default_value = "")]
    note: String,
    /// Who acts, when the store is opened directly (default: $SUDO_USER, else $USER); through
    /// the API the token says who acts, and the shared token refuses --by
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

fn default_actor() -> String {
    ["SUDO_USER", "USER"]
        .iter()
        .find_map(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
        .unwrap_or_else(|| "unknown".into())
}

fn fail(err: impl std::fmt::Display) -> ExitCode {
    errln!("{err}");
    ExitCode::from(EXIT_RUNTIME)
}

fn usage(err: impl std::fmt::Display) -> ExitCode {
    errln!("{err}");
    ExitCode::from(EXIT_USAGE)
}

/// Where incidents come from: the store itself, or the running daemon's API when it holds the store.
enum Backend {
    Local(Box<Store>),
    Remote {
        client: Client,
        /// For messages: the store we could not open (None: `--token-file` asked for the API).
        dir: Option<PathBuf>,
        /// For messages: where the token came from.
        token: PathBuf,
    },
}

impl Backend {
    /// With `token_file` (`--token-file`, `SOCWATCH_TOKEN_FILE`: typically an operator's token),
    /// the API: the token says who acts. Otherwise the store; when another process (the daemon)
    /// holds it, or this user may not open it, the API with the shared token.
    fn open(config: &Config, token_file: Option<&Path>, lang: Lang) -> Result<Backend, String> {
        let dir = &config.daemon.data_dir;
        if let Some(path) = token_file {
            return Self::remote(config, path, "--token-file", None, lang);
        }
        if !dir.exists() {
            return Err(format!(
                "no incident store at {} (nothing has been stored yet, or daemon.data_dir points elsewhere)",
                dir.display()
            ));
        }
        // Status changes made while the daemon is down are queued for the destinations too.
        let policy = socwatch::alerting::OutboxPolicy::from_config(config);
        match Store::open(dir, policy) {
            Ok(store) => Ok(Backend::Local(Box::new(store))),
            Err(StoreError::Locked(_) | StoreError::Denied(_)) => Self::remote(
                config,
                &api::shared_token_path(config),
                "the API token",
                Some(dir.clone()),
                lang,
            ),
            Err(err) => Err(err.to_string()),
        }
    }

    fn remote(
        config: &Config,
        token_path: &Path,
        what: &str,
        dir: Option<PathBuf>,
        lang: Lang,
    ) -> Result<Backend, String> {
        let listen = config.api.listen.get_ref();
        let busy = match &dir {
            Some(dir) => format!(
                "cannot open the store at {} (in use by another process) and the API at {listen}",
                dir.display()
            ),
            None => format!("the API at {listen}"),
        };
        let trust = socwatch::security::Trust::new(&config.daemon.data_dir);
        let token = api::read_token(token_path, what, &trust).map_err(|err| {
            if err.is_denied() && dir.is_some() {
                denied_message(token_path, lang)
            } else {
                format!("{busy}: {err}")
            }
        })?;
        let client = Client::new(listen, Some(token)).map_err(|err| format!("{busy}: {err}"))?;
        Ok(Backend::Remote {
            client,
            dir,
            token: token_path.to_path_buf(),
        })
    }

    fn remote_error(client: &Client, dir: Option<&Path>, token: &Path, err: ClientError) -> String {
        match err {
            ClientError::Unreachable(err) => match dir {
                Some(dir) => format!(
                    "cannot open the store at {} (in use by another process) and the API at {} does not answer: {err}",
                    dir.display(),
                    client.addr()
                ),
                None => format!("the API at {} does not answer: {err}", client.addr()),
            },
            ClientError::Status { status: 401, .. } => format!(
                "the API at {} refused the token from {} (check api.token_file, or the operator's token_file)",
                client.addr(),
                token.display()
            ),
            other => other.to_string(),
        }
    }

    /// `filters` for the API, `query` (the same, resolved) for the store.
    fn list(&self, filters: &Filters, query: &Query) -> Result<Vec<Incident>, String> {
        match self {
            Backend::Local(store) => store.list(query).map_err(|e| e.to_string()),
            Backend::Remote { client, dir, token } => {
                let mut filters = filters.clone();
                filters.limit = query.limit.or(Some(api::MAX_LIMIT));
                let found = client
                    .list(&filters)
                    .map_err(|e| Self::remote_error(client, dir.as_deref(), token, e))?;
                if query.limit.is_none() && found.len() >= api::MAX_LIMIT {
                    errln!(
                        "warning: the API returns at most {} incidents; narrow the filters, or stop the daemon to export everything",
                        api::MAX_LIMIT
                    );
                }
                Ok(found)
            }
        }
    }

    fn get(&self, id: &str) -> Result<Incident, String> {
        match self {
            Backend::Local(store) => store.find(id).map_err(|err| err.to_string()),
            Backend::Remote { client, dir, token } => client
                .get(id)
                .map_err(|e| Self::remote_error(client, dir.as_deref(), token, e)),
        }
    }

    fn transition(
        &self,
        id: &str,
        action: Action,
        by: Option<String>,
        note: &str,
        now: Timestamp,
    ) -> Result<Incident, String> {
        match self {
            Backend::Local(store) => {
                let by = by.unwrap_or_else(default_actor);
                store
                    .transition(id, action, &by, note, now)
                    .map_err(|e| e.to_string())
            }
            // The daemon records who the token belongs to; an explicit --by is sent so that the
            // shared token can refuse it rather than record it silently as "admin".
            Backend::Remote { client, dir, token } => client
                .transition(id, action, by.as_deref(), note)
                .map_err(|e| Self::remote_error(client, dir.as_deref(), token, e)),
        }
    }
}

/// Why an unprivileged user cannot reach the running daemon with the shared token.
fn denied_message(path: &Path, lang: Lang) -> String {
    match lang {
        Lang::Vi => format!(
            "không có quyền đọc mã truy cập API {}: chỉ root và người dùng dịch vụ socwatch đọc được; hãy chạy lệnh bằng root (sudo), hoặc dùng mã của riêng người trực: --token-file TỆP hoặc SOCWATCH_TOKEN_FILE",
            path.display()
        ),
        Lang::En => format!(
            "permission denied reading the API token {}: only root and the socwatch service user can read it; run this command as root (sudo), or use your own operator token: --token-file FILE or SOCWATCH_TOKEN_FILE",
            path.display()
        ),
    }
}

pub fn run(
    config: &Config,
    lang: Lang,
    action: IncidentsAction,
    token_file: Option<&Path>,
) -> ExitCode {
    let now = Timestamp::now();
    // Check arguments before touching the store, so bad usage is exit 2 whatever the store's state.
    let query = match &action {
        IncidentsAction::List { filters, .. } => filters.to_query(now, Some(DEFAULT_LIST_LIMIT)),
        IncidentsAction::Export { filters, .. } => filters.to_query(now, None),
        _ => Ok(Query::default()),
    };
    let query = match query {
        Ok(query) => query,
        Err(err) => return usage(err),
    };
    let backend = match Backend::open(config, token_file, lang) {
        Ok(backend) => backend,
        Err(err) => return fail(err),
    };
    let outcome = match action {
        IncidentsAction::List { filters, json } => backend.list(&filters, &query).map(|found| {
            if json {
                json_text(&found)
            } else {
                report::incidents_table(&found, lang)
            }
        }),
        IncidentsAction::Show { id, json } => backend.get(&id).map(|incident| {
            if json {
                json_text(&incident)
            } else {
                report::incident_detail(&incident, lang)
            }
        }),
        IncidentsAction::Ack(args) => transition(&backend, Action::Ack, args, now, lang),
        IncidentsAction::Resolve(args) => transition(&backend, Action::Resolve, args, now, lang),
        IncidentsAction::FalsePositive(args) => {
            transition(&backend, Action::FalsePositive, args, now, lang)
        }
        IncidentsAction::Reopen(args) => transition(&backend, Action::Reopen, args, now, lang),
        IncidentsAction::Export {
            filters,
            format,
            output,
        } => {
            let found = match backend.list(&filters, &query) {
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
    // Closed before printing: a reader that goes away ends the program (`out!`), the store first.
    drop(backend);
    match outcome {
        Ok(text) => {
            out!("{text}");
            ExitCode::SUCCESS
        }
        Err(err) => fail(err),
    }
}

fn transition(
    backend: &Backend,
    action: Action,
    args: Lifecycle,
    now: Timestamp,
    lang: Lang,
) -> Result<String, String> {
    let incident = backend.transition(&args.id, action, args.by, &args.note, now)?;
    // Who the store recorded: through the API, the token's owner, not what was asked.
    let by = incident
        .history
        .last()
        .map(|entry| entry.by.clone())
        .unwrap_or_default();
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
}

#[derive(Subcommand, Debug)]
pub enum OutboxAction {
    /// Pending alerts per destination, oldest age, last error, dead letters
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Send refused alerts (dead letters) again and end any backoff wait now
    Retry,
}

/// `socwatch outbox status | retry`.
pub fn outbox(
    config: &Config,
    lang: Lang,
    action: OutboxAction,
    token_file: Option<&Path>,
) -> ExitCode {
    let backend = match Backend::open(config, token_file, lang) {
        Ok(backend) => backend,
        Err(err) => return fail(err),
    };
    let policy = socwatch::alerting::OutboxPolicy::from_config(config);
    let known: Vec<&str> = policy
        .destinations
        .iter()
        .map(|d| d.name.as_str())
        .collect();
    let outcome = match action {
        OutboxAction::Status { json } => {
            let report = match &backend {
                Backend::Local(store) => store
                    .outbox_report(&known, Timestamp::now())
                    .map_err(|err| err.to_string()),
                Backend::Remote { client, dir, token } => client
                    .outbox()
                    .map_err(|e| Backend::remote_error(client, dir.as_deref(), token, e)),
            };
            report.map(|report| {
                if json {
                    json_text(&report)
                } else {
                    report::outbox_table(&report, lang)
                }
            })
        }
        OutboxAction::Retry => {
            let requeued = match &backend {
                // The daemon is not running: the alerts wait in the outbox for its next start.
                Backend::Local(store) => store.outbox_requeue_dead().map_err(|err| err.to_string()),
                Backend::Remote { client, dir, token } => client
                    .outbox_retry()
                    .map_err(|e| Backend::remote_error(client, dir.as_deref(), token, e)),
            };
            requeued.map(|n| match lang {
                Lang::Vi => format!("Đã xếp lại {n} cảnh báo bị từ chối; gửi lại ngay.\n"),
                Lang::En => format!("{n} refused alerts queued again; sending now.\n"),
            })
        }
    };
    // Closed before printing: a reader that goes away ends the program (`out!`), the store first.
    drop(backend);
    match outcome {
        Ok(text) => {
            out!("{text}");
            ExitCode::SUCCESS
        }
        Err(err) => fail(err),
    }
}

/// `socwatch status`: what the running daemon is doing, from its API (with `--token-file`, else the
/// shared token). Exit 1 when it does not answer.
pub fn status(config: &Config, lang: Lang, json: bool, token_file: Option<&Path>) -> ExitCode {
    let listen = config.api.listen.get_ref();
    let (path, what) = match token_file {
        Some(path) => (path.to_path_buf(), "--token-file"),
        None => (api::shared_token_path(config), "the API token"),
    };
    let trust = socwatch::security::Trust::new(&config.daemon.data_dir);
    let token = match api::read_token(&path, what, &trust) {
        Ok(token) => token,
        Err(err) if err.is_denied() => return fail(denied_message(&path, lang)),
        Err(err) => return fail(err),
    };
    let answer = Client::new(listen, Some(token)).and_then(|client| client.status());
    let status = match answer {
        Ok(status) => status,
        Err(ClientError::Unreachable(err)) => {
            return fail(match lang {
                Lang::Vi => format!("socwatch không chạy: API tại {listen} không trả lời ({err})"),
                Lang::En => {
                    format!("socwatch is not running: the API at {listen} does not answer ({err})")
                }
            });
        }
        Err(err) => return fail(err),
    };
    let text = if json {
        json_text(&status)
    } else {
        report::status_text(&status, lang, Timestamp::now())
    };
    out!("{text}");
    ExitCode::SUCCESS
}
