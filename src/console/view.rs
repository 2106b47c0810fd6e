//! What the console's pages show, as plain values built from store data: the queue's rows (from
//! incidents now, from cases later: only the builders know the source), the severity counters, the
//! histogram and the top lists. Pure: no IO, `now` passed in.

use std::collections::BTreeMap;

use jiff::Timestamp;

use crate::cases::Case;
use crate::i18n::{Msg, status_word};
use crate::model::{Incident, Lang, Severity, Status};
use crate::report::{human_time, severity_name};
use crate::store::Glance;

/// Labels in the page's language: `{{ t.s(Msg::NavQueue) }}` in a template.
#[derive(Debug, Clone, Copy)]
pub struct T(pub Lang);

impl T {
    pub fn s(&self, msg: Msg) -> &'static str {
        msg.template(self.0)
    }

    pub fn severity(&self, severity: Severity) -> &'static str {
        severity_name(severity, self.0)
    }

    pub fn status(&self, status: Status) -> &'static str {
        status_word(status, self.0)
    }

    pub fn is_vi(&self) -> bool {
        self.0 == Lang::Vi
    }

    pub fn code(&self) -> &'static str {
        match self.0 {
            Lang::Vi => "vi",
            Lang::En => "en",
        }
    }
}

/// dd/mm/yyyy HH:mm in Asia/Ho_Chi_Minh.
pub fn when(ts: Timestamp) -> String {
    human_time(ts)
}

/// One line of the queue.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueRow {
    pub href: String,
    pub id: String,
    pub title: String,
    pub severity: Severity,
    pub status: Status,
    pub rule_id: String,
    pub system: String,
    pub host: String,
    /// The attacking address, account or other group value the row is about.
    pub entity: String,
    pub count: u64,
    pub first_seen: String,
    pub last_seen: String,
}

impl QueueRow {
    pub fn from_incident(incident: &Incident, lang: Lang) -> QueueRow {
        QueueRow {
            href: format!("/incidents/{}", incident.id),
            id: incident.id.clone(),
            title: title_of(&incident.title, incident.title_vi.as_deref(), lang).to_string(),
            severity: incident.severity,
            status: incident.status,
            rule_id: incident.rule_id.clone(),
            system: incident.system.clone(),
            host: incident.host.clone(),
            entity: entity_text(&incident.group),
            count: incident.count,
            first_seen: when(incident.first_seen),
            last_seen: when(incident.last_seen),
        }
    }

    /// A case's line: its entity, its incidents' rules, how many incidents.
    pub fn from_case(case: &Case, lang: Lang) -> QueueRow {
        let mut rules: Vec<&str> = Vec::new();
        for incident in &case.incidents {
            if !rules.contains(&incident.rule_id.as_str()) {
                rules.push(&incident.rule_id);
            }
        }
        QueueRow {
            href: format!("/cases/{}", case.id),
            id: case.id.clone(),
            title: title_of(&case.title, case.title_vi.as_deref(), lang).to_string(),
            severity: case.severity,
            status: case.status,
            rule_id: rules.join(", "),
            system: case.system.clone(),
            host: case.host.clone(),
            entity: format!("{}={}", case.entity.kind.field(), case.entity.value),
            count: case.incident_count(),
            first_seen: when(case.first_seen),
            last_seen: when(case.last_seen),
        }
    }

    pub fn severity_class(&self) -> &'static str {
        self.severity.as_str()
    }
}

/// The Vietnamese title when there is one and the page is in Vietnamese.
pub fn title_of<'a>(title: &'a str, title_vi: Option<&'a str>, lang: Lang) -> &'a str {
    match (lang, title_vi) {
        (Lang::Vi, Some(vi)) if !vi.is_empty() => vi,
        _ => title,
    }
}

/// `src_ip=203.0.113.7 user=root`, the preferred entity first.
pub fn entity_text(group: &BTreeMap<String, String>) -> String {
    const FIRST: [&str; 4] = ["src_ip", "c-ip", "user", "host"];
    let mut parts: Vec<String> = FIRST
        .iter()
        .filter_map(|k| group.get(*k).map(|v| format!("{k}={v}")))
        .collect();
    for (k, v) in group {
        if !FIRST.contains(&k.as_str()) {
            parts.push(format!("{k}={v}"));
        }
    }
    parts.join(" ")
}

/// The queue's order: most severe first, then most recently seen, then newest id.
pub fn queue_order(a: &Glance, b: &Glance) -> std::cmp::Ordering {
    (b.severity, b.last_seen, &b.id).cmp(&(a.severity, a.last_seen, &a.id))
}

/// Incidents of the window per severity, most severe first.
#[derive(Debug, Clone, PartialEq)]
pub struct Counter {
    pub severity: Severity,
    pub count: usize,
    /// The queue filtered to this severity and above.
    pub href: String,
}

