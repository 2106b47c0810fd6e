//! Issue 10's two regression scenarios, with the real binary and the real `logrotate`: what the
//! daemon finds must not depend on when it was stopped or killed. Lines stamped days in the past
//! (a log caught up after an outage, a host whose clock is off) and lines sharing one timestamp are
//! the cases where restored state used to be judged against the wall clock, or a reopened incident
//! got the id of the stored one and was dropped as a replay.

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};
use socwatch::model::{Incident, rfc3339};
use socwatch::query::Filters;

use crate::daemon::{Daemon, Site};
use crate::support::{ZONE, rfc3164};

#[derive(Debug, Clone, Copy)]
enum Stop {
    Term,
    Kill,
}

impl Stop {
    fn apply(self, daemon: Daemon) {
        match self {
            Stop::Term => daemon.stop(),
            Stop::Kill => daemon.kill9(),
        }
    }
}

/// A local time on a day `days` before today, in the zone the daemon is told to use.
fn days_ago(days: i64, hour: i8, minute: i8, second: i8) -> Timestamp {
    let zone = TimeZone::get(ZONE).unwrap();
    let today: Date = Timestamp::now().to_zoned(zone.clone()).date();
    (today - days.days())
        .at(hour, minute, second, 0)
        .to_zoned(zone)
        .unwrap()
        .timestamp()
}

fn incidents_of(daemon: &Daemon, rule: &str) -> Vec<Incident> {
    daemon
        .client()
        .list(&Filters {
            rule: Some(rule.into()),
            limit: Some(1000),
            ..Filters::default()
        })
        .unwrap()
}

/// (count, first_seen, last_seen) of each incident, oldest first, for readable assertions.
fn summary(found: &[Incident]) -> Vec<(u64, String, String)> {
    let mut rows: Vec<_> = found
        .iter()
        .map(|i| {
            (
                i.count,
                rfc3339::format(&i.first_seen),
                rfc3339::format(&i.last_seen),
            )
        })
        .collect();
    rows.sort_by(|a, b| a.1.cmp(&b.1));
    rows
}

/// Scenario a: 10 failed logins stamped 11 days ago, a stop, 5 more: one ssh-bruteforce incident
/// of 15, as `scan` finds over the same 15 lines, however the daemon was stopped.
fn days_old_bruteforce_across(stop: Stop) {
    let site = Site::new(false).with_token();
    site.use_shipped_rules();
    site.daemon_settings(&format!("timezone = \"{ZONE}\""));
    let at = |second: i8| days_ago(11, 10, 0, second);
    let failure = |second: i8| {
        format!(
            "{} portal-01 sshd[811]: Failed password for admin from 203.0.113.66 port 51514 ssh2",
            rfc3164(at(second))
        )
    };
    let daemon = site.start();
    site.append((10..20).map(failure));
    // Durable before the stop, so that the kill -9 variant tests restored state, not a replay.
    daemon.wait_stored("", 10);
    stop.apply(daemon);
    site.append((20..25).map(failure));
    let daemon = site.start();
    // Counted only once durable, so the incidents below include the last line.
    daemon.wait_stored("", 5);
    let found = summary(&incidents_of(&daemon, "ssh-bruteforce"));
    daemon.stop();
    assert_eq!(
        found,
        vec![(15, rfc3339::format(&at(10)), rfc3339::format(&at(24)))],
        "{stop:?} between 10 and 5 failed logins stamped 11 days ago must leave one ssh-bruteforce \
         incident of 15 (count, first_seen, last_seen), as scan finds"
    );
}

#[test]
fn issue10_days_old_bruteforce_across_sigterm_is_one_incident() {
    days_old_bruteforce_across(Stop::Term);
}

#[test]
fn issue10_days_old_bruteforce_across_kill_9_is_one_incident() {
    days_old_bruteforce_across(Stop::Kill);
}

const EVERY_ATTEMPT: &str = r#"
id: test-every
title: every attempt
severity: high
match:
  message: 'attempt (?P<n>\d+) from (?P<src_ip>\S+)'
threshold: {count: 1, within: 1m, group_by: [src_ip]}
suppress: 24h
"#;

