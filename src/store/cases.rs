//! Cases in the store: `cases` (id → case as JSON) and `case_time` (`last_seen id` → summary),
//! written in the same transaction as the incident changes that shaped them; the incidents of a
//! case are found through `idx_case`. A status change on a case applies to its incidents in the
//! same transaction, recorded in both histories.

use std::collections::HashMap;

use jiff::Timestamp;
use sled::transaction::TransactionalTree;

use super::keys::{self, ID_LEN, Index, Summary};
use super::{
    Action, Store, StoreError, T_CASE_TIME, T_CASES, T_INCIDENTS, TxResult, abort, evidence,
    from_tx, load_tx, resolve_prefix, status_name, tree_of, write_tx,
};
use crate::cases::Case;
use crate::evidence::Kind;
use crate::model::{HistoryEntry, Incident, Severity, Status};
use sled::Transactional;

/// Filters of `cases list` and the console's queue. Empty means everything, newest first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CaseQuery {
    /// Last seen at or after.
    pub since: Option<Timestamp>,
    /// Last seen at or before.
    pub until: Option<Timestamp>,
    pub min_severity: Option<Severity>,
    pub status: Option<Status>,
    /// Holds an incident of this rule.
    pub rule: Option<String>,
    /// Names this host among its entities.
    pub host: Option<String>,
    pub system: Option<String>,
    /// Entity values that must all be named (`src_ip`, `203.0.113.7`).
    pub fields: Vec<(String, String)>,
    /// Case-insensitive text in the title, an entity or an incident's rule.
    pub text: Option<String>,
    pub limit: Option<usize>,
}

impl CaseQuery {
    fn summary_matches(&self, summary: Summary) -> bool {
        self.min_severity.is_none_or(|min| summary.severity >= min)
            && self.status.is_none_or(|s| s == summary.status)
    }

    pub fn matches(&self, case: &Case) -> bool {
        let text = self.text.as_ref().map(|t| t.to_lowercase());
        self.since.is_none_or(|t| case.last_seen >= t)
            && self.until.is_none_or(|t| case.last_seen <= t)
            && self.summary_matches(case_summary(case))
            && self.system.as_ref().is_none_or(|s| *s == case.system)
            && self
                .rule
                .as_ref()
                .is_none_or(|r| case.incidents.iter().any(|i| i.rule_id == *r))
            && self.host.as_ref().is_none_or(|h| {
                case.host == *h
                    || case
                        .entities
                        .get("host")
                        .is_some_and(|hosts| hosts.contains(h))
            })
            && self.fields.iter().all(|(k, v)| {
                case.entities
                    .get(k.as_str())
                    .is_some_and(|values| values.contains(v))
            })
            && text.is_none_or(|text| {
                case.title.to_lowercase().contains(&text)
                    || case
                        .title_vi
                        .as_ref()
                        .is_some_and(|t| t.to_lowercase().contains(&text))
                    || case
                        .entities
                        .values()
                        .flatten()
                        .any(|v| v.to_lowercase().contains(&text))
                    || case.incidents.iter().any(|i| i.rule_id.contains(&text))
            })
    }
}

fn case_summary(case: &Case) -> Summary {
    Summary {
        severity: case.severity,
        status: case.status,
        level: case.level,
    }
}

fn time_entry(case: &Case) -> Vec<u8> {
    let mut key = Vec::with_capacity(8 + ID_LEN);
    key.extend_from_slice(&keys::time_bytes(case.last_seen));
    key.extend_from_slice(case.id.as_bytes());
    key
}

fn decode_case(key: &[u8], bytes: &[u8]) -> Result<Case, StoreError> {
    serde_json::from_slice(bytes).map_err(|err| StoreError::Corrupt {
        key: String::from_utf8_lossy(key).into_owned(),
        reason: err.to_string(),
    })
}

pub(super) fn load_case_tx(tree: &TransactionalTree, id: &str) -> TxResult<Option<Case>> {
    match tree.get(id.as_bytes())? {
        Some(bytes) => match decode_case(id.as_bytes(), &bytes) {
            Ok(case) => Ok(Some(case)),
            Err(err) => abort(err),
        },
        None => Ok(None),
    }
}

