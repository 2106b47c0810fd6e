//! The tamper-evident log of incident and case changes and admin actions: every stored change is a leaf (canonical
//! JSON naming the record, its revision, the SHA-256 of its stored bytes, the action and the time)
//! of an RFC 6962 Merkle tree (`merkle`), whose heads are signed as C2SP checkpoints (`note`).
//! `verify` compares the log with the records and the signed checkpoints; it is pure: the store
//! hands it the bytes. The signing key and the daemon's checkpoints are in `notary`.

pub mod merkle;
pub mod notary;
pub mod note;

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::i18n::Msg;
use merkle::{Frontier, Hash};
use note::NoteVerifier;

/// What a leaf records a change of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Incident,
    Case,
    /// An operator's or the daemon's admin action (rules reloaded, outbox retried): its record is
    /// an [`AdminAction`] in the store's `admin_actions` tree, named by its leaf's index.
    Admin,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Incident => "incident",
            Kind::Case => "case",
            Kind::Admin => "admin",
        }
    }
}

/// One admin action, as stored and hashed into its leaf. `revision` is always 1: an action is
/// never changed after it was logged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminAction {
    /// `rules_reloaded`, `outbox_retry`.
    pub action: String,
    /// The operator (the API token's owner, the CLI's user) or `socwatch` for the daemon itself.
    pub by: String,
    /// What changed, e.g. `12 rules, sha256 9f2c…` or `3 dead letters requeued`.
    pub detail: String,
    /// When (RFC 3339 in +07:00, like the incidents' times).
    pub ts: String,
    pub revision: u64,
}

/// The action of a leaf that records a retention purge: the record is gone on purpose.
pub const PURGED: &str = "purged";
/// The action of a leaf that records a case deleted because another absorbed it.
pub const MERGED: &str = "merged";
/// The action of the leaves written for the records a store held before it had a log.
pub const BASELINE: &str = "baseline";

/// Whether a leaf says its record was deleted on purpose (retention, or a case merged into another).
pub fn is_removal(action: &str) -> bool {
    action == PURGED || action == MERGED
}

/// One change, as logged. Field order is the canonical JSON's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Leaf {
    /// Its position in the log: a leaf moved elsewhere says where it belongs.
    pub index: u64,
    pub kind: Kind,
    pub id: String,
    pub revision: u64,
    /// Hex SHA-256 of the record's bytes as stored after the change (before a purge).
    pub hash: String,
    /// `opened`, `updated`, an operator's action (`ack`, `resolve`, `assign`…), `purged`, `baseline`.
    pub action: String,
    /// When it was stored (RFC 3339, UTC).
    pub ts: String,
}

impl Leaf {
    pub fn new(
        index: u64,
        kind: Kind,
        id: &str,
        revision: u64,
        record: &[u8],
        action: &str,
        ts: jiff::Timestamp,
    ) -> Leaf {
        Leaf {
            index,
            kind,
            id: id.to_string(),
            revision,
            hash: record_hash(record),
            action: action.to_string(),
            ts: ts.strftime("%Y-%m-%dT%H:%M:%S%.fZ").to_string(),
        }
    }

    /// The leaf's bytes in the log: compact JSON in field order.
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a leaf serializes")
    }
}

/// Hex SHA-256 of a record's stored bytes.
pub fn record_hash(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The revision a stored record (incident or case JSON) names, without decoding the rest.
pub fn record_revision(bytes: &[u8]) -> Option<u64> {
    #[derive(Deserialize)]
    struct Revision {
        revision: u64,
    }
    serde_json::from_slice::<Revision>(bytes)
        .ok()
        .map(|r| r.revision)
}

/// A record as the store holds it now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub kind: Kind,
    pub id: String,
    pub bytes: Vec<u8>,
}

/// Everything `verify` looks at, read from the store.
#[derive(Debug, Clone, Default)]
pub struct Evidence {
    /// (key, bytes) in key order; keys should be 0, 1, 2…
    pub leaves: Vec<(u64, Vec<u8>)>,
    /// The size the log says it has (its counter).
    pub size: u64,
    pub records: Vec<Record>,
    /// (size, signed note) of every stored checkpoint.
    pub checkpoints: Vec<(u64, String)>,
}