/// Scenario b: 1,200 lines of a count-1 rule that all carry the timestamp `stamp`, four addresses,
/// written in chunks through a `create` rotation, a kill -9, a `copytruncate` and another
/// `create`: the counts must add up to 1,200 in one incident per address.
fn shared_timestamp_through_rotations_and_kill(stamp: Timestamp) {
    let site = Site::new(false).with_token();
    std::fs::write(site.path("rules/test.yml"), EVERY_ATTEMPT).unwrap();
    site.daemon_settings(&format!("timezone = \"{ZONE}\""));
    let text = rfc3164(stamp);
    let line = |n: usize| {
        format!(
            "{text} portal-01 app[1]: attempt {n} from 203.0.113.{}",
            n % 4 + 1
        )
    };
    let daemon = site.start();
    site.append((0..300).map(line));
    daemon.wait_stored("", 300);
    site.logrotate("create");
    site.append((300..600).map(line));
    // Durable before the kill: what follows tests restored state, and the count below is exact.
    daemon.wait_stored("", 600);
    daemon.kill9();
    site.append((600..800).map(line));
    let daemon = site.start();
    // README, "Tailing files": copytruncate loses the lines the tailer had not read before the
    // truncate (they exist only in the unwatched copy). So the test waits until every line is
    // read and stored before truncating; what it checks is the daemon, not that limit.
    daemon.wait_stored("", 200);
    site.logrotate("copytruncate");
    site.append((800..1000).map(line));
    daemon.wait_stored("", 400);
    site.logrotate("create");
    site.append((1000..1200).map(line));
    daemon.wait_stored("", 600);
    let found = incidents_of(&daemon, "test-every");
    daemon.stop();
    let mut per_address: Vec<(String, u64)> = found
        .iter()
        .map(|i| (i.group["src_ip"].clone(), i.count))
        .collect();
    per_address.sort();
    let total: u64 = found.iter().map(|i| i.count).sum();
    let expected: Vec<(String, u64)> = (1..=4).map(|n| (format!("203.0.113.{n}"), 300)).collect();
    assert_eq!(
        (total, per_address.clone()),
        (1200, expected),
        "1,200 lines stamped {text} through create, kill -9, copytruncate and create: the counts \
         must sum to 1,200 in one incident per address; got {total} in {} incidents \
         (address, count): {per_address:?}",
        found.len()
    );
}

#[test]
fn issue10_shared_recent_timestamp_through_rotations_and_kill_counts_every_line() {
    shared_timestamp_through_rotations_and_kill(Timestamp::now() - 60.seconds());
}

#[test]
fn issue10_shared_days_old_timestamp_through_rotations_and_kill_counts_every_line() {
    shared_timestamp_through_rotations_and_kill(days_ago(9, 8, 30, 0));
}

/// Found by the oracle: with two `[[source.file]]` sources in one folder, a line written to one
/// file while the daemon was down must still be read once after the restart (each tailer is given
/// every checkpoint, so the other source's tailer must not take the file for one of its own that
/// was rotated away).
#[test]
fn issue10_a_line_written_while_down_is_read_once_with_two_file_sources_in_one_folder() {
    let site = Site::new(false).with_token();
    site.add_config(&format!(
        "[[source.file]]\npaths = [\"{}\"]\nstart_at = \"beginning\"\n",
        site.path("logs/other.log").display()
    ));
    let app = site.path("logs/app.log").display().to_string();
    let daemon = site.start();
    site.append((0..3).map(|n| crate::daemon::line(n, "203.0.113.40")));
    daemon.wait_stored(&app, 3);
    daemon.stop();
    site.append([crate::daemon::line(3, "203.0.113.40")]);
    let daemon = site.start();
    // Its own tailer resumes app.log at the checkpoint and reads the line (once, or twice at once).
    daemon.wait_stored(&app, 1);
    // The other source reads its own new line only after its first look around, so once that line
    // is stored, everything either tailer took from app.log at the restart is stored too.
    site.append_to("logs/other.log", [crate::daemon::line(0, "203.0.113.41")]);
    daemon.wait_stored(&site.path("logs/other.log").display().to_string(), 1);
    let app_lines = daemon.lines_stored_from(&app);
    let mut counts: Vec<(String, u64)> = incidents_of(&daemon, "test-attempt")
        .iter()
        .map(|i| (i.group["src_ip"].clone(), i.count))
        .collect();
    counts.sort();
    daemon.stop();
    assert_eq!(
        (app_lines, counts.clone()),
        (
            1,
            vec![
                ("203.0.113.40".to_string(), 4),
                ("203.0.113.41".to_string(), 1)
            ]
        ),
        "1 line was written to app.log while the daemon was down; after the restart it was read \
         {app_lines} times (socwatch_lines_read_total of app.log) and the incidents are \
         (address, count) {counts:?}"
    );
}

/// Found by the oracle: a SIGTERM sent as soon as the daemon logged "socwatch running" (systemd
/// has READY=1 by then too) must still drain and exit 0, not end it by the signal's default action.
#[test]
fn issue10_sigterm_right_after_running_exits_cleanly() {
    let site = Site::new(false).with_token();
    let failed: Vec<String> = (0..10)
        .map(|_| site.start().terminate())
        .filter(|exit| !exit.success())
        .map(|exit| exit.to_string())
        .collect();
    assert!(
        failed.is_empty(),
        "SIGTERM right after \"socwatch running\": {} of 10 runs did not exit 0: {failed:?}",
        failed.len()
    );
}
