//! `socwatch verify [--json] [--public-key] [--incident ID] [--key KEY]`: checks the evidence log
//! against the store's records and the signed checkpoints (exit 0 intact, 1 with what was altered,
//! removed or reordered), prints the node's verifier key, or an incident's inclusion proof. Opens
//! the store directly, or asks the running daemon's API.

use std::path::Path;
use std::process::ExitCode;

use clap::Args;
use socwatch::config::Config;
use socwatch::evidence::notary::{self, Notary};
use socwatch::evidence::note::NoteVerifier;
use socwatch::evidence::{self, Finding, Proof, Report};
use socwatch::model::Lang;
use socwatch::security::Trust;
use socwatch::tr;

use crate::incidents_cmd::{Backend, fail, json_text, store_error};

#[derive(Args, Debug)]
pub struct Verify {
    /// Print JSON instead of text
    #[arg(long)]
    json: bool,
    /// Print the node's verifier key (C2SP signed-note form) for the recipients of its checkpoints
    #[arg(long)]
    public_key: bool,
    /// The inclusion proof of one incident's last change, checked
    #[arg(long, value_name = "ID")]
    incident: Option<String>,
    /// Check the checkpoints with this verifier key (as printed by --public-key) instead of the key in DATA_DIR
    #[arg(long, value_name = "KEY")]
    key: Option<String>,
    /// Check that the log extends this checkpoint (a signed note a recipient kept), by a consistency proof
    #[arg(long, value_name = "FILE", conflicts_with = "incident")]
    checkpoint: Option<std::path::PathBuf>,
}

fn verifier(config: &Config, args: &Verify, lang: Lang) -> Result<Option<NoteVerifier>, String> {
    if let Some(key) = &args.key {
        return NoteVerifier::parse(key)
            .map(Some)
            .map_err(|err| tr!(lang, EvidenceBadKey, error = err));
    }
    node_verifier(config, lang)
}

/// The node's own verifier key, from the signing key in DATA_DIR (None: it has none yet).
pub(crate) fn node_verifier(config: &Config, lang: Lang) -> Result<Option<NoteVerifier>, String> {
    let dir = &config.daemon.data_dir;
    let host = socwatch::daemon::hostname(config);
    match Notary::existing(dir, &host, &Trust::new(dir)) {
        Ok(found) => Ok(found.map(|notary| notary.verifier())),
        Err(err) => Err(crate::incidents_cmd::secret_error(&err, lang)),
    }
}

fn problem(finding: &Finding, lang: Lang) -> String {
    match finding.problem.as_str() {
        "altered" => tr!(lang, EvidenceAltered),
        "removed" => tr!(lang, EvidenceRemoved),
        "reordered" => tr!(lang, EvidenceReordered),
        "added" => tr!(lang, EvidenceAdded),
        "truncated" => tr!(lang, EvidenceTruncated),
        _ => tr!(lang, EvidenceCheckpoint),
    }
}

pub fn run(config: &Config, lang: Lang, args: Verify, token_file: Option<&Path>) -> ExitCode {
    let verifier = match verifier(config, &args, lang) {
        Ok(verifier) => verifier,
        Err(err) => return fail(err),
    };
    if args.public_key {
        return match verifier {
            Some(verifier) => {
                outln!("{}", verifier.encode());
                ExitCode::SUCCESS
            }
            None => fail(tr!(
                lang,
                EvidenceNoKey,
                path = notary::key_path(&config.daemon.data_dir).display()
            )),
        };
    }
    let backend = match Backend::open(config, token_file, lang) {
        Ok(backend) => backend,
        Err(err) => return fail(err),
    };
    if let Some(path) = &args.checkpoint {
        return extends(&backend, path, verifier.as_ref(), args.json, config, lang);
    }
    match &args.incident {
        Some(id) => {
            let proof = match &backend {
                Backend::Local(store) => notary::incident_proof(store, id, verifier.as_ref())
                    .map_err(|e| store_error(&e, lang)),
                Backend::Remote { client, .. } => client
                    .proof(id)
                    .map(Some)
                    .map_err(|e| backend.remote_error(e, Some(id), false)),
            };
            match proof {
                Ok(Some(proof)) => show_proof(&proof, verifier.as_ref(), args.json, lang),
                Ok(None) => fail(tr!(lang, ProofNone, id = id)),
                Err(err) => fail(err),
            }
        }
        None => {
            let report = match &backend {
                Backend::Local(store) => notary::verify_store(store, verifier.as_ref())
                    .map_err(|e| store_error(&e, lang)),
                Backend::Remote { client, .. } => client
                    .verify()
                    .map_err(|e| backend.remote_error(e, None, false)),
            };
            match report {
                Ok(report) => show_report(&report, args.json, lang),
                Err(err) => fail(err),
            }
        }
    }
}

