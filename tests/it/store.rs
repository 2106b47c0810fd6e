//! The incident store end to end: dedup through the real rules and correlator, durability across a
//! kill -9 of a writer process, and `socwatch incidents` on a real store.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use socwatch::api::{self, ApiState, Auth, Token};
use socwatch::correlate::{Change, Correlator, Limits, Observation, Origin, incident_id};
use socwatch::decode::{DecodeContext, Decoder, prepare_line};
use socwatch::metrics::Metrics;
use socwatch::model::{Evidence, Format, Incident, Severity, SourceMeta, Status};
use socwatch::rules::RuleSet;
use socwatch::store::{Query, Store};

use crate::support::{stderr, stdout};

#[test]
fn ten_thousand_failed_passwords_from_one_address_are_one_incident() {
    let rules = RuleSet::shipped();
    let mut correlator = Correlator::new(&rules, Limits::default());
    let zone = jiff::tz::TimeZone::get("Asia/Ho_Chi_Minh").unwrap();
    let reference: Timestamp = "2026-12-31T00:00:00Z".parse().unwrap();
    let mut decoder = Decoder::new(Format::Syslog, DecodeContext::new(zone, reference));
    let meta = SourceMeta::new("/var/log/auth.log");
    let origin = Origin {
        host: "portal-01",
        system: "dvc-portal",
        level: 3,
        unit: "So KH&CN",
    };
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), Default::default()).unwrap();
    let mut batch = Vec::new();
    for i in 0..10_000u32 {
        let line = format!(
            "Nov 22 {:02}:{:02}:{:02} portal-01 sshd[{}]: Failed password for thanhtra from 203.0.113.7 port {} ssh2",
            i / 3600,
            (i / 60) % 60,
            i % 60,
            800 + i % 50,
            40_000 + i % 20_000
        );
        let prepared = prepare_line(line.as_bytes(), 8192);
        let event = decoder.decode(&prepared.text);
        let ts = event.ts.expect("syslog timestamp");
        for found in rules.matches(&event, &meta) {
            let obs = Observation::of(&rules, &found, &event, &meta, ts, origin);
            batch.extend(correlator.observe(&rules, obs));
        }
        if batch.len() >= 500 {
            store.apply(&batch, &[]).unwrap();
            batch.clear();
        }
    }
    store.apply(&batch, &[]).unwrap();
    store.flush().unwrap();

    let all = store.list(&Query::default()).unwrap();
    assert_eq!(
        all.len(),
        1,
        "{:?}",
        all.iter().map(|i| &i.rule_id).collect::<Vec<_>>()
    );
    let incident = &all[0];
    assert_eq!(incident.rule_id, "ssh-bruteforce");
    assert_eq!(incident.count, 10_000);
    assert_eq!(
        incident.group.get("src_ip").map(String::as_str),
        Some("203.0.113.7")
    );
    assert_eq!(
        incident.evidence.len() as u64 + incident.evidence_omitted,
        10_000
    );
    assert_eq!(
        incident.revision,
        10_000 - 5 + 1,
        "opened at the 5th line, then one per line"
    );
}

const WRITER_ENV: &str = "SOCWATCH_TEST_CRASH_WRITER";

/// Not a test on its own: the writer process of `acknowledged_writes_survive_kill_9`, which re-runs
/// this test binary with the store's folder in `WRITER_ENV`. It applies batches forever, and after
/// each flush prints `ack ID REVISION` for every incident of the batch.
#[test]
fn crash_writer_child() {
    let Some(dir) = std::env::var_os(WRITER_ENV) else {
        return;
    };
    let store = Store::open(Path::new(&dir), Default::default()).unwrap();
    let base: Timestamp = "2026-11-22T03:00:00Z".parse().unwrap();
    let mut live: Vec<Incident> = Vec::new();
    let mut out = std::io::stdout().lock();
    for round in 0..100_000i64 {
        let mut changes = Vec::new();
        for incident in &live {
            let last_seen = base + SignedDuration::from_secs(round);
            changes.push(Change::Updated {
                id: incident.id.clone(),
                rule: 0,
                count: incident.count + 1,
                last_seen,
                evidence: Some(evidence(last_seen, &format!("round {round}"))),
            });
        }
        for k in 0..20 {
            let ip = format!("10.{}.{}.{}", round / 256 % 256, round % 256, k);
            let first_seen = base + SignedDuration::from_secs(round);
            changes.push(Change::Opened(Box::new(sample(
                "ssh-bruteforce",
                &ip,
                first_seen,
                Severity::High,
            ))));
        }
        let stored = store.apply(&changes, &[]).unwrap();
        store.flush().unwrap();
        for incident in &stored {
            writeln!(out, "ack {} {}", incident.id, incident.revision).unwrap();
        }
        out.flush().unwrap();
        // Keep updating the newest few, so revisions grow while new incidents keep arriving.
        live = stored.into_iter().rev().take(10).collect();
    }
}