pub(super) fn write_case_tx(
    t: &[TransactionalTree],
    before: Option<&Case>,
    after: &Case,
    action: &str,
    now: Timestamp,
) -> TxResult<()> {
    if let Some(before) = before {
        t[T_CASE_TIME].remove(time_entry(before))?;
    }
    t[T_CASE_TIME].insert(time_entry(after), &case_summary(after).encode()[..])?;
    // A Case is strings, numbers and maps: serializing it cannot fail.
    let bytes = serde_json::to_vec(after).expect("case serializes");
    evidence::append_tx(t, Kind::Case, &after.id, &bytes, action, now)?;
    t[T_CASES].insert(after.id.as_bytes(), bytes)?;
    Ok(())
}

/// Deletes a case, logged with `action` (`evidence::PURGED` when its last incident was purged).
pub(super) fn remove_case_tx(
    t: &[TransactionalTree],
    case: &Case,
    action: &str,
    now: Timestamp,
) -> TxResult<()> {
    let bytes = serde_json::to_vec(case).expect("case serializes");
    evidence::append_tx(t, Kind::Case, &case.id, &bytes, action, now)?;
    t[T_CASE_TIME].remove(time_entry(case))?;
    t[T_CASES].remove(case.id.as_bytes())?;
    Ok(())
}

/// Folds the case states a batch produced into the stored cases (inside the batch's transaction).
/// Returns (before, after) per case that changed.
/// A case that absorbed others (`merged_from`) takes their history and deletes them, and the
/// incidents it lists that still name another case are moved to it (those in `written` were
/// already, with the batch's incident changes).
pub(super) fn apply_cases_tx(
    t: &[TransactionalTree],
    cases: &[Case],
    written: &std::collections::HashSet<&str>,
    now: Timestamp,
) -> TxResult<Vec<(Option<Case>, Case)>> {
    let mut touched: Vec<(Option<Case>, Case)> = Vec::new();
    let mut slot_of: HashMap<&str, usize> = HashMap::new();
    let mut absorbed_history: HashMap<&str, Vec<HistoryEntry>> = HashMap::new();
    for core in cases {
        for gone in &core.merged_from {
            if let Some(old) = load_case_tx(&t[T_CASES], gone)? {
                remove_case_tx(t, &old, crate::evidence::MERGED, now)?;
                let history = absorbed_history.entry(core.id.as_str()).or_default();
                history.extend(old.history);
                history.push(HistoryEntry {
                    ts: now,
                    action: "merge".to_string(),
                    by: "socwatch".to_string(),
                    note: format!("case {gone}"),
                });
            }
        }
        for listed in &core.incidents {
            if written.contains(listed.id.as_str()) {
                continue;
            }
            if let Some(incident) = load_tx(&t[T_INCIDENTS], &listed.id)?
                && incident.case_id != core.id
            {
                let mut moved = incident.clone();
                moved.case_id = core.id.clone();
                write_tx(t, Some(&incident), &moved, "moved", now)?;
            }
        }
    }
    for core in cases {
        match slot_of.get(core.id.as_str()) {
            Some(&slot) => {
                touched[slot].1.absorb(core, now);
            }
            None => {
                let stored = load_case_tx(&t[T_CASES], &core.id)?;
                let after = match &stored {
                    Some(stored) => {
                        let mut after = stored.clone();
                        after.absorb(core, now);
                        after
                    }
                    None => core.clone(),
                };
                slot_of.insert(&core.id, touched.len());
                touched.push((stored, after));
            }
        }
    }
    for (_, after) in &mut touched {
        if let Some(history) = absorbed_history.remove(after.id.as_str()) {
            after.history.extend(history);
        }
    }
    touched.retain(|(before, after)| before.as_ref() != Some(after));
    for (before, after) in &mut touched {
        after.revision = before.as_ref().map_or(0, |b| b.revision) + 1;
        let action = if before.is_some() {
            "updated"
        } else {
            "opened"
        };
        write_case_tx(t, before.as_ref(), after, action, now)?;
    }
    Ok(touched)
}

impl Store {
    /// The full id of the one case whose id starts with `given` (at least `MIN_ID_PREFIX` characters).
    pub fn resolve_case_id(&self, given: &str) -> Result<String, StoreError> {
        resolve_prefix(&self.trees[T_CASES], given, StoreError::CaseNotFound)
    }

