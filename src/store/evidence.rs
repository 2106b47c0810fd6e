//! The tamper-evident log in the store: `evidence_log` (leaf index, 8 bytes big-endian → leaf
//! JSON; `size` → the leaf count) is written inside the transaction of every change to an
//! incident or a case, so a record never changes without its leaf; `evidence_checkpoints` (tree
//! size → signed note) keeps the checkpoints the daemon signed; `admin_actions` (leaf index as 16
//! digits → [`AdminAction`] JSON) the admin actions, each written with its leaf. See `crate::evidence`.

use jiff::Timestamp;
use sled::transaction::TransactionalTree;

use super::{Store, StoreError, T_CASES, T_EVIDENCE, T_INCIDENTS, TxResult};
use crate::evidence::{self, AdminAction, Evidence, Kind, Leaf, Record};

const SIZE_KEY: &[u8] = b"size";

/// An admin action's id: its leaf's index, 16 digits so that key order is log order.
fn admin_id(index: u64) -> String {
    format!("{index:016}")
}

fn read_size(bytes: Option<&[u8]>) -> u64 {
    bytes
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map(u64::from_be_bytes)
        .unwrap_or(0)
}

/// Appends the leaf of one change (inside the change's transaction). `record` is the record's
/// bytes as stored after the change (before it, for a purge).
pub(super) fn append_tx(
    t: &[TransactionalTree],
    kind: Kind,
    id: &str,
    record: &[u8],
    action: &str,
    now: Timestamp,
) -> TxResult<()> {
    let log = &t[T_EVIDENCE];
    let index = read_size(log.get(SIZE_KEY)?.as_deref());
    let revision = evidence::record_revision(record).unwrap_or(0);
    let leaf = Leaf::new(index, kind, id, revision, record, action, now);
    log.insert(&index.to_be_bytes()[..], leaf.encode())?;
    log.insert(SIZE_KEY, &(index + 1).to_be_bytes()[..])?;
    Ok(())
}

impl Store {
    /// A store that held records before it had a log gets one `baseline` leaf per record, so
    /// verification starts from what was there.
    pub(super) fn baseline_evidence(&self) -> Result<(), StoreError> {
        let log = &self.trees[T_EVIDENCE];
        if log.get(SIZE_KEY)?.is_some() || (self.is_empty() && self.trees[T_CASES].is_empty()) {
            return Ok(());
        }
        let now = Timestamp::now();
        let mut index = 0u64;
        for (tree, kind) in [(T_INCIDENTS, Kind::Incident), (T_CASES, Kind::Case)] {
            for item in self.trees[tree].iter() {
                let (key, bytes) = item?;
                let id = String::from_utf8_lossy(&key);
                let revision = evidence::record_revision(&bytes).unwrap_or(0);
                let leaf = Leaf::new(index, kind, &id, revision, &bytes, evidence::BASELINE, now);
                log.insert(index.to_be_bytes(), leaf.encode())?;
                index += 1;
            }
        }
        log.insert(SIZE_KEY, &index.to_be_bytes()[..])?;
        self.db.flush()?;
        tracing::info!(
            leaves = index,
            "evidence log started from the records already stored"
        );
        Ok(())
    }

    /// Logs an admin action: its record and its leaf in one transaction. Returns the leaf's index.
    pub fn log_admin(
        &self,
        action: &str,
        by: &str,
        detail: &str,
        now: Timestamp,
    ) -> Result<u64, StoreError> {
        use sled::Transactional;
        let log = &self.trees[T_EVIDENCE];
        (log, &self.admin_actions)
            .transaction(|(log, admin)| {
                let index = read_size(log.get(SIZE_KEY)?.as_deref());
                let id = admin_id(index);
                let record = AdminAction {
                    action: action.to_string(),
                    by: by.to_string(),
                    detail: detail.to_string(),
                    ts: crate::model::rfc3339::format(&now),
                    revision: 1,
                };
                let bytes = serde_json::to_vec(&record).expect("admin action serializes");
                let leaf = Leaf::new(index, Kind::Admin, &id, 1, &bytes, action, now);
                admin.insert(id.as_bytes(), bytes)?;
                log.insert(&index.to_be_bytes()[..], leaf.encode())?;
                log.insert(SIZE_KEY, &(index + 1).to_be_bytes()[..])?;
                Ok(index)
            })
            .map_err(super::from_tx)
    }

