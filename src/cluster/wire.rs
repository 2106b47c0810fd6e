//! What cluster nodes say to each other through JetStream, and the pure rules they follow: which
//! partition a match belongs to, which worker owns a partition, the message ids that let the server
//! drop a repeat, and how a partition's saved state is read back. No IO: `cluster::edge`,
//! `cluster::worker` and `cluster::console` do the talking.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::cases::Entity;
use crate::model::{Evidence, Incident, rfc3339};
use crate::rules::RuleSet;

/// Matches, one subject per partition (`socwatch.match.<p>`), kept for `cluster::MATCH_RETENTION`.
pub const MATCH_STREAM: &str = "SOCWATCH_MATCHES";
pub const MATCH_SUBJECTS: &str = "socwatch.match.>";
/// Incident changes from the workers (`socwatch.change.<p>`), kept for `cluster::MATCH_RETENTION`.
pub const CHANGE_STREAM: &str = "SOCWATCH_CHANGES";
pub const CHANGE_SUBJECTS: &str = "socwatch.change.>";
/// Each partition's correlation state, as commits (`socwatch.state.<p>`).
pub const STATE_STREAM: &str = "SOCWATCH_STATE";
pub const STATE_SUBJECTS: &str = "socwatch.state.>";
/// The rule set every edge and worker runs (key `rules`), published by the console.
pub const RULES_BUCKET: &str = "socwatch_rules";
pub const RULES_KEY: &str = "rules";
/// One entry per live node (its heartbeat), gone when the node stops beating.
pub const NODES_BUCKET: &str = "socwatch_nodes";
/// One lease per owned partition (`p<n>`), gone when its owner stops renewing it.
pub const OWNERS_BUCKET: &str = "socwatch_owners";
/// The durable consumer of the console on the change stream.
pub const CONSOLE_CONSUMER: &str = "socwatch-console";

pub fn match_subject(partition: u32) -> String {
    format!("socwatch.match.{partition}")
}

pub fn change_subject(partition: u32) -> String {
    format!("socwatch.change.{partition}")
}

pub fn state_subject(partition: u32) -> String {
    format!("socwatch.state.{partition}")
}

pub fn lease_key(partition: u32) -> String {
    format!("p{partition}")
}

/// The durable consumer a partition's owner reads with.
pub fn partition_consumer(partition: u32) -> String {
    format!("socwatch-p{partition}")
}

/// FNV-1a: a hash every node computes alike, whatever its build (std's hasher is seeded per process).
fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for byte in *part {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
        // A separator, so ("ab", "c") and ("a", "bc") differ.
        hash ^= 0x1f;
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

/// The rule whose partition a rule's matches go to: a rule that `requires` another's incident for
/// the same group must be correlated where that other rule is, so a chain of `requires` shares its
/// first rule's partitions.
pub fn partition_rule(rules: &RuleSet, rule: usize) -> usize {
    let mut at = rule;
    // A chain is at most as long as the rule set; a cycle (the loader refuses them) cannot loop here.
    for _ in 0..rules.len() {
        match &rules.rule(at).requires {
            Some(requires) if requires.rule_index != at => at = requires.rule_index,
            _ => break,
        }
    }
    at
}

/// The partition of a match: a hash of its (partition rule, group), so one group's matches are
/// always correlated by one worker, in the order they were published.
pub fn partition_of(rules: &RuleSet, rule: usize, group: &[String], partitions: u32) -> u32 {
    let family = &rules.rule(partition_rule(rules, rule)).id;
    let mut parts: Vec<&[u8]> = vec![family.as_bytes()];
    parts.extend(group.iter().map(|value| value.as_bytes()));
    (fnv1a(&parts) % u64::from(partitions.max(1))) as u32
}

/// Which of `workers` owns `partition` (rendezvous hashing): every node agrees without talking, and
/// a worker joining or leaving moves only the partitions it wins or held.
pub fn owner_of(workers: &[String], partition: u32) -> Option<&str> {
    workers
        .iter()
        .max_by_key(|worker| {
            (
                fnv1a(&[worker.as_bytes(), &partition.to_le_bytes()]),
                worker.as_str(),
            )
        })
        .map(String::as_str)
}

/// One rule hit of one line, as an edge publishes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MatchMsg {
    /// The node and source it came from (`edge-1|file:2049:131:9f3a…`: node, file identity, fingerprint of its first line): the key of `pos`.
    pub origin: String,
    /// Where in `origin` the line ended (a file offset), when the source has positions: a worker
    /// drops what it has already counted from there, however late a repeat comes.
    pub pos: Option<u64>,
    /// Which hit of the line this is.
    pub hit: u32,
    /// The position in `origin` up to which the edge's hits were acknowledged before this one was
    /// sent (they are in the stream before it); none after the edge's start.
    #[serde(default)]
    pub committed: Option<u64>,
    /// The clock the source's event times run on.
    pub clock: String,
    #[serde(with = "rfc3339")]
    pub ts: Timestamp,
    /// The rule's id (indexes differ between rule sets; ids do not).
    pub rule: String,
    pub group: Vec<String>,
    pub distinct: Option<String>,
    pub evidence: Evidence,
    pub host: String,
    pub system: String,
    pub level: u8,
    /// The line's address and account, for the case its incident joins.
    pub entity_fields: Vec<(String, String)>,
}

