//! `socwatch cases list | show | ack | resolve | false-positive | reopen | assign`: cases, from the
//! store or through the running daemon's API, the same way as `incidents` (see `incidents_cmd`).

use std::path::Path;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use jiff::Timestamp;
use socwatch::api::ClientError;
use socwatch::cases::Case;
use socwatch::config::Config;
use socwatch::model::Lang;
use socwatch::query::Filters;
use socwatch::report;
use socwatch::store::{Action, RuleStats, StoreError};
use socwatch::tr;

use crate::incidents_cmd::{
    Backend, Lifecycle, check_id, default_actor, fail, json_text, store_error, usage,
};

/// How many cases `list` shows without `--limit`.
const DEFAULT_LIST_LIMIT: usize = 100;

#[derive(Args, Debug)]
pub struct Assign {
    id: String,
    /// The operator who takes the case; empty to unassign
    #[arg(long, value_name = "NAME")]
    to: String,
    /// Who assigns, when the store is opened directly (default: $SUDO_USER, else $USER)
    #[arg(long, value_name = "NAME")]
    by: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum CasesAction {
    /// Cases matching the filters, most recently active first (default limit 100)
    List {
        #[command(flatten)]
        filters: Filters,
        #[arg(long)]
        json: bool,
    },
    /// One case with its incidents and history
    Show {
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Acknowledge the case and its open incidents
    Ack(Lifecycle),
    /// Resolve the case and its open and acknowledged incidents
    Resolve(Lifecycle),
    /// Close the case and its incidents as a false positive (counted per rule)
    FalsePositive(Lifecycle),
    /// Reopen the case and its closed incidents
    Reopen(Lifecycle),
    /// Give the case to an operator
    Assign(Assign),
}

impl Backend {
    fn cases(&self, filters: &Filters, lang: Lang) -> Result<Vec<Case>, String> {
        match self {
            Backend::Local(store) => {
                let query = filters
                    .to_case_query(Timestamp::now(), Some(DEFAULT_LIST_LIMIT))
                    .map_err(|err| tr!(lang, BadFilter, error = err))?;
                store.cases(&query).map_err(|e| store_error(&e, lang))
            }
            Backend::Remote { client, .. } => {
                let mut filters = filters.clone();
                filters.limit = filters.limit.or(Some(DEFAULT_LIST_LIMIT));
                client
                    .cases(&filters)
                    .map_err(|e| self.remote_error(e, None, false))
            }
        }
    }

    fn case(&self, id: &str, lang: Lang) -> Result<Case, String> {
        match self {
            Backend::Local(store) => store.find_case(id).map_err(|e| store_error(&e, lang)),
            Backend::Remote { client, .. } => {
                check_id(id, lang)?;
                client.case(id).map_err(|e| match e {
                    ClientError::Status { status: 404, .. } => {
                        store_error(&StoreError::CaseNotFound(id.to_string()), lang)
                    }
                    other => self.remote_error(other, None, false),
                })
            }
        }
    }

    fn case_action(
        &self,
        id: &str,
        action: Option<Action>,
        by: Option<String>,
        note: &str,
        to: Option<&str>,
        lang: Lang,
    ) -> Result<Case, String> {
        let now = Timestamp::now();
        match self {
            Backend::Local(store) => {
                let by = by.unwrap_or_else(default_actor);
                match action {
                    Some(action) => store.case_transition(id, action, &by, note, now),
                    None => store.case_assign(id, to, &by, now),
                }
                .map_err(|e| store_error(&e, lang))
            }
            Backend::Remote { client, .. } => {
                check_id(id, lang)?;
                let path = match action {
                    None => "assign",
                    Some(Action::Ack) => "ack",
                    Some(Action::Resolve) => "resolve",
                    Some(Action::FalsePositive) => "false-positive",
                    Some(Action::Reopen) => "reopen",
                };
                client
                    .case_action(id, path, by.as_deref(), note, to)
                    .map_err(|err| match err {
                        ClientError::Status { status: 409, .. } => {
                            match (client.case(id), action) {
                                (Ok(case), Some(action)) => store_error(
                                    &StoreError::InvalidTransition {
                                        id: case.id,
                                        action: action.name(),
                                        status: socwatch::store::status_name(case.status),
                                    },
                                    lang,
                                ),
                                (Err(e), _) => self.remote_error(e, None, false),
                                (Ok(_), None) => String::new(),
                            }
                        }
                        ClientError::Status { status: 404, .. } => {
                            store_error(&StoreError::CaseNotFound(id.to_string()), lang)
                        }
                        other => self.remote_error(other, None, by.is_some()),
                    })
            }
        }
    }
}

pub fn run(
    config: &Config,
    lang: Lang,
    action: CasesAction,
    token_file: Option<&Path>,
) -> ExitCode {
    if let CasesAction::List { filters, .. } = &action
        && let Err(err) = filters.to_case_query(Timestamp::now(), None)
    {
        return usage(tr!(lang, BadFilter, error = err));
    }
    let backend = match Backend::open(config, token_file, lang) {
        Ok(backend) => backend,
        Err(err) => return fail(err),
    };
    let lifecycle = |backend: &Backend, action: Action, args: Lifecycle| {
        let case = backend.case_action(&args.id, Some(action), args.by, &args.note, None, lang)?;
        Ok(transitioned(&case, lang))
    };
    let outcome: Result<String, String> = match action {
        CasesAction::List { filters, json } => backend.cases(&filters, lang).map(|found| {
            if json {
                json_text(&found)
            } else {
                report::cases_table(&found, lang)
            }
        }),
        CasesAction::Show { id, json } => backend.case(&id, lang).map(|case| {
            if json {
                json_text(&case)
            } else {
                report::case_detail(&case, lang)
            }
        }),
        CasesAction::Ack(args) => lifecycle(&backend, Action::Ack, args),
        CasesAction::Resolve(args) => lifecycle(&backend, Action::Resolve, args),
        CasesAction::FalsePositive(args) => lifecycle(&backend, Action::FalsePositive, args),
        CasesAction::Reopen(args) => lifecycle(&backend, Action::Reopen, args),
        CasesAction::Assign(args) => {
            let to = Some(args.to.trim()).filter(|t| !t.is_empty());
            backend
                .case_action(&args.id, None, args.by, "", to, lang)
                .map(|case| {
                    let by = case
                        .history
                        .last()
                        .map(|e| e.by.clone())
                        .unwrap_or_default();
                    let mut text = match &case.assignee {
                        Some(to) => tr!(lang, CaseAssigned, id = case.id, to = to, by = by),
                        None => tr!(lang, CaseUnassigned, id = case.id, by = by),
                    };
                    text.push('\n');
                    text
                })
        }
    };
    drop(backend);
    match outcome {
        Ok(text) => {
            out!("{text}");
            ExitCode::SUCCESS
        }
        Err(err) => fail(err),
    }
}

fn transitioned(case: &Case, lang: Lang) -> String {
    let last = case.history.last();
    let by = last.map(|entry| entry.by.clone()).unwrap_or_default();
    let changed = case
        .incidents
        .iter()
        .filter(|i| i.status == case.status)
        .count();
    let mut text = tr!(
        lang,
        CaseTransitioned,
        id = case.id,
        status = socwatch::i18n::status_word(case.status, lang),
        by = by,
        revision = case.revision,
        n = changed
    );
    text.push('\n');
    text
}

/// `rules list --stats`: for every loaded rule, its incidents, false positives and open incidents
/// as the store (or the running daemon) has them.
pub fn rule_stats(
    config: &Config,
    lang: Lang,
    rules: Vec<std::path::PathBuf>,
    json: bool,
    token_file: Option<&Path>,
) -> ExitCode {
    let set = match crate::load_rules(config, rules, lang) {
        Ok(set) => set,
        Err(code) => return code,
    };
    let backend = match Backend::open(config, token_file, lang) {
        Ok(backend) => backend,
        Err(err) => return fail(err),
    };
    let stored = match &backend {
        Backend::Local(store) => store.rule_stats().map_err(|e| store_error(&e, lang)),
        Backend::Remote { client, .. } => client
            .rule_stats()
            .map_err(|e| backend.remote_error(e, None, false)),
    };
    drop(backend);
    let stored = match stored {
        Ok(stored) => stored,
        Err(err) => return fail(err),
    };
    // Every loaded rule, quiet ones too; then rules that are gone but still have incidents.
    let mut stats: Vec<RuleStats> = set
        .rules()
        .iter()
        .map(|rule| {
            stored
                .iter()
                .find(|s| s.rule_id == rule.id)
                .cloned()
                .unwrap_or_else(|| RuleStats {
                    rule_id: rule.id.clone(),
                    ..RuleStats::default()
                })
        })
        .collect();
    for s in &stored {
        if !stats.iter().any(|known| known.rule_id == s.rule_id) {
            stats.push(s.clone());
        }
    }
    if json {
        out!("{}", json_text(&stats));
    } else {
        out!("{}", report::rule_stats_table(&stats, lang));
    }
    ExitCode::SUCCESS
}