#[test]
fn acknowledged_writes_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "store::crash_writer_child",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(WRITER_ENV, dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut acked: BTreeMap<String, u64> = BTreeMap::new();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = 0;
    while seen < 2_000 {
        let line = lines.next().expect("writer stopped early").unwrap();
        let mut parts = line.split_whitespace();
        if parts.next() != Some("ack") {
            continue;
        }
        let id = parts.next().unwrap().to_string();
        let revision: u64 = parts.next().unwrap().parse().unwrap();
        let slot = acked.entry(id).or_default();
        *slot = (*slot).max(revision);
        seen += 1;
    }
    child.kill().unwrap(); // SIGKILL: no destructor, no flush on exit
    child.wait().unwrap();

    let store = Store::open(dir.path(), Default::default()).unwrap();
    for (id, revision) in &acked {
        let incident = store
            .get(id)
            .unwrap()
            .unwrap_or_else(|| panic!("acknowledged incident {id} lost"));
        assert!(
            incident.revision >= *revision,
            "{id}: acknowledged revision {revision}, stored {}",
            incident.revision
        );
    }
    assert!(store.check_indexes().unwrap().is_empty());
}

fn evidence(ts: Timestamp, line: &str) -> Evidence {
    Evidence {
        ts,
        source: "/var/log/auth.log".into(),
        line: line.into(),
    }
}

fn sample(rule: &str, ip: &str, first_seen: Timestamp, severity: Severity) -> Incident {
    Incident {
        id: incident_id(rule, &[ip.to_string()], first_seen, 0),
        case_id: String::new(),
        rule_id: rule.into(),
        title: format!("{rule} title"),
        title_vi: None,
        severity,
        status: Status::Open,
        first_seen,
        last_seen: first_seen,
        count: 5,
        group: BTreeMap::from([("src_ip".to_string(), ip.to_string())]),
        host: "portal-01".into(),
        system: "dvc-portal".into(),
        level: 3,
        unit: "So KH&CN".into(),
        tags: vec!["attack.t1110".into()],
        author: None,
        evidence: vec![evidence(
            first_seen,
            &format!("Failed password for root from {ip}"),
        )],
        evidence_omitted: 4,
        history: Vec::new(),
        revision: 1,
    }
}

/// A store with a known mix, and a config file pointing at it.
pub(crate) struct Fixture {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) ids: Vec<String>,
}

impl Fixture {
    pub(crate) fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let now = Timestamp::now();
        let mut incidents = vec![
            sample(
                "ssh-bruteforce",
                "203.0.113.7",
                now - SignedDuration::from_hours(2),
                Severity::High,
            ),
            sample(
                "web-scan",
                "198.51.100.9",
                now - SignedDuration::from_hours(1),
                Severity::Medium,
            ),
            sample(
                "ssh-bruteforce",
                "192.0.2.1",
                now - SignedDuration::from_hours(72),
                Severity::Critical,
            ),
        ];
        incidents[1].host = "=cmd|' /C calc'!A0".into();
        incidents[1].evidence[0].line = "GET /a,b \"quoted\" -x".into();
        incidents[2].system = "mail".into();
        {
            let store = Store::open(dir.path().join("data"), Default::default()).unwrap();
            let changes: Vec<Change> = incidents
                .iter()
                .map(|i| Change::Opened(Box::new(i.clone())))
                .collect();
            store.apply(&changes, &[]).unwrap();
            store.flush().unwrap();
        }
        std::fs::write(
            dir.path().join("socwatch.toml"),
            format!(
                "[daemon]\ndata_dir = {:?}\n",
                dir.path().join("data").display().to_string()
            ),
        )
        .unwrap();
        Fixture {
            ids: incidents.into_iter().map(|i| i.id).collect(),
            dir,
        }
    }

    pub(crate) fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_socwatch"))
            .args(args)
            .current_dir(self.dir.path())
            .env("SOCWATCH_CONFIG", self.dir.path().join("socwatch.toml"))
            .env("USER", "tester")
            .env_remove("SUDO_USER")
            .output()
            .unwrap()
    }

    /// Opens the fixture's store again in this process. sled lets go of its file lock from a
    /// background thread after the fixture's handle is dropped; wait for that (bounded) rather
    /// than fail on a lock this test itself held.
    fn reopen_store(&self) -> Store {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            match Store::open(self.dir.path().join("data"), Default::default()) {
                Ok(store) => return store,
                Err(err) if std::time::Instant::now() < deadline => {
                    let _ = err;
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                Err(err) => panic!("{err}"),
            }
        }
    }

    fn json(&self, args: &[&str]) -> serde_json::Value {
        let out = self.run(args);
        assert!(out.status.success(), "{:?}: {}", args, stderr(&out));
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", stdout(&out)))
    }
}