impl MatchMsg {
    /// The JetStream message id: the same line published again (a retry, a restart before the
    /// checkpoint was saved) gets the same id, and the server drops it within its duplicate window.
    pub fn message_id(&self, run: &str, counter: u64) -> String {
        match self.pos {
            Some(pos) => format!("{}|{pos}|{}", self.origin, self.hit),
            // No position to name it by: only a retry of this very publish repeats it.
            None => format!("{}|{run}|{counter}|{}", self.origin, self.hit),
        }
    }
}

/// What flows on a match subject: matches, and the console's word that an operator closed an
/// incident (so its group starts over), in the order the partition's owner must apply them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PartitionMsg {
    Match(Box<MatchMsg>),
    Forget { incident: String },
}

/// An incident change as a worker publishes it, with what the console's case book needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangeMsg {
    pub partition: u32,
    /// The match stream's sequence of the message that caused it, and which change of it: with
    /// the partition, the change's identity (a worker deriving it again gives the same).
    pub seq: u64,
    pub index: u32,
    /// The partition's committed position when the worker derived it: every change of a match at
    /// or below it was stored in the change stream before this one (the worker commits only once
    /// the server acknowledged them). 0 from a worker before this field.
    #[serde(default)]
    pub committed: u64,
    pub change: WireChange,
    /// The clock of the line that caused it (cases expire on it).
    pub clock: String,
}

impl ChangeMsg {
    pub fn message_id(&self) -> String {
        format!("p{}|{}|{}", self.partition, self.seq, self.index)
    }
}

/// The most bytes of items one stream message carries: well under the server's default limit
/// (1 MB), and few messages per batch, which are published one after the other per subject.
pub const MESSAGE_BYTES: usize = 256 * 1024;

/// Which items one message carries (`range` of the items given to `pack`) and its body, the items
/// joined as a JSON array.
#[derive(Debug, Clone, PartialEq)]
pub struct Packed {
    pub range: std::ops::Range<usize>,
    pub body: Vec<u8>,
}

