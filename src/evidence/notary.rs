//! The node's notary: its Ed25519 key (`DATA_DIR/evidence.key`, 32 random bytes hex, mode 0600,
//! made on first start through `security::generated_secret`) and the checkpoints it signs over the
//! store's evidence log, kept incrementally (`merkle::Frontier`) so signing never re-reads the log.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use jiff::Timestamp;

use super::merkle::{self, Frontier};
use super::note::{self, Checkpoint, NoteVerifier, Signer};
use crate::security::{self, SecretError, Trust};
use crate::store::{Store, StoreError};

/// The key's file name in `daemon.data_dir`.
pub const KEY_FILE: &str = "evidence.key";
const WHAT: &str = "the evidence signing key";

pub fn key_path(data_dir: &Path) -> PathBuf {
    data_dir.join(KEY_FILE)
}

fn seed(hex: &str, path: &Path) -> Result<[u8; 32], SecretError> {
    let hex = hex.trim();
    let bytes: Option<Vec<u8>> = (0..hex.len())
        .step_by(2)
        .map(|i| {
            hex.get(i..i + 2)
                .and_then(|b| u8::from_str_radix(b, 16).ok())
        })
        .collect();
    bytes
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .ok_or_else(|| SecretError::NotText {
            what: WHAT.to_string(),
            path: path.to_path_buf(),
        })
}

pub struct Notary {
    signer: Signer,
    /// The tree over the leaves read so far.
    frontier: Mutex<Frontier>,
}

impl Notary {
    /// The daemon's notary: the key in `data_dir`, generated if missing.
    pub fn load(data_dir: &Path, host: &str, trust: &Trust) -> Result<Notary, SecretError> {
        let path = key_path(data_dir);
        let (hex, created) = security::generated_secret(&path, WHAT, trust)?;
        if created {
            tracing::info!(path = %path.display(), "evidence signing key generated");
        }
        Ok(Notary::new(host, seed(&hex, &path)?))
    }

    /// The notary of an existing key, for the CLI (which must not create a key the service user
    /// could not read); None when there is no key yet.
    pub fn existing(
        data_dir: &Path,
        host: &str,
        trust: &Trust,
    ) -> Result<Option<Notary>, SecretError> {
        let path = key_path(data_dir);
        if std::fs::symlink_metadata(&path).is_err() {
            return Ok(None);
        }
        let hex = security::read_text(&path, WHAT, trust)?;
        Ok(Some(Notary::new(host, seed(&hex, &path)?)))
    }

    pub fn new(host: &str, seed: [u8; 32]) -> Notary {
        Notary {
            signer: Signer::new(note::key_name(host), seed),
            frontier: Mutex::new(Frontier::default()),
        }
    }

    pub fn verifier(&self) -> NoteVerifier {
        self.signer.verifier()
    }

    /// Signs and stores a checkpoint of the log as it is now, unless the latest stored one already
    /// covers every leaf. Returns the latest checkpoint (size, note). The first call reads the
    /// whole log; later ones only what was appended since.
    pub fn checkpoint(
        &self,
        store: &Store,
        now: Timestamp,
    ) -> Result<Option<(u64, String)>, StoreError> {
        let mut frontier = self.frontier.lock().unwrap_or_else(|e| e.into_inner());
        let from = frontier.size();
        store.each_evidence_leaf(from, |index, bytes| {
            // A gap is a tampered log: `verify` names it; the notary signs only what is contiguous.
            if index != frontier.size() {
                tracing::error!(
                    expected = frontier.size(),
                    found = index,
                    "evidence log has a gap: run socwatch verify"
                );
                return false;
            }
            frontier.push(merkle::leaf_hash(bytes));
            true
        })?;
        let latest = store.latest_signed_checkpoint()?;
        if latest
            .as_ref()
            .is_some_and(|(size, _)| *size >= frontier.size())
            || frontier.size() == 0
        {
            return Ok(latest);
        }
        let checkpoint = Checkpoint {
            origin: self.signer.name.clone(),
            size: frontier.size(),
            root: frontier.root(),
            time: Some(now),
        };
        let signed = self.signer.sign(&checkpoint);
        store.save_signed_checkpoint(checkpoint.size, &signed)?;
        store.flush()?;
        Ok(Some((checkpoint.size, signed)))
    }
}

/// `socwatch verify` over a store: the log, the records and the checkpoints, checked with
/// `verifier` (the node's key, or one a witness holds).
pub fn verify_store(
    store: &Store,
    verifier: Option<&NoteVerifier>,
) -> Result<super::Report, StoreError> {
    Ok(super::verify(&store.evidence()?, verifier))
}

/// The inclusion proof of incident `id`'s last logged change (a full id or a unique prefix),
/// against the latest signed checkpoint when it covers that change and `verifier` opens it.
pub fn incident_proof(
    store: &Store,
    id: &str,
    verifier: Option<&NoteVerifier>,
) -> Result<Option<super::Proof>, StoreError> {
    let id = match store.resolve_id(id) {
        Ok(id) => id,
        // A purged incident is no longer stored, but its history is still in the log.
        Err(StoreError::NotFound(_)) => id.trim().to_ascii_uppercase(),
        Err(err) => return Err(err),
    };
    let leaves = store.evidence_leaves(0)?;
    let checkpoint = match (verifier, store.latest_signed_checkpoint()?) {
        (Some(verifier), Some((size, note))) => verifier
            .open(&note)
            .ok()
            .map(|checkpoint| (size, note, checkpoint.root)),
        _ => None,
    };
    Ok(super::prove(
        &leaves,
        super::Kind::Incident,
        &id,
        checkpoint,
    ))
}

/// The consistency proof from the log's first `from_size` leaves to the whole log.
pub fn consistency_proof(
    store: &Store,
    from_size: u64,
) -> Result<Option<super::Consistency>, StoreError> {
    Ok(super::consistency(&store.evidence_leaves(0)?, from_size))
}