    /// A case as stored, its listed incidents' status, count and last event read from the incidents.
    pub fn case(&self, id: &str) -> Result<Option<Case>, StoreError> {
        let Some(bytes) = self.trees[T_CASES].get(id.as_bytes())? else {
            return Ok(None);
        };
        let mut case = decode_case(id.as_bytes(), &bytes)?;
        for listed in &mut case.incidents {
            if let Some(incident) = self.get(&listed.id)? {
                listed.status = incident.status;
                listed.count = incident.count;
                listed.last_seen = incident.last_seen;
            }
        }
        Ok(Some(case))
    }

    /// The case named by a full id or a unique prefix of one.
    pub fn find_case(&self, given: &str) -> Result<Case, StoreError> {
        let id = self.resolve_case_id(given)?;
        self.case(&id)?.ok_or(StoreError::CaseNotFound(id))
    }

    /// Every incident of a case, listed in it or not, oldest first.
    pub fn case_incidents(&self, case_id: &str) -> Result<Vec<Incident>, StoreError> {
        let prefix = keys::prefix(case_id);
        let mut found = Vec::new();
        for key in self.trees[tree_of(Index::Case)].scan_prefix(&prefix).keys() {
            let key = key?;
            if let Some(id) = keys::id_after(&key, &prefix)
                && let Some(incident) = self.get(id)?
            {
                found.push(incident);
            }
        }
        found.sort_by(|a, b| (a.first_seen, &a.id).cmp(&(b.first_seen, &b.id)));
        Ok(found)
    }

    /// Cases matching `query`, most recently active first: the time index is walked newest first,
    /// severity and status checked on the entry, and the walk stops at `limit`.
    pub fn cases(&self, query: &CaseQuery) -> Result<Vec<Case>, StoreError> {
        let limit = query.limit.unwrap_or(usize::MAX);
        let mut found = Vec::new();
        if limit == 0 {
            return Ok(found);
        }
        let lower = query
            .since
            .map(|t| keys::time_bytes(t).to_vec())
            .unwrap_or_default();
        let upper = match query.until {
            Some(t) => {
                let mut key = keys::time_bytes(t).to_vec();
                key.extend_from_slice(&[0xff; ID_LEN]);
                key
            }
            None => vec![0xff; 8 + ID_LEN + 1],
        };
        for item in self.trees[T_CASE_TIME].range(lower..=upper).rev() {
            let (key, value) = item?;
            if !Summary::decode(&value).is_some_and(|s| query.summary_matches(s)) {
                continue;
            }
            let Ok(id) = std::str::from_utf8(&key[8..]) else {
                continue;
            };
            if let Some(bytes) = self.trees[T_CASES].get(id.as_bytes())? {
                let case = decode_case(id.as_bytes(), &bytes)?;
                if query.matches(&case) {
                    found.push(case);
                    if found.len() >= limit {
                        break;
                    }
                }
            }
        }
        Ok(found)
    }

    /// Cases in `status`, from the time index's summaries (no case is read).
    pub fn count_cases(&self, status: Status) -> Result<usize, StoreError> {
        let mut n = 0;
        for value in self.trees[T_CASE_TIME].iter().values() {
            if Summary::decode(&value?).is_some_and(|s| s.status == status) {
                n += 1;
            }
        }
        Ok(n)
    }

    /// Cases stored (walks the tree: for tests and status).
    pub fn case_count(&self) -> usize {
        self.trees[T_CASES].len()
    }