/// Joins items (each one JSON value) in order into arrays of at most `max_bytes` each; an item
/// bigger than that goes alone.
pub fn pack<T: AsRef<[u8]>>(items: &[T], max_bytes: usize) -> Vec<Packed> {
    let mut packed: Vec<Packed> = Vec::new();
    for (at, item) in items.iter().enumerate() {
        let item = item.as_ref();
        match packed.last_mut() {
            Some(open) if open.body.len() + item.len() < max_bytes => {
                open.body.pop();
                open.body.push(b',');
                open.body.extend_from_slice(item);
                open.body.push(b']');
                open.range.end = at + 1;
            }
            _ => {
                let mut body = Vec::with_capacity(item.len() + 2);
                body.push(b'[');
                body.extend_from_slice(item);
                body.push(b']');
                packed.push(Packed {
                    range: at..at + 1,
                    body,
                });
            }
        }
    }
    packed
}

/// A message's items: the array `pack` made, or one item alone (a closed incident's `Forget`, and
/// everything builds before packing sent).
pub fn unpack<T: serde::de::DeserializeOwned>(payload: &[u8]) -> serde_json::Result<Vec<T>> {
    if payload.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
        serde_json::from_slice(payload)
    } else {
        serde_json::from_slice(payload).map(|one| vec![one])
    }
}

/// Whether a consumer's delivery numbered `delivery` follows the one numbered `last` (0: none yet)
/// with none between: the server numbers a consumer's deliveries one by one.
pub fn next_delivery_in_order(last: u64, delivery: u64) -> bool {
    delivery == last + 1
}

/// Which items of a stream of (position, index) items have been taken: all up to `floor`, and
/// above it each one by itself. Not just the highest taken: a stream's order breaks when a
/// publisher's publishes are cut by a server restart (the client sends what it had buffered once
/// it reconnects, a few in-flight ones before them are lost, and the retry fills that gap after
/// them), so "at or below the highest" would drop the gap. Each item carries the publisher's
/// committed position (everything at or below it was acknowledged, so it came before), which
/// raises the floor; the set above stays about one batch long.
///
/// Used for a partition's changes in the console (position: the match's sequence, floor: the
/// worker's committed position) and for an origin's hits in a worker (position: the line's
/// offset, floor: the edge's acknowledged offset).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Taken {
    floor: u64,
    above: BTreeSet<(u64, u32)>,
}

impl Taken {
    /// Whether the item (`position`, `index`) is new (then it is taken from now on) or one taken
    /// already; `committed` is the publisher's committed position when it was sent (0: unknown).
    pub fn take(&mut self, position: u64, index: u32, committed: u64) -> bool {
        if committed > self.floor {
            self.floor = committed;
            let floor = self.floor;
            self.above.retain(|(at, _)| *at > floor);
        }
        position > self.floor && self.above.insert((position, index))
    }

    /// Everything up to the item (`position`, `index`): the older single mark (the highest
    /// taken), read as that position's items up to that index above the position before it.
    pub fn up_to(position: u64, index: u32) -> Taken {
        Taken {
            floor: position.saturating_sub(1),
            above: (0..=index).map(|i| (position, i)).collect(),
        }
    }

    /// Whether the item (`position`, `index`) comes before one taken above the floor: it arrives
    /// behind later ones (for the logs; `take` decides whether it is new).
    pub fn behind(&self, position: u64, index: u32) -> bool {
        self.above
            .last()
            .is_some_and(|&top| (position, index) < top)
    }

    /// Text for a store or a commit: the floor, then the items above it as position steps from
    /// the previous one (`.index` when not 0): `floor;step,step.index`.
    pub fn encode(&self) -> String {
        let mut text = self.floor.to_string();
        text.push(';');
        let mut previous = self.floor;
        for (n, (seq, index)) in self.above.iter().enumerate() {
            if n > 0 {
                text.push(',');
            }
            text.push_str(&(seq - previous).to_string());
            if *index > 0 {
                text.push('.');
                text.push_str(&index.to_string());
            }
            previous = *seq;
        }
        text
    }

