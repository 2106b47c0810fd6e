//! `socwatch report incident ID` and `socwatch report monitoring --since --until`: the facts from
//! the store (or the running daemon's API, like `incidents show`), worded by `socwatch::reports`
//! in `--lang`, written as HTML (default, to stdout) or PDF (`--format pdf`: to `--output FILE`,
//! or to stdout when it is not a terminal).

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand, ValueEnum};
use jiff::Timestamp;
use socwatch::config::Config;
use socwatch::model::Lang;
use socwatch::reports::{self, Authors, Document, html};
use socwatch::tr;

use crate::incidents_cmd::{Backend, check_id, fail, store_error, usage};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    Html,
    Pdf,
}

#[derive(Args, Debug)]
pub struct Output {
    /// html (default) or pdf
    #[arg(long, default_value = "html")]
    format: ReportFormat,
    /// Write here instead of stdout (a PDF goes to stdout only when it is not a terminal)
    #[arg(long, value_name = "FILE")]
    output: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum ReportKind {
    /// The initial incident report: unit, agency, system, cấp độ, detection, status, actions, who
    /// was notified, evidence and its inclusion proof
    Incident {
        id: String,
        #[command(flatten)]
        output: Output,
    },
    /// The periodic monitoring report of the incidents whose first event is in [--since, --until)
    Monitoring {
        /// Start of the period: 7d, 2026-11-01 (that day's start in Asia/Ho_Chi_Minh) or RFC 3339
        #[arg(long, value_name = "TIME")]
        since: String,
        /// End of the period (excluded): 2026-11-30 means the end of that day
        #[arg(long, value_name = "TIME")]
        until: String,
        #[command(flatten)]
        output: Output,
    },
}

pub fn run(config: &Config, lang: Lang, kind: ReportKind, token_file: Option<&Path>) -> ExitCode {
    let now = Timestamp::now();
    let period = match &kind {
        ReportKind::Monitoring { since, until, .. } => {
            let parsed = socwatch::query::parse_when(since, now, false)
                .and_then(|s| socwatch::query::parse_when(until, now, true).map(|u| (s, u)));
            match parsed {
                Ok((since, until)) if since < until => Some((since, until)),
                Ok(_) => return usage(tr!(lang, ReportPeriod)),
                Err(err) => return usage(err),
            }
        }
        ReportKind::Incident { id, .. } => {
            if let Err(err) = check_id(id, lang) {
                return usage(err);
            }
            None
        }
    };
    let (ReportKind::Incident { output, .. } | ReportKind::Monitoring { output, .. }) = &kind;
    if output.format == ReportFormat::Pdf
        && output.output.is_none()
        && std::io::stdout().is_terminal()
    {
        return usage(tr!(lang, ReportPdfTerminal));
    }
    let backend = match Backend::open(config, token_file, lang) {
        Ok(backend) => backend,
        Err(err) => return fail(err),
    };
    let authors = Authors::from_config(config);
    let (doc, template) = match &kind {
        ReportKind::Incident { id, .. } => {
            let verifier = match crate::evidence_cmd::node_verifier(config, lang) {
                Ok(verifier) => verifier,
                Err(err) => return fail(err),
            };
            let data = match &backend {
                Backend::Local(store) => reports::incident_data(store, id, verifier.as_ref())
                    .map_err(|e| store_error(&e, lang)),
                Backend::Remote { client, .. } => client
                    .incident_report(id)
                    .map_err(|e| backend.remote_error(e, Some(id), false)),
            };
            match data {
                Ok(data) => (
                    reports::incident_document(&data, &authors, lang, now),
                    html::Kind::Incident,
                ),
                Err(err) => return fail(err),
            }
        }
        ReportKind::Monitoring { .. } => {
            let (since, until) = period.expect("parsed above");
            let data = match &backend {
                Backend::Local(store) => {
                    reports::monitoring_data(store, since, until).map_err(|e| store_error(&e, lang))
                }
                Backend::Remote { client, .. } => client
                    .monitoring_report(since, until)
                    .map_err(|e| backend.remote_error(e, None, false)),
            };
            match data {
                Ok(data) => (
                    reports::monitoring_document(&data, &authors, lang, now),
                    html::Kind::Monitoring,
                ),
                Err(err) => return fail(err),
            }
        }
    };
    match render(&doc, template, output.format, config) {
        Ok(bytes) => write(&bytes, output.output.as_deref(), lang),
        Err(err) => fail(tr!(lang, ReportTemplate, error = err)),
    }
}

fn render(
    doc: &Document,
    kind: html::Kind,
    format: ReportFormat,
    config: &Config,
) -> Result<Vec<u8>, html::HtmlError> {
    match format {
        ReportFormat::Html => {
            html::render(kind, doc, config.reports.template_dir.as_deref()).map(String::into_bytes)
        }
        ReportFormat::Pdf => Ok(reports::pdf::render(doc)),
    }
}

fn write(bytes: &[u8], output: Option<&Path>, lang: Lang) -> ExitCode {
    match output {
        Some(path) => match std::fs::write(path, bytes) {
            Ok(()) => {
                errln!(
                    "{}",
                    tr!(
                        lang,
                        ReportWritten,
                        path = path.display(),
                        bytes = bytes.len()
                    )
                );
                ExitCode::SUCCESS
            }
            Err(err) => fail(tr!(lang, CannotWriteOutput, error = err)),
        },
        None => {
            let mut out = std::io::stdout().lock();
            match out.write_all(bytes).and_then(|()| out.flush()) {
                Ok(()) => ExitCode::SUCCESS,
                // Whoever reads has all they wanted: nothing failed.
                Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
                Err(err) => fail(tr!(lang, CannotWriteOutput, error = err)),
            }
        }
    }
}