    /// The admin actions, oldest first, as (id, action).
    pub fn admin_actions(&self) -> Result<Vec<(String, AdminAction)>, StoreError> {
        let mut found = Vec::new();
        for item in self.admin_actions.iter() {
            let (key, bytes) = item?;
            let id = String::from_utf8_lossy(&key).into_owned();
            let action = serde_json::from_slice(&bytes).map_err(|err| StoreError::Corrupt {
                key: id.clone(),
                reason: err.to_string(),
            })?;
            found.push((id, action));
        }
        Ok(found)
    }

    /// Leaves in the log (its counter).
    pub fn evidence_size(&self) -> Result<u64, StoreError> {
        Ok(read_size(self.trees[T_EVIDENCE].get(SIZE_KEY)?.as_deref()))
    }

    /// The leaves from index `from` on, in index order, as (index, bytes).
    pub fn evidence_leaves(&self, from: u64) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        let mut found = Vec::new();
        self.each_evidence_leaf(from, |index, bytes| {
            found.push((index, bytes.to_vec()));
            true
        })?;
        Ok(found)
    }

    /// Calls `visit` with each leaf from index `from` on, in index order, until it returns false:
    /// the notary reads a large log without holding it in memory.
    pub fn each_evidence_leaf(
        &self,
        from: u64,
        mut visit: impl FnMut(u64, &[u8]) -> bool,
    ) -> Result<(), StoreError> {
        for item in self.trees[T_EVIDENCE].range(from.to_be_bytes()..) {
            let (key, value) = item?;
            let Ok(raw) = <[u8; 8]>::try_from(key.as_ref()) else {
                continue;
            };
            if !visit(u64::from_be_bytes(raw), &value) {
                break;
            }
        }
        Ok(())
    }

    /// Stores a checkpoint the notary signed for the first `size` leaves.
    pub fn save_signed_checkpoint(&self, size: u64, note: &str) -> Result<(), StoreError> {
        self.evidence_checkpoints
            .insert(size.to_be_bytes(), note.as_bytes())?;
        Ok(())
    }

    /// Every stored checkpoint, (size, note), smallest first.
    pub fn signed_checkpoints(&self) -> Result<Vec<(u64, String)>, StoreError> {
        self.evidence_checkpoints
            .iter()
            .map(|item| {
                let (key, value) = item?;
                let size = read_size(Some(&key));
                Ok((size, String::from_utf8_lossy(&value).into_owned()))
            })
            .collect()
    }

    /// The latest stored checkpoint, (size, note).
    pub fn latest_signed_checkpoint(&self) -> Result<Option<(u64, String)>, StoreError> {
        match self.evidence_checkpoints.last()? {
            Some((key, value)) => Ok(Some((
                read_size(Some(&key)),
                String::from_utf8_lossy(&value).into_owned(),
            ))),
            None => Ok(None),
        }
    }

    /// Everything `evidence::verify` compares: the leaves, the log's counter, every incident, case
    /// and admin action as stored, and the checkpoints.
    pub fn evidence(&self) -> Result<Evidence, StoreError> {
        let mut records = Vec::new();
        for (tree, kind) in [(T_INCIDENTS, Kind::Incident), (T_CASES, Kind::Case)] {
            for item in self.trees[tree].iter() {
                let (key, bytes) = item?;
                records.push(Record {
                    kind,
                    id: String::from_utf8_lossy(&key).into_owned(),
                    bytes: bytes.to_vec(),
                });
            }
        }
        for item in self.admin_actions.iter() {
            let (key, bytes) = item?;
            records.push(Record {
                kind: Kind::Admin,
                id: String::from_utf8_lossy(&key).into_owned(),
                bytes: bytes.to_vec(),
            });
        }
        Ok(Evidence {
            leaves: self.evidence_leaves(0)?,
            size: self.evidence_size()?,
            records,
            checkpoints: self.signed_checkpoints()?,
        })
    }
}