    /// Reads `encode`'s text; also the older single mark `position:index` (see `up_to`).
    pub fn decode(text: &str) -> Option<Taken> {
        if let Some((seq, index)) = text.split_once(':') {
            return Some(Taken::up_to(seq.parse().ok()?, index.parse().ok()?));
        }
        let (floor, rest) = text.split_once(';')?;
        let floor: u64 = floor.parse().ok()?;
        let mut above = BTreeSet::new();
        let mut previous = floor;
        for item in rest.split(',').filter(|item| !item.is_empty()) {
            let (step, index) = match item.split_once('.') {
                Some((step, index)) => (step.parse::<u64>().ok()?, index.parse().ok()?),
                None => (item.parse::<u64>().ok()?, 0),
            };
            previous = previous.checked_add(step)?;
            above.insert((previous, index));
        }
        Some(Taken { floor, above })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum WireChange {
    Opened {
        incident: Box<Incident>,
        entity: Entity,
        /// The rule `requires` another's incident (a follow-up raises the case).
        follow_up: bool,
    },
    Updated {
        id: String,
        rule: String,
        count: u64,
        #[serde(with = "rfc3339")]
        last_seen: Timestamp,
        evidence: Option<Evidence>,
    },
}

/// One commit of a partition's correlation state: the changed entries of the batches up to `pos`.
/// A commit too big for one message is sent in parts; only a commit whose `last` part arrived counts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StateCommit {
    /// Unique per commit, so the parts of a commit a dead owner left unfinished are never taken
    /// for those of the next.
    pub commit: String,
    pub part: u32,
    pub last: bool,
    /// The commit holds the whole state: what came before it is replaced.
    pub snapshot: bool,
    /// The match stream's sequence up to which the state is derived (on the last part).
    pub pos: u64,
    /// Per origin, the hits counted (`Taken::encode`; on the last part, a snapshot's holds them
    /// all).
    #[serde(default)]
    pub taken: Vec<(String, String)>,
    /// Per origin, the last hit counted, as commits before `taken` had it (read, never written).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub seen: Vec<(String, u64, u32)>,
    /// (key, value; none = deleted), values base64.
    pub entries: Vec<(String, Option<String>)>,
}

/// A partition's state as read back from its commits.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PartitionState {
    pub entries: BTreeMap<Vec<u8>, Vec<u8>>,
    pub pos: u64,
    /// Per origin, the hits counted.
    pub seen: HashMap<String, Taken>,
    /// Commits since the latest snapshot (for when to write the next one).
    pub commits_since_snapshot: usize,
}

impl PartitionState {
    /// Folds one complete commit (its parts in order) into the state.
    fn apply(&mut self, parts: &[StateCommit]) {
        if parts.first().is_some_and(|part| part.snapshot) {
            *self = PartitionState::default();
        } else {
            self.commits_since_snapshot += 1;
        }
        for part in parts {
            for (key, value) in &part.entries {
                let Some(key) = unhex(key) else { continue };
                match value.as_deref().and_then(from_base64) {
                    Some(value) => {
                        self.entries.insert(key, value);
                    }
                    None => {
                        self.entries.remove(&key);
                    }
                }
            }
        }
        if let Some(last) = parts.last() {
            self.pos = last.pos;
            for (origin, pos, hit) in &last.seen {
                self.seen.insert(origin.clone(), Taken::up_to(*pos, *hit));
            }
            for (origin, text) in &last.taken {
                match Taken::decode(text) {
                    Some(taken) => {
                        self.seen.insert(origin.clone(), taken);
                    }
                    // Nothing to go by: its repeats are counted again rather than new hits lost.
                    None => {
                        self.seen.remove(origin);
                    }
                }
            }
        }
    }

    /// Whether `hit` is new here (then it counts as counted from now on); a hit without a
    /// position always is (only the server's duplicate window drops its repeats).
    pub fn take(&mut self, hit: &MatchMsg) -> bool {
        let Some(pos) = hit.pos else { return true };
        let committed = hit.committed.unwrap_or(0);
        match self.seen.get_mut(&hit.origin) {
            Some(taken) => taken.take(pos, hit.hit, committed),
            None => self
                .seen
                .entry(hit.origin.clone())
                .or_default()
                .take(pos, hit.hit, committed),
        }
    }