/// What is wrong, in words an auditor reads: which record or leaf, and how.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// `altered`, `removed`, `reordered`, `added`, `truncated`, `checkpoint`.
    pub problem: String,
    /// `incident 01J…`, `case 01J…`, `log leaf 12`, `checkpoint 40`.
    pub subject: String,
    /// In English.
    pub detail: String,
    /// The catalogue message (`crate::i18n::Msg`) and its values, so the CLI words `detail` in
    /// the reader's language.
    #[serde(default)]
    pub code: String,
    #[serde(default)]
    pub args: Vec<(String, String)>,
}

impl Finding {
    /// `detail` in `lang`.
    pub fn detail_in(&self, lang: crate::model::Lang) -> String {
        let Some(msg) = Msg::ALL.iter().find(|m| format!("{m:?}") == self.code) else {
            return self.detail.clone();
        };
        let args: Vec<(&str, &dyn std::fmt::Display)> = self
            .args
            .iter()
            .map(|(k, v)| (k.as_str(), v as &dyn std::fmt::Display))
            .collect();
        crate::i18n::text(lang, *msg, &args)
    }
}

/// The answer of `socwatch verify`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    pub intact: bool,
    /// Leaves in the log.
    pub size: u64,
    /// Head of the tree of those leaves (base64).
    pub root: String,
    pub records: usize,
    pub checkpoints: usize,
    /// The largest checkpoint whose signature and head agree with the log.
    pub verified_size: u64,
    pub findings: Vec<Finding>,
}

