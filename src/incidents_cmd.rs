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
use socwatch::security::SecretError;
use socwatch::store::{Action, MIN_ID_PREFIX, Query, Store, StoreError};
use socwatch::tr;

const EXIT_RUNTIME: u8 = 1;
const EXIT_USAGE: u8 = 2;

/// How many incidents `list` shows without `--limit`: a screenful, not a million rows.
const DEFAULT_LIST_LIMIT: usize = 100;

#[derive(Args, Debug)]
pub struct Lifecycle {
    pub(crate) id: String,
    #[arg(long, default_value = "")]
    pub(crate) note: String,
    /// Who acts, when the store is opened directly (default: $SUDO_USER, else $USER); through
    /// the API the token says who acts, and the shared token refuses --by
    #[arg(long, value_name = "NAME")]
    pub(crate) by: Option<String>,
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

pub(crate) fn default_actor() -> String {
    ["SUDO_USER", "USER"]
        .iter()
        .find_map(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
        .unwrap_or_else(|| "unknown".into())
}

pub(crate) fn fail(err: impl std::fmt::Display) -> ExitCode {
    errln!("{err}");
    ExitCode::from(EXIT_RUNTIME)
}

pub(crate) fn usage(err: impl std::fmt::Display) -> ExitCode {
    errln!("{err}");
    ExitCode::from(EXIT_USAGE)
}

/// A store error worded for the operator; technical details (paths, ids, sled's text) as they are.
pub fn store_error(err: &StoreError, lang: Lang) -> String {
    match err {
        StoreError::Locked(path) => tr!(lang, StoreLocked, path = path.display()),
        StoreError::Denied(path) => tr!(lang, StoreDenied, path = path.display()),
        StoreError::Schema {
            path,
            found,
            expected,
        } => tr!(
            lang,
            StoreSchema,
            path = path.display(),
            found = found,
            expected = expected
        ),
        StoreError::NotFound(id) => tr!(lang, NotFound, id = id),
        StoreError::CaseNotFound(id) => tr!(lang, CaseNotFound, id = id),
        StoreError::Ambiguous { prefix, matches } => {
            tr!(lang, Ambiguous, prefix = prefix, matches = matches)
        }
        StoreError::IdTooShort(id) => tr!(lang, IdTooShort, min = MIN_ID_PREFIX, id = id),
        StoreError::InvalidTransition { id, action, status } => tr!(
            lang,
            InvalidTransition,
            action = socwatch::i18n::action_word(action, lang),
            id = id,
            status = socwatch::i18n::status_key_word(status, lang)
        ),
        StoreError::Corrupt { key, reason } => {
            tr!(lang, StoreCorrupt, key = key, reason = reason)
        }
        StoreError::Sled(err) => tr!(lang, StoreFailed, error = err),
    }
}

/// A secret file problem worded for the operator. `what` is the setting or flag that named it.
pub(crate) fn secret_error(err: &SecretError, lang: Lang) -> String {
    let what = |what: &str| {
        if what == SHARED_TOKEN {
            tr!(lang, TokenWhatShared)
        } else {
            what.to_string()
        }
    };
    let mode = |mode: &u32| format!("{mode:04o}");
    match err {
        SecretError::Denied { what: w, path, uid } => {
            tr!(
                lang,
                SecretDenied,
                what = what(w),
                path = path.display(),
                uid = uid
            )
        }
        SecretError::Io {
            what: w,
            path,
            source,
        } => tr!(
            lang,
            SecretCannotRead,
            what = what(w),
            path = path.display(),
            error = source
        ),
        SecretError::Exposed {
            what: w,
            path,
            mode: m,
        } => tr!(
            lang,
            SecretExposed,
            what = what(w),
            path = path.display(),
            mode = mode(m)
        ),
        SecretError::Owner { what: w, path, uid } => {
            tr!(
                lang,
                SecretOwner,
                what = what(w),
                path = path.display(),
                uid = uid
            )
        }
        SecretError::Group {
            what: w,
            path,
            gid,
            mode: m,
        } => tr!(
            lang,
            SecretGroup,
            what = what(w),
            path = path.display(),
            gid = gid,
            mode = mode(m)
        ),
        SecretError::Empty { what: w, path } => {
            tr!(lang, SecretEmpty, what = what(w), path = path.display())
        }
        SecretError::NotText { what: w, path } => {
            tr!(lang, SecretNotText, what = what(w), path = path.display())
        }
        SecretError::Generate {
            what: w,
            path,
            source,
        } => tr!(
            lang,
            SecretGenerate,
            what = what(w),
            path = path.display(),
            error = source
        ),
    }
}

/// How `read_token` names the shared token in its errors (worded again by [`secret_error`]).
const SHARED_TOKEN: &str = "the API token";

/// Where incidents come from: the store itself, or the running daemon's API when it holds the store.
pub(crate) enum Backend {
    Local(Box<Store>),
    Remote {
        client: Client,
        /// For messages: the store we could not open (None: `--token-file` asked for the API).
        dir: Option<PathBuf>,
        /// For messages: where the token came from.
        token: PathBuf,
        lang: Lang,
    },
}

impl Backend {
    /// With `token_file` (`--token-file`, `SOCWATCH_TOKEN_FILE`: typically an operator's token),
    /// the API: the token says who acts. Otherwise the store; when another process (the daemon)
    /// holds it, or this user may not open it, the API with the shared token.
    pub(crate) fn open(
        config: &Config,
        token_file: Option<&Path>,
        lang: Lang,
    ) -> Result<Backend, String> {
        let dir = &config.daemon.data_dir;
        if let Some(path) = token_file {
            return Self::remote(config, path, "--token-file", None, lang);
        }
        if !dir.exists() {
            return Err(tr!(lang, NoStore, path = dir.display()));
        }
        // Status changes made while the daemon is down are queued for the destinations too.
        let policy = socwatch::alerting::OutboxPolicy::from_config(config);
        match Store::open(dir, policy) {
            Ok(store) => Ok(Backend::Local(Box::new(store))),
            Err(StoreError::Locked(_) | StoreError::Denied(_)) => Self::remote(
                config,
                &api::shared_token_path(config),
                SHARED_TOKEN,
                Some(dir.clone()),
                lang,
            ),
            Err(err) => Err(store_error(&err, lang)),
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
        let busy = where_api(dir.as_deref(), listen, lang);
        let trust = socwatch::security::Trust::new(&config.daemon.data_dir);
        let token = api::read_token(token_path, what, &trust).map_err(|err| {
            if err.is_denied() && dir.is_some() {
                denied_message(token_path, lang)
            } else {
                format!("{busy}: {}", secret_error(&err, lang))
            }
        })?;
        let client = Client::for_config(config, Some(token))
            .map_err(|err| format!("{busy}: {}", client_error(&err, listen, lang)))?;
        Ok(Backend::Remote {
            client,
            dir,
            token: token_path.to_path_buf(),
            lang,
        })
    }

    /// An API error worded for the operator. `id` is the incident asked for, if any: the API's
    /// own messages are English (like its JSON), so the ones the CLI can tell apart by status are
    /// worded here again.
    pub(crate) fn remote_error(&self, err: ClientError, id: Option<&str>, by: bool) -> String {
        let Backend::Remote {
            client,
            dir,
            token,
            lang,
        } = self
        else {
            return err.to_string();
        };
        let (addr, lang) = (client.addr(), *lang);
        match err {
            ClientError::Unreachable(err) => tr!(
                lang,
                ApiNoAnswer,
                where = where_api(dir.as_deref(), &addr.to_string(), lang),
                error = err
            ),
            ClientError::Status { status: 401, .. } => {
                tr!(lang, ApiRefusedToken, addr = addr, path = token.display())
            }
            ClientError::Status { status: 403, .. } if by => {
                tr!(lang, ApiRefusedBy, addr = addr)
            }
            ClientError::Status { status: 404, .. } if id.is_some() => {
                tr!(lang, NotFound, id = id.unwrap_or_default())
            }
            ClientError::Status { status, message } => tr!(
                lang,
                ApiAnswered,
                addr = addr,
                status = status,
                message = message
            ),
            other => client_error(&other, &addr.to_string(), lang),
        }
    }

    /// `filters` for the API, `query` (the same, resolved) for the store.
    fn list(&self, filters: &Filters, query: &Query, lang: Lang) -> Result<Vec<Incident>, String> {
        match self {
            Backend::Local(store) => store.list(query).map_err(|e| store_error(&e, lang)),
            Backend::Remote { client, lang, .. } => {
                let mut filters = filters.clone();
                filters.limit = query.limit.or(Some(api::MAX_LIMIT));
                let found = client
                    .list(&filters)
                    .map_err(|e| self.remote_error(e, None, false))?;
                if query.limit.is_none() && found.len() >= api::MAX_LIMIT {
                    errln!("{}", tr!(*lang, ApiLimit, max = api::MAX_LIMIT));
                }
                Ok(found)
            }
        }
    }

    fn get(&self, id: &str, lang: Lang) -> Result<Incident, String> {
        match self {
            Backend::Local(store) => store.find(id).map_err(|err| store_error(&err, lang)),
            Backend::Remote { client, .. } => {
                check_id(id, lang)?;
                client
                    .get(id)
                    .map_err(|e| self.remote_error(e, Some(id), false))
            }
        }
    }

    fn transition(
        &self,
        id: &str,
        action: Action,
        by: Option<String>,
        note: &str,
        now: Timestamp,
        lang: Lang,
    ) -> Result<Incident, String> {
        match self {
            Backend::Local(store) => {
                let by = by.unwrap_or_else(default_actor);
                store
                    .transition(id, action, &by, note, now)
                    .map_err(|e| store_error(&e, lang))
            }
            // The daemon records who the token belongs to; an explicit --by is sent so that the
            // shared token can refuse it rather than record it silently as "admin".
            Backend::Remote { client, .. } => {
                check_id(id, lang)?;
                client
                    .transition(id, action, by.as_deref(), note)
                    .map_err(|err| match err {
                        // The action makes no sense in the incident's status: say which, in words.
                        ClientError::Status { status: 409, .. } => match client.get(id) {
                            Ok(incident) => store_error(
                                &StoreError::InvalidTransition {
                                    id: incident.id,
                                    action: action.name(),
                                    status: socwatch::store::status_name(incident.status),
                                },
                                lang,
                            ),
                            Err(e) => self.remote_error(e, Some(id), false),
                        },
                        other => self.remote_error(other, Some(id), by.is_some()),
                    })
            }
        }
    }
}

/// Why an unprivileged user cannot reach the running daemon with the shared token.
fn denied_message(path: &Path, lang: Lang) -> String {
    tr!(lang, TokenDenied, path = path.display())
}

/// "the API at ADDR", or, when the store was busy, "cannot open the store at DIR ... and the API at ADDR".
fn where_api(dir: Option<&Path>, addr: &str, lang: Lang) -> String {
    match dir {
        Some(dir) => tr!(lang, StoreBusy, path = dir.display(), addr = addr),
        None => tr!(lang, ApiAt, addr = addr),
    }
}

/// A client error that is not about one answer (see `Backend::remote_error` for those).
fn client_error(err: &ClientError, listen: &str, lang: Lang) -> String {
    match err {
        ClientError::NotLoopback(_) => match listen.parse::<std::net::SocketAddr>() {
            Ok(_) => tr!(lang, ApiNotLoopback, addr = listen),
            Err(_) => tr!(lang, ApiBadAddress, addr = listen),
        },
        ClientError::Unreachable(err) => tr!(
            lang,
            ApiNoAnswer,
            where = tr!(lang, ApiAt, addr = listen),
            error = err
        ),
        ClientError::Status { status, message } => tr!(
            lang,
            ApiAnswered,
            addr = listen,
            status = status,
            message = message
        ),
        ClientError::BadResponse(err) => tr!(lang, ApiBadResponse, error = err),
    }
}

/// The store's own check of an id's length, made before asking the API (whose answer is English).
pub(crate) fn check_id(id: &str, lang: Lang) -> Result<(), String> {
    if id.chars().count() < MIN_ID_PREFIX {
        return Err(store_error(&StoreError::IdTooShort(id.to_string()), lang));
    }
    Ok(())
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
        Err(err) => return usage(tr!(lang, BadFilter, error = err)),
    };
    let backend = match Backend::open(config, token_file, lang) {
        Ok(backend) => backend,
        Err(err) => return fail(err),
    };
    let outcome = match action {
        IncidentsAction::List { filters, json } => {
            backend.list(&filters, &query, lang).map(|found| {
                if json {
                    json_text(&found)
                } else {
                    report::incidents_table(&found, lang)
                }
            })
        }
        IncidentsAction::Show { id, json } => backend.get(&id, lang).map(|incident| {
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
            let found = match backend.list(&filters, &query, lang) {
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
                    Err(err) => fail(tr!(lang, CannotWrite, path = path.display(), error = err)),
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
    let incident = backend.transition(&args.id, action, args.by, &args.note, now, lang)?;
    // Who the store recorded: through the API, the token's owner, not what was asked.
    let by = incident
        .history
        .last()
        .map(|entry| entry.by.clone())
        .unwrap_or_default();
    let status = socwatch::i18n::status_word(incident.status, lang);
    let mut text = tr!(
        lang,
        Transitioned,
        id = incident.id,
        status = status,
        by = by,
        revision = incident.revision
    );
    text.push('\n');
    Ok(text)
}

pub(crate) fn json_text<T: serde::Serialize + ?Sized>(value: &T) -> String {
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
                    .map_err(|err| store_error(&err, lang)),
                Backend::Remote { client, .. } => client
                    .outbox()
                    .map_err(|e| backend.remote_error(e, None, false)),
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
                Backend::Local(store) => store
                    .outbox_requeue_dead()
                    .and_then(|n| {
                        let detail = format!("{n} dead letters requeued");
                        store.log_admin(
                            "outbox_retry",
                            &default_actor(),
                            &detail,
                            Timestamp::now(),
                        )?;
                        Ok(n)
                    })
                    .map_err(|err| store_error(&err, lang)),
                Backend::Remote { client, .. } => client
                    .outbox_retry()
                    .map_err(|e| backend.remote_error(e, None, false)),
            };
            requeued.map(|n| tr!(lang, OutboxRequeued, n = n) + "\n")
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
        None => (api::shared_token_path(config), SHARED_TOKEN),
    };
    let trust = socwatch::security::Trust::new(&config.daemon.data_dir);
    let token = match api::read_token(&path, what, &trust) {
        Ok(token) => token,
        Err(err) if err.is_denied() => return fail(denied_message(&path, lang)),
        Err(err) => return fail(secret_error(&err, lang)),
    };
    let answer = Client::for_config(config, Some(token)).and_then(|client| client.status());
    let status = match answer {
        Ok(status) => status,
        Err(ClientError::Unreachable(err)) => {
            return fail(tr!(lang, NotRunning, addr = listen, error = err));
        }
        Err(err) => return fail(client_error(&err, listen, lang)),
    };
    let text = if json {
        json_text(&status)
    } else {
        report::status_text(&status, lang, Timestamp::now())
    };
    out!("{text}");
    ExitCode::SUCCESS
}