    /// Applies a state delta of the correlator (as the worker keeps its own copy for snapshots).
    pub fn absorb(&mut self, delta: &[(Vec<u8>, Option<Vec<u8>>)]) {
        for (key, value) in delta {
            match value {
                Some(value) => {
                    self.entries.insert(key.clone(), value.clone());
                }
                None => {
                    self.entries.remove(key);
                }
            }
        }
    }
}

/// Reads a partition's state from its commits in stream order: the latest complete snapshot and
/// every complete commit after it; unfinished commits are ignored.
pub fn restore(commits: impl IntoIterator<Item = StateCommit>) -> PartitionState {
    let mut complete: Vec<Vec<StateCommit>> = Vec::new();
    let mut open: HashMap<String, Vec<StateCommit>> = HashMap::new();
    for part in commits {
        let last = part.last;
        let id = part.commit.clone();
        let parts = open.entry(id.clone()).or_default();
        if parts.len() as u32 != part.part {
            // A part out of order belongs to no commit this reader can trust.
            open.remove(&id);
            continue;
        }
        parts.push(part);
        if last {
            complete.push(open.remove(&id).expect("pushed above"));
        }
    }
    let start = complete
        .iter()
        .rposition(|parts| parts.first().is_some_and(|p| p.snapshot))
        .unwrap_or(0);
    let mut state = PartitionState::default();
    for parts in &complete[start..] {
        state.apply(parts);
    }
    state
}

/// Splits one commit's entries into parts of at most `max_bytes` of entries each (at least one part).
pub fn commit_parts(
    commit: &str,
    snapshot: bool,
    pos: u64,
    taken: Vec<(String, String)>,
    entries: Vec<(String, Option<String>)>,
    max_bytes: usize,
) -> Vec<StateCommit> {
    let mut parts: Vec<StateCommit> = Vec::new();
    let mut current: Vec<(String, Option<String>)> = Vec::new();
    let mut size = 0;
    for entry in entries {
        let len = entry.0.len() + entry.1.as_ref().map_or(0, String::len) + 16;
        if size + len > max_bytes && !current.is_empty() {
            parts.push(part(
                commit,
                parts.len(),
                snapshot,
                std::mem::take(&mut current),
            ));
            size = 0;
        }
        size += len;
        current.push(entry);
    }
    parts.push(part(commit, parts.len(), snapshot, current));
    let last = parts.last_mut().expect("one part at least");
    last.last = true;
    last.pos = pos;
    last.taken = taken;
    parts
}

fn part(
    commit: &str,
    index: usize,
    snapshot: bool,
    entries: Vec<(String, Option<String>)>,
) -> StateCommit {
    StateCommit {
        commit: commit.to_string(),
        part: index as u32,
        last: false,
        snapshot,
        pos: 0,
        taken: Vec::new(),
        seen: Vec::new(),
        entries,
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn unhex(text: &str) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|at| u8::from_str_radix(text.get(at..at + 2)?, 16).ok())
        .collect()
}

pub fn to_base64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn from_base64(text: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.decode(text).ok()
}

/// The rule files every node runs, as the console publishes them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleBundle {
    /// SHA-256 over the files, for `cluster status` to show who runs what.
    pub fingerprint: String,
    pub files: Vec<(String, String)>,
}

impl RuleBundle {
    pub fn of(sources: &[crate::rules::RuleSource]) -> RuleBundle {
        use sha2::{Digest, Sha256};
        let mut hasher = Sha256::new();
        for source in sources {
            hasher.update(source.name.as_bytes());
            hasher.update([0]);
            hasher.update(source.text.as_bytes());
            hasher.update([0]);
        }
        RuleBundle {
            fingerprint: hex(&hasher.finalize()),
            files: sources
                .iter()
                .map(|source| (source.name.clone(), source.text.clone()))
                .collect(),
        }
    }