/// `--checkpoint FILE`: the signed note is opened with the key, then the log must extend the tree
/// it names.
fn extends(
    backend: &Backend,
    path: &Path,
    verifier: Option<&NoteVerifier>,
    json: bool,
    config: &Config,
    lang: Lang,
) -> ExitCode {
    let Some(verifier) = verifier else {
        return fail(tr!(
            lang,
            EvidenceNoKey,
            path = notary::key_path(&config.daemon.data_dir).display()
        ));
    };
    let note = match std::fs::read_to_string(path) {
        Ok(note) => note,
        Err(err) => {
            return fail(tr!(
                lang,
                CheckpointCannotRead,
                path = path.display(),
                error = err
            ));
        }
    };
    let old = match verifier.open(&note) {
        Ok(old) => old,
        Err(err) => {
            return fail(tr!(
                lang,
                CheckpointRefused,
                path = path.display(),
                error = err
            ));
        }
    };
    let proof = match backend {
        Backend::Local(store) => {
            notary::consistency_proof(store, old.size).map_err(|e| store_error(&e, lang))
        }
        Backend::Remote { client, .. } => match client.consistency(old.size) {
            Ok(proof) => Ok(Some(proof)),
            Err(socwatch::api::ClientError::Status { status: 404, .. }) => Ok(None),
            Err(e) => Err(backend.remote_error(e, None, false)),
        },
    };
    let checked = match proof {
        Ok(Some(proof)) => evidence::check_consistency(&old, &proof).map(|()| proof),
        Ok(None) => Err(format!(
            "the log holds fewer leaves than the checkpoint's {}: it was truncated",
            old.size
        )),
        Err(err) => return fail(err),
    };
    match checked {
        Ok(proof) => {
            if json {
                outln!("{}", json_text(&proof));
            } else {
                outln!(
                    "{}",
                    tr!(
                        lang,
                        ConsistencyValid,
                        to = proof.to_size,
                        from = proof.from_size
                    )
                );
            }
            ExitCode::SUCCESS
        }
        Err(err) => fail(tr!(lang, ConsistencyInvalid, error = err)),
    }
}

fn show_report(report: &Report, json: bool, lang: Lang) -> ExitCode {
    if json {
        outln!("{}", json_text(report));
    } else if report.intact {
        outln!(
            "{}",
            tr!(
                lang,
                EvidenceIntact,
                size = report.size,
                records = report.records,
                checkpoints = report.checkpoints,
                verified = report.verified_size
            )
        );
        outln!("{}", tr!(lang, EvidenceRoot, root = report.root));
    } else {
        outln!("{}", tr!(lang, EvidenceTampered, n = report.findings.len()));
        for finding in &report.findings {
            outln!(
                "  {}: {}: {}",
                finding.subject,
                problem(finding, lang),
                finding.detail_in(lang)
            );
        }
    }
    if report.intact {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn show_proof(proof: &Proof, verifier: Option<&NoteVerifier>, json: bool, lang: Lang) -> ExitCode {
    let checked = evidence::check_proof(proof, verifier);
    if json {
        outln!("{}", json_text(proof));
    } else {
        outln!(
            "{}",
            tr!(
                lang,
                ProofHeader,
                id = proof.id,
                index = proof.leaf_index,
                size = proof.tree_size,
                root = proof.root
            )
        );
        outln!("{}", tr!(lang, ProofHistory));
        for leaf in &proof.history {
            outln!(
                "  #{} {} {} r{} {}",
                leaf.index,
                leaf.ts,
                leaf.action,
                leaf.revision,
                leaf.hash
            );
        }
        for step in &proof.proof {
            outln!("  {step}");
        }
        if let Some(note) = &proof.checkpoint {
            outln!("{note}");
        }
    }
    match checked {
        Ok(()) => {
            if !json {
                outln!("{}", tr!(lang, ProofValid));
                if proof.checkpoint.is_some() && verifier.is_some() {
                    outln!("{}", tr!(lang, ProofSigned));
                } else {
                    outln!("{}", tr!(lang, ProofUnsigned));
                }
            }
            ExitCode::SUCCESS
        }
        Err(err) => fail(tr!(lang, ProofInvalid, error = err)),
    }
}
