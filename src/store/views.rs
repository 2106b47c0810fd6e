//! Bounded reads for the console: what the time index says about the incidents of a window (enough
//! to count, chart and order them without loading one), and per-value counts of an index limited to
//! incidents first seen in a window. Neither walks more than the window it is given.

use std::ops::Bound;

use jiff::Timestamp;

use super::keys::{self, ID_LEN, Index, Summary};
use super::{Store, StoreError, T_CASE_TIME, T_CASES, tree_of};
use crate::model::{Severity, Status};

/// One incident or case as its time-index entry tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glance {
    pub last_seen: Timestamp,
    pub id: String,
    pub severity: Severity,
    pub status: Status,
}

/// An index whose values can be tallied per window (the group-field index is left out: its values
/// are attacker addresses and accounts, as many as incidents).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tally {
    Rule,
    Host,
    System,
    Status,
}

impl Tally {
    fn index(self) -> Index {
        match self {
            Tally::Rule => Index::Rule,
            Tally::Host => Index::Host,
            Tally::System => Index::System,
            Tally::Status => Index::Status,
        }
    }
}

/// The smallest id an incident first seen at or after `ts` can have: ids are ULIDs, whose first ten
/// characters are the first event's millisecond and sort like it.
fn lowest_id_since(ts: Timestamp) -> String {
    let ms = u64::try_from(ts.as_millisecond()).unwrap_or(0);
    ulid::Ulid::from_parts(ms, 0).to_string()
}

impl Store {
    /// The time-index entries of incidents last seen in `[since, until]`, newest first, at most
    /// `cap` of them; the flag says whether the window held more. No incident is loaded.
    pub fn glances(
        &self,
        since: Option<Timestamp>,
        until: Option<Timestamp>,
        cap: usize,
    ) -> Result<(Vec<Glance>, bool), StoreError> {
        let mut found = Vec::new();
        for item in self.time_range(since, until).rev() {
            let (key, value) = item?;
            if found.len() >= cap {
                return Ok((found, true));
            }
            let (Some(last_seen), Some(summary)) =
                (keys::time_from_bytes(&key), Summary::decode(&value))
            else {
                continue;
            };
            let Ok(id) = std::str::from_utf8(&key[8..]) else {
                continue;
            };
            found.push(Glance {
                last_seen,
                id: id.to_string(),
                severity: summary.severity,
                status: summary.status,
            });
        }
        Ok((found, false))
    }

    /// [`Store::glances`] over the cases' time index: the console's queue.
    pub fn case_glances(
        &self,
        since: Option<Timestamp>,
        cap: usize,
    ) -> Result<(Vec<Glance>, bool), StoreError> {
        let lower = match since {
            Some(t) => Bound::Included(keys::time_bytes(t).to_vec()),
            None => Bound::Unbounded,
        };
        let mut found = Vec::new();
        for item in self.trees[T_CASE_TIME]
            .range::<Vec<u8>, _>((lower, Bound::Unbounded))
            .rev()
        {
            let (key, value) = item?;
            if found.len() >= cap {
                return Ok((found, true));
            }
            let (Some(last_seen), Some(summary)) =
                (keys::time_from_bytes(&key), Summary::decode(&value))
            else {
                continue;
            };
            let Ok(id) = std::str::from_utf8(&key[8..]) else {
                continue;
            };
            found.push(Glance {
                last_seen,
                id: id.to_string(),
                severity: summary.severity,
                status: summary.status,
            });
        }
        Ok((found, false))
    }

    /// A case as stored, without reading its incidents (their status and counts are as the case
    /// last saw them): what a queue row shows, at one read per case however many incidents it has.
    pub fn case_as_stored(&self, id: &str) -> Result<Option<crate::cases::Case>, StoreError> {
        match self.trees[T_CASES].get(id.as_bytes())? {
            Some(bytes) => {
                serde_json::from_slice(&bytes)
                    .map(Some)
                    .map_err(|err| StoreError::Corrupt {
                        key: id.to_string(),
                        reason: err.to_string(),
                    })
            }
            None => Ok(None),
        }
    }