/// One bar of the histogram: its start and the count per severity (info first).
#[derive(Debug, Clone, PartialEq)]
pub struct Bucket {
    pub start: Timestamp,
    pub counts: [usize; 5],
}

impl Bucket {
    pub fn total(&self) -> usize {
        self.counts.iter().sum()
    }
}

/// Counts `glances` into `n` equal buckets from `since` to `now`.
pub fn histogram(glances: &[Glance], since: Timestamp, now: Timestamp, n: usize) -> Vec<Bucket> {
    let n = n.max(1);
    let span = (now.as_millisecond() - since.as_millisecond()).max(1);
    let width = (span + n as i64 - 1) / n as i64;
    let mut buckets: Vec<Bucket> = (0..n)
        .map(|i| Bucket {
            start: Timestamp::from_millisecond(since.as_millisecond() + width * i as i64)
                .unwrap_or(since),
            counts: [0; 5],
        })
        .collect();
    for glance in glances {
        let offset = glance.last_seen.as_millisecond() - since.as_millisecond();
        if offset < 0 {
            continue;
        }
        let i = ((offset / width) as usize).min(n - 1);
        buckets[i].counts[glance.severity as usize] += 1;
    }
    buckets
}

/// How many bars a window gets: hours for a day, six hours for a week, days beyond.
pub fn bucket_count(span: std::time::Duration) -> usize {
    let hours = span.as_secs() / 3600;
    match hours {
        0..=24 => 24,
        25..=168 => 28,
        _ => 30,
    }
}

/// The histogram as SVG geometry (attributes only: the page's CSP forbids inline styles).
#[derive(Debug, Clone, PartialEq)]
pub struct Chart {
    pub width: usize,
    pub height: usize,
    pub bars: Vec<Bar>,
    pub max: usize,
    pub first_label: String,
    pub last_label: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Bar {
    pub x: usize,
    pub y: usize,
    pub w: usize,
    pub h: usize,
    pub class: &'static str,
    pub title: String,
}

pub fn chart(buckets: &[Bucket], lang: Lang) -> Chart {
    const HEIGHT: usize = 120;
    const BAR: usize = 20;
    const GAP: usize = 4;
    let max = buckets.iter().map(Bucket::total).max().unwrap_or(0);
    let mut bars = Vec::new();
    for (i, bucket) in buckets.iter().enumerate() {
        let x = i * (BAR + GAP);
        let mut top = HEIGHT;
        for severity in Severity::ALL {
            let count = bucket.counts[severity as usize];
            if count == 0 || max == 0 {
                continue;
            }
            let h = (count * HEIGHT).div_ceil(max).min(top);
            top -= h;
            bars.push(Bar {
                x,
                y: top,
                w: BAR,
                h,
                class: severity.as_str(),
                title: format!(
                    "{} · {}: {count}",
                    when(bucket.start),
                    severity_name(severity, lang)
                ),
            });
        }
    }
    Chart {
        width: buckets.len() * (BAR + GAP),
        height: HEIGHT,
        bars,
        max,
        first_label: buckets.first().map(|b| when(b.start)).unwrap_or_default(),
        last_label: buckets.last().map(|b| when(b.start)).unwrap_or_default(),
    }
}

/// A line of a top list: a name, its count, and the queue filtered to it where a filter exists.
#[derive(Debug, Clone, PartialEq)]
pub struct Top {
    pub name: String,
    pub count: usize,
    pub href: Option<String>,
}

/// ATT&CK technique ids of a rule's tags: `attack.t1110.001` → `T1110.001`.
pub fn techniques(tags: &[String]) -> Vec<String> {
    tags.iter()
        .filter_map(|tag| {
            let rest = tag.strip_prefix("attack.")?;
            let t = rest.strip_prefix('t').or_else(|| rest.strip_prefix('T'))?;
            t.chars()
                .next()
                .is_some_and(|c| c.is_ascii_digit())
                .then(|| format!("T{}", t.to_ascii_uppercase()))
        })
        .collect()
}

/// Tactics among a rule's tags: `attack.credential_access` → `credential_access`.
pub fn tactics(tags: &[String]) -> Vec<String> {
    tags.iter()
        .filter_map(|tag| tag.strip_prefix("attack."))
        .filter(|rest| {
            !rest.starts_with(['t', 'T']) || !rest[1..].starts_with(|c: char| c.is_ascii_digit())
        })
        .filter(|rest| {
            !rest.starts_with(['g', 's']) || !rest[1..].starts_with(|c: char| c.is_ascii_digit())
        })
        .map(str::to_string)
        .collect()
}

/// Per technique, the incidents of the rules that carry it, largest first.
pub fn top_techniques(
    rule_counts: &[(String, usize)],
    tags_of: impl Fn(&str) -> Vec<String>,
    n: usize,
) -> Vec<Top> {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for (rule, count) in rule_counts {
        for technique in techniques(&tags_of(rule)) {
            *counts.entry(technique).or_default() += count;
        }
    }
    let mut tops: Vec<Top> = counts
        .into_iter()
        .map(|(name, count)| Top {
            name,
            count,
            href: None,
        })
        .collect();
    tops.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.name.cmp(&b.name)));
    tops.truncate(n);
    tops
}

