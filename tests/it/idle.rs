//! An idle daemon stays idle (issue 11, findings 1 and 2): glob sources cost no CPU while nothing
//! is written, and one edit of a rule file reloads the rules once, not in a loop woken by the
//! reload's own reads of the rule folder.

use std::time::{Duration, Instant};

use socwatch::query::Filters;

use crate::daemon::{Site, line};

/// User plus system CPU time of a process so far, in clock ticks (`/proc/PID/stat` fields 14, 15).
pub(crate) fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // The command name (field 2) may hold spaces; the fields after it are plain numbers.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    let utime: u64 = fields[11].parse().unwrap();
    let stime: u64 = fields[12].parse().unwrap();
    utime + stime
}

/// Clock ticks per second (`getconf CLK_TCK`).
pub(crate) fn ticks_per_second() -> u64 {
    let out = std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .expect("getconf is installed");
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

/// The share of one core a process used over `window` of doing nothing asked of it.
fn idle_share(pid: u32, window: Duration) -> f64 {
    let before = cpu_ticks(pid);
    let started = Instant::now();
    // A bounded observation, not a synchronisation: CPU use is only defined over a time span.
    std::thread::sleep(window);
    let ticks = cpu_ticks(pid) - before;
    ticks as f64 / (ticks_per_second() as f64 * started.elapsed().as_secs_f64())
}

#[test]
fn an_idle_daemon_with_glob_sources_uses_almost_no_cpu() {
    let site = Site::new(false);
    std::fs::create_dir_all(site.path("empty")).unwrap();
    std::fs::create_dir_all(site.path("full")).unwrap();
    for (name, address) in [("a.log", "192.0.2.1"), ("b.log", "192.0.2.2")] {
        let lines: String = (0..3).map(|n| line(n, address) + "\n").collect();
        std::fs::write(site.path("full").join(name), lines).unwrap();
    }
    // A glob over a folder with nothing in it, and one over a folder with files.
    site.add_config(&format!(
        "[[source.file]]\npaths = [\"{0}/empty/*.log\"]\n\n\
         [[source.file]]\npaths = [\"{0}/full/*.log\"]\nstart_at = \"beginning\"\n",
        site.path("").display()
    ));
    let daemon = site.start();
    // Every file read: whatever follows is the daemon doing nothing.
    daemon.wait_for(6);
    let share = idle_share(daemon.pid(), Duration::from_secs(3));
    assert!(
        share < 0.10,
        "an idle daemon used {:.0} % of a core",
        share * 100.0
    );
    // Still awake for what matters: a line written now is read.
    std::fs::write(site.path("full/c.log"), line(0, "192.0.2.3") + "\n").unwrap();
    daemon.wait_for(7);
    daemon.stop();
}

/// How long to watch for log lines that should not come: a looping reload logged every ~330 ms.
const QUIET: Duration = Duration::from_secs(3);

/// Waits until the daemon has logged `text` at least once.
fn wait_logged(daemon: &crate::daemon::Daemon, text: &str, mut meanwhile: impl FnMut()) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while daemon.logged(text) == 0 {
        assert!(Instant::now() < deadline, "never logged '{text}'");
        meanwhile();
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn one_edit_of_a_rule_file_reloads_once_broken_or_valid() {
    let site = Site::new(false);
    let daemon = site.start();
    site.append([line(0, "203.0.113.9")]);
    daemon.wait_for(1);
    let client = daemon.client();
    let count_of = |rule: &str| {
        client
            .list(&Filters::default())
            .unwrap()
            .iter()
            .find(|i| i.rule_id == rule)
            .map_or(0, |i| i.count)
    };
    let wait_count = |rule: &str, above: u64| {
        let deadline = Instant::now() + Duration::from_secs(30);
        while count_of(rule) <= above {
            assert!(Instant::now() < deadline, "rule {rule} did not count");
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    // Lines of both the running and the edited rule, one every 100 ms while the log is watched:
    // every line is one more chance for a looping reload to show.
    let mut n = 1;
    let mut both_lines = || {
        site.append([
            line(n, "203.0.113.9"),
            format!("Nov 22 10:00:00 portal-01 app[1]: edited {n} from 192.0.2.7"),
        ]);
        n += 1;
    };

    // A broken edit: refused once, and the running rules keep counting.
    std::fs::write(
        site.path("rules/test.yml"),
        "id: broken\ntitle: x\nseverity: urgent\nmatch: {message: '('}\n",
    )
    .unwrap();
    wait_logged(&daemon, "rule change refused", || {});
    let observed = Instant::now();
    while observed.elapsed() < QUIET {
        both_lines();
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        daemon.logged("rule change refused"),
        1,
        "one edit, one refusal"
    );
    assert_eq!(
        daemon.logged("rules reloaded"),
        0,
        "the broken set never ran"
    );
    let attempts = count_of("test-attempt");
    both_lines();
    wait_count("test-attempt", attempts);

    // A valid edit: the rule file now holds another rule.
    std::fs::write(
        site.path("rules/test.yml"),
        "id: test-edited\ntitle: edited\nseverity: low\n\
         match: {message: 'edited (?P<n>\\d+) from (?P<src_ip>\\S+)'}\n\
         threshold: {group_by: [src_ip]}\nsuppress: 3650d\n",
    )
    .unwrap();
    wait_logged(&daemon, "rule change validated", || {});
    // The API answers with the running rules from the moment they are validated (issue 10: it
    // used to keep the rules of the start).
    let rules = daemon.client().rules().unwrap();
    let ids: Vec<&str> = rules.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["test-edited"], "/api/v1/rules follows the reload");
    // The pipeline swaps the new rules in with the next line it reads.
    wait_logged(&daemon, "rules reloaded", &mut both_lines);
    let observed = Instant::now();
    while observed.elapsed() < QUIET {
        both_lines();
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(daemon.logged("rule change validated"), 1);
    assert_eq!(daemon.logged("rules reloaded"), 1, "one edit, one reload");
    assert_eq!(daemon.logged("rule change refused"), 1);
    // The new rule applies to the lines appended after the reload; the removed one no longer.
    wait_count("test-edited", 0);
    let attempts = count_of("test-attempt");
    let edited = count_of("test-edited");
    both_lines();
    wait_count("test-edited", edited);
    assert_eq!(
        count_of("test-attempt"),
        attempts,
        "the removed rule still counts"
    );
    daemon.stop();
}