fn ids(list: &serde_json::Value) -> Vec<&str> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap())
        .collect()
}

#[test]
fn incidents_list_filters_and_json_shape() {
    let f = Fixture::new();
    let all = f.json(&["incidents", "list", "--json"]);
    assert_eq!(
        ids(&all),
        [&f.ids[1], &f.ids[0], &f.ids[2]],
        "most recently seen first"
    );
    let first = &all[0];
    for key in crate::support::INCIDENT_FIELDS
        .iter()
        .copied()
        .chain(["revision"])
    {
        assert!(first.get(key).is_some(), "missing {key} in {first}");
    }
    assert!(first["last_seen"].as_str().unwrap().ends_with("+07:00"));

    let high = f.json(&["incidents", "list", "--severity", "high", "--json"]);
    assert_eq!(ids(&high), [&f.ids[0], &f.ids[2]]);
    let recent_high = f.json(&[
        "incidents",
        "list",
        "--severity",
        "high",
        "--since",
        "24h",
        "--json",
    ]);
    assert_eq!(ids(&recent_high), [&f.ids[0]]);
    let by_ip = f.json(&["incidents", "list", "--field", "src_ip=192.0.2.1", "--json"]);
    assert_eq!(ids(&by_ip), [&f.ids[2]]);
    let by_system = f.json(&[
        "incidents",
        "list",
        "--system",
        "mail",
        "--rule",
        "ssh-bruteforce",
        "--json",
    ]);
    assert_eq!(ids(&by_system), [&f.ids[2]]);
    let limited = f.json(&["incidents", "list", "--limit", "1", "--json"]);
    assert_eq!(ids(&limited), [&f.ids[1]]);
    let none = f.json(&["incidents", "list", "--status", "resolved", "--json"]);
    assert_eq!(ids(&none), Vec::<&str>::new());

    let table = f.run(&["incidents", "list", "--lang", "en", "--host", "portal-01"]);
    assert!(table.status.success());
    let text = stdout(&table);
    assert!(text.starts_with("Id"), "{text}");
    assert!(
        text.contains("src_ip=203.0.113.7") && !text.contains("198.51.100.9"),
        "{text}"
    );

    let bad = f.run(&["incidents", "list", "--since", "yesterday"]);
    assert_eq!(bad.status.code(), Some(2), "{}", stderr(&bad));
    let bad_field = f.run(&["incidents", "list", "--field", "src_ip"]);
    assert_eq!(bad_field.status.code(), Some(2));
}