fn finding(
    problem: &str,
    subject: String,
    msg: Msg,
    args: &[(&str, &dyn std::fmt::Display)],
) -> Finding {
    Finding {
        problem: problem.to_string(),
        subject,
        detail: crate::i18n::text(crate::model::Lang::En, msg, args),
        code: format!("{msg:?}"),
        args: args
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

fn b64(hash: &Hash) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(hash)
}

/// Checks the log against itself (positions, order), against the signed checkpoints (signature,
/// size, head) and against the records (each stored record is the last state logged for it; each
/// record the log says exists is stored, unless the log says it was purged).
/// Without a key (`verifier` None) the checkpoints cannot be checked, which is itself a finding.
pub fn verify(evidence: &Evidence, verifier: Option<&NoteVerifier>) -> Report {
    let mut findings = Vec::new();
    let mut hashes: Vec<Hash> = Vec::with_capacity(evidence.leaves.len());
    // (kind, id) → (position, leaf) of the last leaf naming it.
    let mut last: HashMap<(Kind, String), (u64, Leaf)> = HashMap::new();
    let mut expected = 0u64;
    for (position, (key, bytes)) in evidence.leaves.iter().enumerate() {
        let position = position as u64;
        if *key != expected {
            findings.push(finding(
                "removed",
                format!("log leaf {expected}"),
                Msg::FindLogGap,
                &[
                    ("from", &expected),
                    ("to", key),
                    ("n", &key.saturating_sub(expected)),
                ],
            ));
        }
        expected = key + 1;
        hashes.push(merkle::leaf_hash(bytes));
        let leaf = match serde_json::from_slice::<Leaf>(bytes) {
            Ok(leaf) => leaf,
            Err(err) => {
                findings.push(finding(
                    "altered",
                    format!("log leaf {key}"),
                    Msg::FindNotAnEntry,
                    &[("error", &err)],
                ));
                continue;
            }
        };
        if leaf.index != *key {
            findings.push(finding(
                "reordered",
                format!("log leaf {key}"),
                Msg::FindMoved,
                &[
                    ("kind", &leaf.kind.as_str()),
                    ("id", &leaf.id),
                    ("revision", &leaf.revision),
                    ("was", &leaf.index),
                    ("now", key),
                ],
            ));
        }
        let name = (leaf.kind, leaf.id.clone());
        if let Some((_, before)) = last.get(&name)
            && before.revision > leaf.revision
            && !is_removal(&leaf.action)
        {
            findings.push(finding(
                "reordered",
                format!("log leaf {key}"),
                Msg::FindRevisionBack,
                &[
                    ("kind", &leaf.kind.as_str()),
                    ("id", &leaf.id),
                    ("revision", &leaf.revision),
                    ("before", &before.revision),
                ],
            ));
        }
        last.insert(name, (position, leaf));
    }
    let size = hashes.len() as u64;
    if evidence.size > size {
        findings.push(finding(
            "truncated",
            "log".to_string(),
            Msg::FindCounter,
            &[
                ("counted", &evidence.size),
                ("size", &size),
                ("last", &(evidence.size - 1)),
            ],
        ));
    }

    // Checkpoints, smallest first, against the heads of the log's prefixes in one pass.
    let mut checkpoints: Vec<(u64, &String)> =
        evidence.checkpoints.iter().map(|(s, n)| (*s, n)).collect();
    checkpoints.sort_by_key(|(s, _)| *s);
    let mut frontier = Frontier::default();
    let mut verified_size = 0;
    let mut last_good = 0u64;
    for (stored_size, note) in &checkpoints {
        let Some(verifier) = verifier else {
            findings.push(finding(
                "checkpoint",
                format!("checkpoint {stored_size}"),
                Msg::FindNoKey,
                &[],
            ));
            continue;
        };
        let checkpoint = match verifier.open(note) {
            Ok(c) => c,
            Err(err) => {
                findings.push(finding(
                    "checkpoint",
                    format!("checkpoint {stored_size}"),
                    Msg::FindNote,
                    &[("error", &err)],
                ));
                continue;
            }
        };
        if checkpoint.size > size {
            findings.push(finding(
                "truncated",
                "log".to_string(),
                Msg::FindCheckpointBeyond,
                &[
                    ("covers", &checkpoint.size),
                    ("size", &size),
                    ("last", &(checkpoint.size - 1)),
                ],
            ));
            continue;
        }
        while frontier.size() < checkpoint.size {
            frontier.push(hashes[frontier.size() as usize]);
        }
        if frontier.root() != checkpoint.root {
            findings.push(finding(
                "altered",
                format!("log leaves {last_good} to {}", checkpoint.size - 1),
                Msg::FindHead,
                &[
                    ("size", &checkpoint.size),
                    ("from", &last_good),
                    ("last", &(checkpoint.size - 1)),
                ],
            ));
        } else {
            verified_size = checkpoint.size;
            last_good = checkpoint.size;
        }
    }

    // Records against the last leaf naming each.
    let mut seen: std::collections::HashSet<(Kind, &str)> = Default::default();
    for record in &evidence.records {
        seen.insert((record.kind, record.id.as_str()));
        let subject = format!("{} {}", record.kind.as_str(), record.id);
        let revision = record_revision(&record.bytes);
        match last.get(&(record.kind, record.id.clone())) {
            None => findings.push(finding("added", subject, Msg::FindNotLogged, &[])),
            Some((_, leaf)) if is_removal(&leaf.action) => findings.push(finding(
                "added",
                subject,
                Msg::FindAfterPurge,
                &[("leaf", &leaf.index)],
            )),
            Some((_, leaf)) if leaf.hash != record_hash(&record.bytes) => {
                findings.push(match revision {
                    Some(r) if r != leaf.revision => finding(
                        "altered",
                        subject,
                        Msg::FindRevision,
                        &[
                            ("stored", &r),
                            ("logged", &leaf.revision),
                            ("leaf", &leaf.index),
                        ],
                    ),
                    _ => finding(
                        "altered",
                        subject,
                        Msg::FindBytes,
                        &[("revision", &leaf.revision), ("leaf", &leaf.index)],
                    ),
                });
            }
            Some(_) => {}
        }
    }
    let mut gone: Vec<&(u64, Leaf)> = last
        .iter()
        .filter(|((kind, id), (_, leaf))| {
            !is_removal(&leaf.action) && !seen.contains(&(*kind, id.as_str()))
        })
        .map(|(_, v)| v)
        .collect();
    gone.sort_by_key(|(position, _)| *position);
    for (_, leaf) in gone {
        findings.push(finding(
            "removed",
            format!("{} {}", leaf.kind.as_str(), leaf.id),
            Msg::FindMissing,
            &[("revision", &leaf.revision), ("leaf", &leaf.index)],
        ));
    }
    Report {
        intact: findings.is_empty(),
        size,
        root: b64(&merkle::root(&hashes)),
        records: evidence.records.len(),
        checkpoints: checkpoints.len(),
        verified_size,
        findings,
    }
}

/// An inclusion proof of one record's last logged change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proof {
    pub kind: Kind,
    pub id: String,
    /// The leaf's position and its JSON as logged.
    pub leaf_index: u64,
    pub leaf: Leaf,
    /// Base64 of `SHA-256(0x00 || leaf JSON)`.
    pub leaf_hash: String,
    /// The tree the proof is against: the latest signed checkpoint when it covers the leaf, else
    /// the whole log as it is now.
    pub tree_size: u64,
    pub root: String,
    /// The audit path, base64, leaf to root (RFC 9162).
    pub proof: Vec<String>,
    /// The signed checkpoint of `tree_size`, when there is one.
    pub checkpoint: Option<String>,
    /// Every leaf naming this record, oldest first: its history in the log.
    pub history: Vec<Leaf>,
}