    /// For each value of `tally`'s index, how many incidents first seen at or after `since` have it,
    /// largest first. Walks the index by distinct value (one seek each) and, inside a value, only the
    /// entries of the window, so the cost is the window's incidents plus the number of values.
    pub fn tally(
        &self,
        tally: Tally,
        since: Timestamp,
    ) -> Result<Vec<(String, usize)>, StoreError> {
        let tree = &self.trees[tree_of(tally.index())];
        let lowest = lowest_id_since(since);
        let mut counts = Vec::new();
        let mut from: Vec<u8> = Vec::new();
        loop {
            let Some(item) = tree
                .range::<Vec<u8>, _>((Bound::Included(from.clone()), Bound::Unbounded))
                .next()
            else {
                break;
            };
            let (key, _) = item?;
            if key.len() < ID_LEN + 1 {
                from = key.to_vec();
                from.push(0);
                continue;
            }
            let value = &key[..key.len() - ID_LEN - 1];
            let mut end = value.to_vec();
            end.push(1);
            let mut lower = value.to_vec();
            lower.push(0);
            lower.extend_from_slice(lowest.as_bytes());
            let n = tree.range(lower..end.clone()).count();
            if n > 0 {
                counts.push((String::from_utf8_lossy(value).into_owned(), n));
            }
            from = end;
        }
        counts.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        Ok(counts)
    }

    /// Ids of the incidents with `status` first seen at or after `since`, at most `cap`.
    pub fn ids_with_status(
        &self,
        status: Status,
        since: Timestamp,
        cap: usize,
    ) -> Result<Vec<String>, StoreError> {
        let prefix = keys::prefix(super::status_name(status));
        let mut lower = prefix.clone();
        lower.extend_from_slice(lowest_id_since(since).as_bytes());
        let mut end = prefix[..prefix.len() - 1].to_vec();
        end.push(1);
        let mut ids = Vec::new();
        for key in self.trees[tree_of(Index::Status)].range(lower..end).keys() {
            let key = key?;
            if let Some(id) = keys::id_after(&key, &prefix) {
                ids.push(id.to_string());
                if ids.len() >= cap {
                    break;
                }
            }
        }
        Ok(ids)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::correlate::Change;
    use crate::store::tests::incident;

    #[test]
    fn glances_and_tallies_stay_inside_their_window() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), Default::default()).unwrap();
        let now: Timestamp = "2026-11-22T03:00:00Z".parse().unwrap();
        let hours = |h: i64| now - jiff::SignedDuration::from_hours(h);
        let incidents = [
            incident("ssh", "203.0.113.1", hours(1), Severity::High, 3),
            incident("ssh", "203.0.113.2", hours(2), Severity::Low, 3),
            incident("web", "203.0.113.3", hours(3), Severity::Critical, 3),
            // Outside a 24-hour window.
            incident("web", "203.0.113.4", hours(30), Severity::High, 3),
            incident("dns", "203.0.113.5", hours(40), Severity::High, 3),
        ];
        let changes: Vec<Change> = incidents
            .iter()
            .map(|i| Change::Opened(Box::new(i.clone())))
            .collect();
        store.apply(&changes, &[]).unwrap();
        let since = hours(24);
        let (glances, capped) = store.glances(Some(since), None, 100).unwrap();
        assert!(!capped);
        let ids: Vec<&str> = glances.iter().map(|g| g.id.as_str()).collect();
        let expected: Vec<&str> = incidents[..3].iter().map(|i| i.id.as_str()).collect();
        assert_eq!(ids, expected, "newest first, the window only");
        assert_eq!(glances[2].severity, Severity::Critical);
        let (two, capped) = store.glances(Some(since), None, 2).unwrap();
        assert_eq!((two.len(), capped), (2, true));

        let rules = store.tally(Tally::Rule, since).unwrap();
        assert_eq!(rules, [("ssh".to_string(), 2), ("web".to_string(), 1)]);
        let all = store.tally(Tally::Rule, hours(100)).unwrap();
        assert_eq!(
            all,
            [
                ("ssh".to_string(), 2),
                ("web".to_string(), 2),
                ("dns".to_string(), 1)
            ]
        );
        assert_eq!(
            store.tally(Tally::System, since).unwrap(),
            [("dvc-portal".to_string(), 3)]
        );
        store
            .transition(
                &incidents[0].id,
                crate::store::Action::FalsePositive,
                "an",
                "",
                now,
            )
            .unwrap();
        assert_eq!(
            store
                .ids_with_status(Status::FalsePositive, since, 10)
                .unwrap(),
            [incidents[0].id.clone()]
        );
        assert!(
            store
                .ids_with_status(Status::FalsePositive, hours(0), 10)
                .unwrap()
                .is_empty(),
            "first seen before the window"
        );
    }
}