    pub fn sources(&self) -> Vec<crate::rules::RuleSource> {
        self.files
            .iter()
            .map(|(name, text)| crate::rules::RuleSource {
                name: name.clone(),
                text: text.clone(),
            })
            .collect()
    }
}

/// A node's heartbeat entry in the nodes bucket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Heartbeat {
    pub node: String,
    pub role: String,
    #[serde(with = "rfc3339")]
    pub at: Timestamp,
    /// Partitions it owns (workers).
    pub partitions: Vec<u32>,
    /// Messages it published so far (edges: matches; workers: changes).
    pub published: u64,
    /// The rule set it runs.
    pub rules: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn commit(
        id: &str,
        part: u32,
        last: bool,
        snapshot: bool,
        pos: u64,
        kv: &[(&str, Option<&str>)],
    ) -> StateCommit {
        StateCommit {
            commit: id.into(),
            part,
            last,
            snapshot,
            pos,
            // The origin's hits up to `pos` and one more above it, as a worker commits them.
            taken: if last {
                vec![(format!("o-{id}"), format!("{pos};2"))]
            } else {
                Vec::new()
            },
            seen: Vec::new(),
            entries: kv
                .iter()
                .map(|(k, v)| (hex(k.as_bytes()), v.map(|v| to_base64(v.as_bytes()))))
                .collect(),
        }
    }

    fn entries(state: &PartitionState) -> Vec<(String, String)> {
        state
            .entries
            .iter()
            .map(|(k, v)| {
                (
                    String::from_utf8(k.clone()).unwrap(),
                    String::from_utf8(v.clone()).unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn a_restore_takes_the_last_snapshot_and_the_complete_commits_after_it() {
        let state = restore([
            commit(
                "a",
                0,
                true,
                false,
                5,
                &[("g1", Some("1")), ("g2", Some("1"))],
            ),
            commit("b", 0, true, true, 9, &[("g1", Some("snap"))]),
            commit("c", 0, false, false, 0, &[("g1", Some("half"))]),
            // The owner died before c's last part; d (the next owner) is complete.
            commit("d", 0, false, false, 0, &[("g3", Some("3"))]),
            commit("d", 1, true, false, 12, &[("g1", None)]),
        ]);
        assert_eq!(entries(&state), vec![("g3".into(), "3".into())]);
        assert_eq!(state.pos, 12);
        assert_eq!(state.commits_since_snapshot, 1);
        let mut state = state;
        assert!(!state.take(&hit("o-d", Some(12), 0, None)));
        assert!(!state.take(&hit("o-d", Some(14), 0, None)), "taken above");
        assert!(
            !state.take(&hit("o-b", Some(8), 5, None)),
            "the snapshot's hits are kept"
        );
        assert!(state.take(&hit("o-d", Some(13), 0, None)), "the gap is new");
        assert!(
            state.take(&hit("o-d", Some(14), 1, None)),
            "a later hit of the same line is new"
        );
        assert!(
            state.take(&hit("o-d", None, 0, None)) && state.take(&hit("o-d", None, 0, None)),
            "no position, nothing to compare"
        );
    }

    fn hit(origin: &str, pos: Option<u64>, index: u32, committed: Option<u64>) -> MatchMsg {
        MatchMsg {
            origin: origin.into(),
            pos,
            hit: index,
            committed,
            clock: "c".into(),
            ts: Timestamp::UNIX_EPOCH,
            rule: "r".into(),
            group: vec!["10.0.0.1".into()],
            distinct: None,
            evidence: Evidence {
                ts: Timestamp::UNIX_EPOCH,
                source: "s".into(),
                line: "l".into(),
            },
            host: "h".into(),
            system: "s".into(),
            level: 0,
            entity_fields: Vec::new(),
        }
    }

    #[test]
    fn a_worker_counts_the_hits_an_edge_retried_behind_later_ones_once() {
        // An edge's batch of lines ending at offsets 100..=600: 100 and 200 stored, 300 and 400
        // lost on the way when the server restarted, 500 and 600 sent from the client's buffer
        // after it; the edge's retry sends them all again (the server drops what it has).
        let mut state = PartitionState::default();
        let arrivals = [100, 200, 500, 600, 300, 400];
        for pos in arrivals {
            assert!(
                state.take(&hit("e1|file:1:2", Some(pos), 0, Some(50))),
                "{pos}"
            );
        }
        for pos in arrivals {
            assert!(
                !state.take(&hit("e1|file:1:2", Some(pos), 0, Some(50))),
                "{pos} twice"
            );
        }
        // The next batch says everything up to 600 is acknowledged: the set is cut, repeats below
        // still refused; another origin is apart.
        assert!(state.take(&hit("e1|file:1:2", Some(700), 0, Some(600))));
        assert_eq!(state.seen["e1|file:1:2"].encode(), "600;100");
        assert!(!state.take(&hit("e1|file:1:2", Some(300), 0, Some(600))));
        assert!(state.take(&hit("e2|file:1:2", Some(300), 0, None)));
    }

    #[test]
    fn an_older_commit_s_last_hit_reads_as_everything_up_to_it() {
        let mut old = commit("a", 0, true, false, 5, &[]);
        old.taken.clear();
        old.seen = vec![("o-a".into(), 40, 1)];
        let mut state = restore([old]);
        assert!(!state.take(&hit("o-a", Some(40), 1, None)));
        assert!(!state.take(&hit("o-a", Some(39), 0, None)));
        assert!(state.take(&hit("o-a", Some(40), 2, None)));
        assert!(state.take(&hit("o-a", Some(41), 0, None)));
    }

    #[test]
    fn nothing_saved_is_the_empty_state_at_position_zero() {
        assert_eq!(restore(Vec::new()), PartitionState::default());
    }

    #[test]
    fn commit_parts_are_bounded_and_only_the_last_carries_the_position() {
        let entries: Vec<(String, Option<String>)> = (0..100)
            .map(|n| (format!("{n:04}"), Some("x".repeat(100))))
            .collect();
        let parts = commit_parts(
            "c1",
            false,
            42,
            vec![("o".into(), "7;".into())],
            entries.clone(),
            1000,
        );
        assert!(parts.len() > 10, "{}", parts.len());
        assert!(parts.iter().all(|p| p.entries.len() <= 8));
        assert_eq!(parts.iter().filter(|p| p.last).count(), 1);
        assert!(parts.last().unwrap().last && parts.last().unwrap().pos == 42);
        let joined: Vec<_> = parts.iter().flat_map(|p| p.entries.clone()).collect();
        assert_eq!(joined, entries);
        assert_eq!(
            commit_parts("c2", true, 1, Vec::new(), Vec::new(), 1000).len(),
            1
        );
    }

    #[test]
    fn every_worker_agrees_on_owners_and_a_leaving_worker_moves_only_its_partitions() {
        let three: Vec<String> = ["w-a", "w-b", "w-c"].map(String::from).to_vec();
        let two: Vec<String> = ["w-a", "w-c"].map(String::from).to_vec();
        let mut owned = HashMap::new();
        for p in 0..64 {
            let before = owner_of(&three, p).unwrap();
            *owned.entry(before).or_insert(0) += 1;
            let after = owner_of(&two, p).unwrap();
            if before != "w-b" {
                assert_eq!(before, after, "partition {p} moved though its owner stayed");
            }
        }
        assert!(owned.values().all(|n| *n >= 10), "{owned:?}");
        assert_eq!(owner_of(&[], 3), None);
    }

    #[test]
    fn a_gap_filled_after_later_changes_is_taken_and_repeats_are_not() {
        // A worker's first run: 10 and 11 stored, 12 and 13 lost in the connection when the server
        // went down, 14 and 15 sent from the client's buffer once it reconnected; its next run
        // sends everything again (the server drops the repeats, the console might not see that).
        let mut held = Taken::default();
        let arrivals = [
            (10, 0),
            (11, 0),
            (14, 0),
            (15, 0),
            (12, 0),
            (12, 1),
            (13, 0),
        ];
        let taken: Vec<bool> = arrivals
            .iter()
            .map(|&(seq, index)| held.take(seq, index, 0))
            .collect();
        assert_eq!(taken, [true; 7]);
        for &(seq, index) in &arrivals {
            assert!(!held.take(seq, index, 0), "{seq}.{index} twice");
        }
        // After the commit at 15 the set is cut to what lies above it; a late repeat below the floor
        // (a lapsed owner's) is still refused.
        assert!(held.take(20, 0, 15));
        assert_eq!(held.above, BTreeSet::from([(20, 0)]));
        assert!(!held.take(13, 0, 15));
        assert!(!held.take(20, 0, 15));
        assert!(held.take(21, 0, 15));
    }

    #[test]
    fn held_changes_round_trip_through_text() {
        let mut held = Taken::default();
        for (seq, index) in [(105, 0), (107, 0), (107, 1), (240, 2)] {
            held.take(seq, index, 100);
        }
        let text = held.encode();
        assert_eq!(text, "100;5,2,0.1,133.2");
        assert_eq!(Taken::decode(&text), Some(held));
        assert_eq!(Taken::decode("7;").map(|h| h.floor), Some(7));
        assert_eq!(Taken::decode("x;1"), None);
        assert_eq!(Taken::decode("7;1.x"), None);
        // The older single mark: everything up to it counts as held.
        let mut old = Taken::decode("981:2").expect("old mark");
        assert!(!old.take(981, 2, 0));
        assert!(!old.take(980, 0, 0));
        assert!(old.take(981, 3, 0));
    }

    #[test]
    fn items_pack_into_bounded_arrays_in_order_and_unpack_again() {
        let items: Vec<Vec<u8>> = (0..50)
            .map(|n| serde_json::to_vec(&format!("item {n:02}")).unwrap())
            .collect();
        let packed = pack(&items, 100);
        assert!(packed.len() > 5, "{}", packed.len());
        assert!(packed.iter().all(|p| p.body.len() <= 100));
        let mut all: Vec<String> = Vec::new();
        let mut next = 0;
        for message in &packed {
            assert_eq!(message.range.start, next);
            next = message.range.end;
            all.extend(unpack::<String>(&message.body).unwrap());
        }
        assert_eq!(next, 50);
        assert_eq!(
            all,
            (0..50).map(|n| format!("item {n:02}")).collect::<Vec<_>>()
        );
        // Too big for one message: alone. One item sent by itself reads too.
        let big = serde_json::to_vec(&"x".repeat(300)).unwrap();
        assert_eq!(pack(&[big.clone(), big.clone()], 100).len(), 2);
        assert_eq!(unpack::<String>(b" \"one\"").unwrap(), ["one"]);
        assert!(pack::<Vec<u8>>(&[], 100).is_empty());
    }

    #[test]
    fn only_the_next_delivery_is_in_order() {
        assert!(next_delivery_in_order(0, 1));
        assert!(next_delivery_in_order(41, 42));
        // Lost on the way, or numbered again by a restarted server.
        assert!(!next_delivery_in_order(41, 45));
        assert!(!next_delivery_in_order(41, 41));
        assert!(!next_delivery_in_order(41, 3));
    }

    #[test]
    fn hex_round_trips() {
        assert_eq!(unhex(&hex(b"\x00\xffkey")).unwrap(), b"\x00\xffkey");
        assert_eq!(unhex("abc"), None);
    }
}