/// The proof for the last leaf naming `(kind, id)` among `leaves`, against `checkpoint` (size,
/// note, head) when it covers that leaf, else against all of `leaves`. None when no leaf names it.
pub fn prove(
    leaves: &[(u64, Vec<u8>)],
    kind: Kind,
    id: &str,
    checkpoint: Option<(u64, String, Hash)>,
) -> Option<Proof> {
    let hashes: Vec<Hash> = leaves.iter().map(|(_, b)| merkle::leaf_hash(b)).collect();
    let history: Vec<(usize, Leaf)> = leaves
        .iter()
        .enumerate()
        .filter_map(|(i, (_, b))| Some((i, serde_json::from_slice::<Leaf>(b).ok()?)))
        .filter(|(_, leaf)| leaf.kind == kind && leaf.id == id)
        .collect();
    let (position, leaf) = history.last()?.clone();
    let (size, note) = match checkpoint {
        Some((size, note, root))
            if (position as u64) < size
                && size <= hashes.len() as u64
                && merkle::root(&hashes[..size as usize]) == root =>
        {
            (size as usize, Some(note))
        }
        _ => (hashes.len(), None),
    };
    let tree = &hashes[..size];
    let path = merkle::inclusion_proof(tree, position)?;
    Some(Proof {
        kind,
        id: id.to_string(),
        leaf_index: position as u64,
        leaf,
        leaf_hash: b64(&tree[position]),
        tree_size: size as u64,
        root: b64(&merkle::root(tree)),
        proof: path.iter().map(b64).collect(),
        checkpoint: note,
        history: history.into_iter().map(|(_, l)| l).collect(),
    })
}

/// Checks a proof as a recipient would: the leaf's hash, its path to the head, and (when given a
/// key) the checkpoint's signature on that head.
pub fn check_proof(proof: &Proof, verifier: Option<&NoteVerifier>) -> Result<(), String> {
    use base64::Engine as _;
    let decode = |s: &str| -> Result<Hash, String> {
        base64::engine::general_purpose::STANDARD
            .decode(s)
            .ok()
            .and_then(|b| Hash::try_from(b).ok())
            .ok_or_else(|| format!("bad hash {s}"))
    };
    let leaf_hash = merkle::leaf_hash(&proof.leaf.encode());
    if b64(&leaf_hash) != proof.leaf_hash {
        return Err("the leaf does not hash to the proof's leaf hash".into());
    }
    let root = decode(&proof.root)?;
    let path = proof
        .proof
        .iter()
        .map(|s| decode(s))
        .collect::<Result<Vec<_>, _>>()?;
    if !merkle::verify_inclusion(&leaf_hash, proof.leaf_index, proof.tree_size, &path, &root) {
        return Err("the audit path does not lead to the head".into());
    }
    if let (Some(verifier), Some(note)) = (verifier, &proof.checkpoint) {
        let checkpoint = verifier.open(note).map_err(|e| e.to_string())?;
        if checkpoint.size != proof.tree_size || checkpoint.root != root {
            return Err("the checkpoint signs another head".into());
        }
    }
    Ok(())
}