#[test]
fn incidents_ack_records_history_and_show_prints_it() {
    let f = Fixture::new();
    let id = &f.ids[0];
    let ack = f.run(&["incidents", "ack", id, "--note", "đang xử lý"]);
    assert!(ack.status.success(), "{}", stderr(&ack));
    let shown = f.json(&["incidents", "show", id, "--json"]);
    assert_eq!(shown["status"], "acknowledged");
    assert_eq!(shown["revision"], 2);
    assert_eq!(shown["history"][0]["action"], "ack");
    assert_eq!(shown["history"][0]["by"], "tester");
    assert_eq!(shown["history"][0]["note"], "đang xử lý");

    let again = f.run(&["incidents", "ack", id]);
    assert_eq!(again.status.code(), Some(1));
    assert!(
        stderr(&again).contains("đang ở trạng thái đã tiếp nhận"),
        "{}",
        stderr(&again)
    );

    let resolve = f.run(&["incidents", "resolve", id, "--by", "lead"]);
    assert!(resolve.status.success(), "{}", stderr(&resolve));
    let human = stdout(&f.run(&["incidents", "show", id]));
    assert!(human.contains("Đã xử lý"), "{human}");
    assert!(
        human.contains("Failed password for root from 203.0.113.7"),
        "{human}"
    );
    assert!(human.contains("tiếp nhận  tester: đang xử lý"), "{human}");
    assert!(human.contains("xử lý xong  lead"), "{human}");
    let resolved = f.json(&["incidents", "list", "--status", "resolved", "--json"]);
    assert_eq!(ids(&resolved), [id]);

    let missing = f.run(&["incidents", "show", "01JD3V6X8Q4W0Z5N2K7M9P1R3T"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(stderr(&missing).contains("không có sự cố nào có mã"));
}

#[test]
fn incidents_list_shows_a_short_id_and_the_status_and_a_unique_prefix_is_enough() {
    let f = Fixture::new();
    let table = stdout(&f.run(&["--lang", "en", "incidents", "list"]));
    let header = table.lines().next().unwrap();
    assert!(
        header.starts_with("Id") && header.contains("Status"),
        "{table}"
    );
    let short = &f.ids[0][..14];
    assert!(table.contains(short), "{table}");
    assert!(
        !table.contains(&f.ids[0]),
        "the full id is not needed in the table: {table}"
    );
    assert!(table.contains(" open "), "{table}");
    let vi = stdout(&f.run(&["--lang", "vi", "incidents", "list"]));
    assert!(
        vi.starts_with("Mã") && vi.contains("Trạng thái") && vi.contains(" Mở "),
        "{vi}"
    );

    // What the table shows is accepted back, and so is any unique prefix of 8 or more characters,
    // in either case.
    let shown = f.json(&["incidents", "show", short, "--json"]);
    assert_eq!(shown["id"], f.ids[0].as_str());
    let lower = f.ids[0][..8].to_ascii_lowercase();
    let ack = f.run(&["incidents", "ack", &lower]);
    assert!(ack.status.success(), "{}", stderr(&ack));
    assert_eq!(
        f.json(&["incidents", "show", &f.ids[0], "--json"])["status"],
        "acknowledged"
    );
    let short7 = f.run(&["incidents", "show", &f.ids[0][..7]]);
    assert_eq!(short7.status.code(), Some(1));
    assert!(stderr(&short7).contains("ít nhất 8"), "{}", stderr(&short7));
}

#[test]
fn an_ambiguous_id_prefix_is_refused_and_says_how_many() {
    let dir = tempfile::tempdir().unwrap();
    let at = Timestamp::now() - SignedDuration::from_hours(1);
    // One line can open several incidents: they share their first event's millisecond, which is
    // the first 10 characters of their ids.
    let twins = [
        sample("ssh-bruteforce", "203.0.113.7", at, Severity::High),
        sample(
            "ssh-root-login-attempt",
            "203.0.113.7",
            at,
            Severity::Medium,
        ),
    ];
    {
        let store = Store::open(dir.path().join("data"), Default::default()).unwrap();
        let changes: Vec<Change> = twins
            .iter()
            .map(|i| Change::Opened(Box::new(i.clone())))
            .collect();
        store.apply(&changes, &[]).unwrap();
        store.flush().unwrap();
    }
    let config = dir.path().join("socwatch.toml");
    std::fs::write(
        &config,
        format!(
            "[daemon]\ndata_dir = {:?}\n",
            dir.path().join("data").display().to_string()
        ),
    )
    .unwrap();
    let run = |id: &str| {
        Command::new(env!("CARGO_BIN_EXE_socwatch"))
            .args(["--lang", "en", "incidents", "show", id])
            .env("SOCWATCH_CONFIG", &config)
            .output()
            .unwrap()
    };
    assert_eq!(twins[0].id[..10], twins[1].id[..10]);
    let out = run(&twins[0].id[..10]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("names 2 incidents"),
        "{}",
        stderr(&out)
    );
    for twin in &twins {
        let out = run(&twin.id[..14]);
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(stdout(&out).contains(&twin.rule_id), "{}", stdout(&out));
    }
}

#[test]
fn incidents_export_csv_quotes_and_guards_formulas() {
    let f = Fixture::new();
    let out = f.run(&[
        "incidents",
        "export",
        "--format",
        "csv",
        "--rule",
        "web-scan",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.split("\r\n").collect();
    assert!(
        lines[0].starts_with("id,rule_id,title,severity,status,"),
        "{text}"
    );
    assert_eq!(lines.len(), 3, "header, one record, empty tail: {text:?}");
    assert!(lines[1].contains(",'=cmd|' /C calc'!A0,"), "{}", lines[1]);
    assert!(
        lines[1].ends_with(",\"GET /a,b \"\"quoted\"\" -x\""),
        "{}",
        lines[1]
    );

    let file = f.dir.path().join("all.json");
    let out = f.run(&[
        "incidents",
        "export",
        "--format",
        "json",
        "--output",
        file.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let all: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(all.as_array().unwrap().len(), 3);
}

impl Fixture {
    /// Points the config's `[api]` at `listen`, with a token file holding `token` if given.
    fn with_api(&self, listen: &str, token: Option<&str>) {
        let mut config = format!(
            "[daemon]\ndata_dir = {:?}\n\n[api]\nlisten = {listen:?}\n",
            self.dir.path().join("data").display().to_string()
        );
        if let Some(token) = token {
            let file = self.secret("api.token", token);
            config.push_str(&format!("token_file = {:?}\n", file.display().to_string()));
        }
        std::fs::write(self.dir.path().join("socwatch.toml"), config).unwrap();
    }

    /// A token file as the secret reader wants it: mode 0600.
    fn secret(&self, name: &str, token: &str) -> std::path::PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let file = self.dir.path().join(name);
        std::fs::write(&file, format!("{token}\n")).unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        file
    }
}

/// An operator of the in-process API below, and their token.
const OPERATOR: &str = "nguyen.van.an";
const OPERATOR_TOKEN: &str = "an-0123456789abcdef0123456789abcdef";

/// The daemon's API in-process: `api::serve` on 127.0.0.1 port 0 over a store this test holds
/// (so the `socwatch` child cannot open it), on its own runtime thread; stopped on drop.
struct Daemon {
    addr: std::net::SocketAddr,
    store: Arc<Store>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Daemon {
    fn start(f: &Fixture, token: &str) -> Daemon {
        let store = Arc::new(f.reopen_store());
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let auth = Auth::new(Token::new(token).unwrap())
            .with_operator(OPERATOR, Token::new(OPERATOR_TOKEN).unwrap())
            .unwrap();
        let state = ApiState::new(
            store.clone(),
            Vec::new(),
            auth,
            Arc::new(Metrics::default()),
        );
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                api::serve(listener, state, async {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
            });
        });
        Daemon {
            addr,
            store,
            stop: Some(stop),
            thread: Some(thread),
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[test]
fn incidents_go_through_the_api_while_the_daemon_holds_the_store() {
    let f = Fixture::new();
    let daemon = Daemon::start(&f, "tok-123");
    f.with_api(&daemon.addr.to_string(), Some("tok-123"));

    let all = f.json(&["incidents", "list", "--json"]);
    assert_eq!(
        ids(&all),
        [f.ids[1].as_str(), f.ids[0].as_str(), f.ids[2].as_str()]
    );
    let critical = f.json(&["incidents", "list", "--severity", "critical", "--json"]);
    assert_eq!(ids(&critical), [f.ids[2].as_str()]);
    let recent = f.json(&[
        "incidents",
        "list",
        "--since",
        "24h",
        "--field",
        "src_ip=203.0.113.7",
        "--json",
    ]);
    assert_eq!(ids(&recent), [f.ids[0].as_str()]);
    let table = f.run(&["--lang", "en", "incidents", "list"]);
    assert!(table.status.success(), "{}", stderr(&table));
    assert!(
        stdout(&table).contains("ssh-bruteforce"),
        "{}",
        stdout(&table)
    );

    let shown = f.json(&["incidents", "show", &f.ids[0], "--json"]);
    assert_eq!(shown["id"], f.ids[0].as_str());

    let acked = f.run(&[
        "--lang",
        "en",
        "incidents",
        "ack",
        &f.ids[0],
        "--note",
        "on it",
    ]);
    assert!(acked.status.success(), "{}", stderr(&acked));
    // Through the API the shared token acts as "admin" ($USER is only a claim).
    assert!(
        stdout(&acked).contains("acknowledged by admin"),
        "{}",
        stdout(&acked)
    );
    // The daemon's store has it, history included.
    let stored = daemon.store.get(&f.ids[0]).unwrap().unwrap();
    assert_eq!(stored.status, Status::Acknowledged);
    let last = stored.history.last().unwrap();
    assert_eq!(
        (last.action.as_str(), last.by.as_str(), last.note.as_str()),
        ("ack", "admin", "on it")
    );

    let again = f.run(&["incidents", "ack", &f.ids[0]]);
    assert_eq!(again.status.code(), Some(1));
    assert!(
        stderr(&again).contains("đang ở trạng thái đã tiếp nhận"),
        "{}",
        stderr(&again)
    );
    let missing = f.run(&["incidents", "show", "01JD3V6X8Q4W0Z5N2K7M9P1R3T"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        stderr(&missing).contains("không có sự cố nào có mã"),
        "{}",
        stderr(&missing)
    );

    let csv = f.run(&["incidents", "export", "--format", "csv"]);
    assert!(csv.status.success(), "{}", stderr(&csv));
    assert_eq!(stdout(&csv).lines().count(), 4);

    // Bad usage is still caught before anything is asked.
    let bad = f.run(&["incidents", "list", "--since", "yesterday"]);
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn through_the_api_the_token_says_who_acted_not_by() {
    let f = Fixture::new();
    let daemon = Daemon::start(&f, "tok-123");
    f.with_api(&daemon.addr.to_string(), Some("tok-123"));
    // The shared token cannot name someone else.
    let claimed = f.run(&["incidents", "resolve", &f.ids[1], "--by", "admin"]);
    assert_eq!(claimed.status.code(), Some(1), "{}", stdout(&claimed));
    assert!(
        stderr(&claimed).contains("không nhận --by với mã truy cập dùng chung"),
        "{}",
        stderr(&claimed)
    );
    assert_eq!(
        daemon.store.get(&f.ids[1]).unwrap().unwrap().status,
        Status::Open
    );
    // An operator's own token, from --token-file or SOCWATCH_TOKEN_FILE, records the operator.
    let mine = f.secret("an.token", OPERATOR_TOKEN);
    let out = f.run(&[
        "--lang",
        "en",
        "--token-file",
        mine.to_str().unwrap(),
        "incidents",
        "false-positive",
        &f.ids[1],
        "--by",
        "admin",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains(&format!("false positive by {OPERATOR}")),
        "{}",
        stdout(&out)
    );
    let out = Command::new(env!("CARGO_BIN_EXE_socwatch"))
        .args(["incidents", "reopen", &f.ids[1]])
        .current_dir(f.dir.path())
        .env("SOCWATCH_CONFIG", f.dir.path().join("socwatch.toml"))
        .env("SOCWATCH_TOKEN_FILE", &mine)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let by: Vec<String> = daemon
        .store
        .get(&f.ids[1])
        .unwrap()
        .unwrap()
        .history
        .iter()
        .map(|h| h.by.clone())
        .collect();
    assert_eq!(by, [OPERATOR, OPERATOR]);
}

#[test]
fn incidents_say_so_when_the_api_refuses_the_token() {
    let f = Fixture::new();
    let daemon = Daemon::start(&f, "right");
    f.with_api(&daemon.addr.to_string(), Some("wrong"));
    let out = f.run(&["incidents", "list"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("từ chối mã truy cập"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn incidents_say_so_when_the_store_is_in_use_and_the_api_does_not_answer() {
    let f = Fixture::new();
    let _held = f.reopen_store();
    // A port nobody listens on: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");
    f.with_api(&listen, Some("tok"));
    let out = f.run(&["incidents", "list"]);
    assert_eq!(out.status.code(), Some(1));
    let expected = format!(
        "không mở được kho dữ liệu tại {} (tiến trình khác đang dùng) và API tại {listen} không trả lời: ",
        f.dir.path().join("data").display()
    );
    assert!(stderr(&out).contains(&expected), "{}", stderr(&out));
}