/// Whether a rule is noisy: at least a third of its incidents, and at least 3, were false positives.
pub fn noisy(hits: usize, false_positives: usize) -> bool {
    false_positives >= 3 && false_positives * 3 >= hits
}

/// Whether a source is silent: no line for an hour, or none since the daemon started.
pub fn silent(last_line: Option<Timestamp>, now: Timestamp) -> bool {
    const SILENT_AFTER: i64 = 3600;
    last_line.is_none_or(|at| now.duration_since(at).as_secs() > SILENT_AFTER)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn glance(minutes_ago: i64, severity: Severity, now: Timestamp) -> Glance {
        Glance {
            last_seen: now - jiff::SignedDuration::from_mins(minutes_ago),
            id: format!("{minutes_ago:026}"),
            severity,
            status: Status::Open,
        }
    }

    #[test]
    fn the_queue_puts_severity_before_time() {
        let now: Timestamp = "2026-11-22T03:00:00Z".parse().unwrap();
        let mut glances = [
            glance(1, Severity::Low, now),
            glance(50, Severity::Critical, now),
            glance(5, Severity::Critical, now),
            glance(2, Severity::High, now),
        ];
        glances.sort_by(queue_order);
        let order: Vec<(Severity, i64)> = glances
            .iter()
            .map(|g| (g.severity, now.duration_since(g.last_seen).as_secs() / 60))
            .collect();
        assert_eq!(
            order,
            [
                (Severity::Critical, 5),
                (Severity::Critical, 50),
                (Severity::High, 2),
                (Severity::Low, 1)
            ]
        );
    }

    #[test]
    fn the_histogram_counts_each_incident_once_in_its_bucket() {
        let now: Timestamp = "2026-11-22T03:00:00Z".parse().unwrap();
        let since = now - jiff::SignedDuration::from_hours(24);
        let glances = vec![
            glance(0, Severity::High, now),
            glance(30, Severity::High, now),
            glance(90, Severity::Low, now),
            glance(24 * 60, Severity::Medium, now),
            glance(24 * 60 + 1, Severity::Medium, now),
        ];
        let buckets = histogram(&glances, since, now, 24);
        assert_eq!(buckets.len(), 24);
        assert_eq!(buckets[23].counts[Severity::High as usize], 2);
        assert_eq!(buckets[22].counts[Severity::Low as usize], 1);
        assert_eq!(buckets[0].counts[Severity::Medium as usize], 1);
        assert_eq!(buckets.iter().map(Bucket::total).sum::<usize>(), 4);
        let chart = chart(&buckets, Lang::Vi);
        assert_eq!(chart.max, 2);
        let tallest = chart.bars.iter().find(|b| b.class == "high").unwrap();
        assert_eq!((tallest.y, tallest.h), (0, chart.height));
        assert!(tallest.title.contains("Cao: 2"), "{}", tallest.title);
    }

    #[test]
    fn techniques_and_tactics_come_from_attack_tags() {
        let tags: Vec<String> = [
            "attack.credential_access",
            "attack.t1110.001",
            "attack.T1078",
            "attack.g0007",
            "cve.2021-44228",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(techniques(&tags), ["T1110.001", "T1078"]);
        assert_eq!(tactics(&tags), ["credential_access"]);
        let tops = top_techniques(
            &[("a".into(), 5), ("b".into(), 2)],
            |rule| match rule {
                "a" => vec!["attack.t1110".into()],
                _ => vec!["attack.t1110".into(), "attack.t1078".into()],
            },
            5,
        );
        let got: Vec<(&str, usize)> = tops.iter().map(|t| (t.name.as_str(), t.count)).collect();
        assert_eq!(got, [("T1110", 7), ("T1078", 2)]);
    }

    #[test]
    fn entities_lead_with_the_attacker() {
        let group: BTreeMap<String, String> =
            [("user", "root"), ("port", "22"), ("src_ip", "203.0.113.7")]
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
        assert_eq!(entity_text(&group), "src_ip=203.0.113.7 user=root port=22");
    }

    #[test]
    fn noisy_rules_and_silent_sources() {
        assert!(noisy(9, 3));
        assert!(!noisy(10, 3));
        assert!(!noisy(2, 2), "two is not a pattern");
        let now: Timestamp = "2026-11-22T03:00:00Z".parse().unwrap();
        assert!(silent(None, now));
        assert!(silent(Some(now - jiff::SignedDuration::from_mins(61)), now));
        assert!(!silent(Some(now - jiff::SignedDuration::from_mins(5)), now));
    }
}