    /// An operator's action on a case: the case's status, history and revision, and the same action
    /// on each of its incidents the action applies to (acknowledging acknowledges its open ones,
    /// resolving its open and acknowledged ones, reopening its closed ones), each recorded in the
    /// incident's history too. One transaction; durable when it returns.
    pub fn case_transition(
        &self,
        id: &str,
        action: Action,
        by: &str,
        note: &str,
        now: Timestamp,
    ) -> Result<Case, StoreError> {
        let id = &self.resolve_case_id(id)?;
        let members: Vec<String> = self
            .case_incidents(id)?
            .into_iter()
            .map(|incident| incident.id)
            .collect();
        let policy = self.policy();
        let (after, queued, closed) = self
            .trees
            .as_slice()
            .transaction(|t| {
                let Some(before) = load_case_tx(&t[T_CASES], id)? else {
                    return abort(StoreError::CaseNotFound(id.to_string()));
                };
                let Some(status) = action.target(before.status) else {
                    return abort(StoreError::InvalidTransition {
                        id: id.to_string(),
                        action: action.name(),
                        status: status_name(before.status),
                    });
                };
                let entry = HistoryEntry {
                    ts: now,
                    action: action.name().to_string(),
                    by: by.to_string(),
                    note: note.to_string(),
                };
                let mut touched: Vec<(Option<Incident>, Incident)> = Vec::new();
                for member in &members {
                    let Some(incident) = load_tx(&t[T_INCIDENTS], member)? else {
                        continue;
                    };
                    let Some(target) = action.target(incident.status) else {
                        continue;
                    };
                    let mut changed = incident.clone();
                    changed.status = target;
                    changed.history.push(HistoryEntry {
                        note: if note.is_empty() {
                            format!("case {id}")
                        } else {
                            format!("case {id}: {note}")
                        },
                        ..entry.clone()
                    });
                    changed.revision += 1;
                    write_tx(t, Some(&incident), &changed, action.name(), now)?;
                    touched.push((Some(incident), changed));
                }
                let mut after = before.clone();
                after.status = status;
                after.history.push(entry.clone());
                after.revision += 1;
                for listed in &mut after.incidents {
                    if let Some((_, changed)) = touched.iter().find(|(_, i)| i.id == listed.id) {
                        listed.status = changed.status;
                    }
                }
                write_case_tx(t, Some(&before), &after, action.name(), now)?;
                let mut queued = Self::enqueue_alerts_tx(t, &policy, &touched, now)?;
                let case_touched = [(Some(before), after)];
                queued.extend(Self::enqueue_case_alerts_tx(
                    t,
                    &policy,
                    &case_touched,
                    &touched,
                    now,
                )?);
                let [(_, after)] = case_touched;
                let closed: Vec<String> = touched
                    .iter()
                    .filter(|(_, i)| matches!(i.status, Status::Resolved | Status::FalsePositive))
                    .map(|(_, i)| i.id.clone())
                    .collect();
                Ok((after, queued, closed))
            })
            .map_err(from_tx)?;
        self.after_enqueue(queued)?;
        self.flush()?;
        if let Ok(mut forget) = self.closed.lock() {
            forget.extend(closed);
            if after.is_closed() {
                forget.push(after.id.clone());
            }
        }
        Ok(after)
    }

    /// Assigns a case to an operator (`None` clears it); recorded in its history.
    pub fn case_assign(
        &self,
        id: &str,
        assignee: Option<&str>,
        by: &str,
        now: Timestamp,
    ) -> Result<Case, StoreError> {
        let id = &self.resolve_case_id(id)?;
        let after = self
            .trees
            .as_slice()
            .transaction(|t| {
                let Some(before) = load_case_tx(&t[T_CASES], id)? else {
                    return abort(StoreError::CaseNotFound(id.to_string()));
                };
                let mut after = before.clone();
                after.assignee = assignee.map(str::to_string);
                after.history.push(HistoryEntry {
                    ts: now,
                    action: "assign".to_string(),
                    by: by.to_string(),
                    note: assignee.unwrap_or("").to_string(),
                });
                after.revision += 1;
                write_case_tx(t, Some(&before), &after, "assign", now)?;
                Ok(after)
            })
            .map_err(from_tx)?;
        self.flush()?;
        Ok(after)
    }

    /// Deletes the cases none of whose incidents is stored any more (after a purge): a case is kept
    /// while any of its incidents is. Returns how many were deleted.
    pub(super) fn purge_orphan_cases(
        &self,
        case_ids: &[String],
        now: Timestamp,
    ) -> Result<usize, StoreError> {
        let mut deleted = 0;
        for id in case_ids {
            let prefix = keys::prefix(id);
            if self.trees[tree_of(Index::Case)]
                .scan_prefix(&prefix)
                .keys()
                .next()
                .is_some()
            {
                continue;
            }
            deleted += self
                .trees
                .as_slice()
                .transaction(|t| {
                    let Some(case) = load_case_tx(&t[T_CASES], id)? else {
                        return Ok(0);
                    };
                    remove_case_tx(t, &case, crate::evidence::PURGED, now)?;
                    Ok(1)
                })
                .map_err(from_tx)?;
            if let Ok(mut closed) = self.closed.lock() {
                closed.push(id.clone());
            }
        }
        Ok(deleted)
    }
}