/// The proof that the log now extends the tree of its first `from_size` leaves: what a recipient
/// holding an old checkpoint asks for (RFC 9162 consistency proof).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Consistency {
    pub from_size: u64,
    pub to_size: u64,
    /// The head of the log's first `from_size` leaves as the log has them now (base64); a
    /// recipient checks the proof against the root *its* checkpoint names, not this one.
    pub from_root: String,
    pub to_root: String,
    pub proof: Vec<String>,
}

/// The consistency proof from the first `from_size` of `leaves` to all of them; None when the log
/// is shorter than `from_size`.
pub fn consistency(leaves: &[(u64, Vec<u8>)], from_size: u64) -> Option<Consistency> {
    let hashes: Vec<Hash> = leaves.iter().map(|(_, b)| merkle::leaf_hash(b)).collect();
    let from = usize::try_from(from_size).ok()?;
    let path = merkle::consistency_proof(&hashes, from)?;
    Some(Consistency {
        from_size,
        to_size: hashes.len() as u64,
        from_root: b64(&merkle::root(&hashes[..from])),
        to_root: b64(&merkle::root(&hashes)),
        proof: path.iter().map(b64).collect(),
    })
}

/// Whether `proof` shows the log to extend the tree `old` (a checkpoint already opened with the
/// node's key) names.
pub fn check_consistency(old: &note::Checkpoint, proof: &Consistency) -> Result<(), String> {
    use base64::Engine as _;
    let decode = |s: &str| -> Result<Hash, String> {
        base64::engine::general_purpose::STANDARD
            .decode(s)
            .ok()
            .and_then(|b| Hash::try_from(b).ok())
            .ok_or_else(|| format!("bad hash {s}"))
    };
    if proof.from_size != old.size {
        return Err(format!(
            "the proof starts at {} leaves, the checkpoint has {}",
            proof.from_size, old.size
        ));
    }
    let path = proof
        .proof
        .iter()
        .map(|s| decode(s))
        .collect::<Result<Vec<_>, _>>()?;
    if merkle::verify_consistency(
        old.size,
        proof.to_size,
        &old.root,
        &decode(&proof.to_root)?,
        &path,
    ) {
        Ok(())
    } else {
        Err(format!(
            "the log's first {} leaves are not the ones the checkpoint signed: its history was rewritten",
            old.size
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaf(
        index: u64,
        kind: Kind,
        id: &str,
        revision: u64,
        record: &[u8],
        action: &str,
    ) -> (u64, Vec<u8>) {
        let ts = "2026-12-03T10:00:00Z".parse().unwrap();
        (
            index,
            Leaf::new(index, kind, id, revision, record, action, ts).encode(),
        )
    }

    #[test]
    fn records_deleted_on_purpose_are_expected_and_others_are_named() {
        let kept = br#"{"revision":1,"x":1}"#;
        let evidence = Evidence {
            leaves: vec![
                leaf(0, Kind::Case, "A", 1, b"{}", "opened"),
                leaf(1, Kind::Case, "A", 1, b"{}", MERGED),
                leaf(2, Kind::Incident, "I", 1, b"{}", "opened"),
                leaf(3, Kind::Incident, "I", 1, b"{}", PURGED),
                leaf(4, Kind::Case, "B", 1, b"{}", "opened"),
                leaf(5, Kind::Incident, "J", 1, kept, "opened"),
            ],
            size: 6,
            records: vec![Record {
                kind: Kind::Incident,
                id: "J".into(),
                bytes: kept.to_vec(),
            }],
            checkpoints: Vec::new(),
        };
        let report = verify(&evidence, None);
        let named: Vec<(&str, &str)> = report
            .findings
            .iter()
            .map(|f| (f.problem.as_str(), f.subject.as_str()))
            .collect();
        assert_eq!(named, [("removed", "case B")], "{report:#?}");
        assert_eq!(
            report.findings[0].detail_in(crate::model::Lang::Vi),
            "phiên bản 1 đã ghi (mục 4) nhưng bản ghi không còn trong kho, và không có ghi nhận xoá theo thời hạn"
        );
    }
}
