//! The tamper-evident log (issue 15): a store made by the real daemon verifies intact, and each
//! tampering with a copy of it (a record altered, one deleted, log leaves swapped or changed, the
//! log truncated) is named by `socwatch verify`; a retention purge stays verifiable; one
//! incident's inclusion proof checks out from the CLI and from the API against the signed
//! checkpoint.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use socwatch::evidence::note::NoteVerifier;
use socwatch::evidence::{Proof, Report, check_proof};
use socwatch::query::Filters;

use crate::daemon::{Site, line};
use crate::support::{stderr, stdout};

const ADDRESSES: [&str; 4] = ["203.0.113.7", "203.0.113.8", "198.51.100.9", "192.0.2.44"];

/// A store the real daemon made: four incidents (one per address), one acknowledged through the
/// API, stopped with SIGTERM (which signs the last checkpoint). Made once; tests work on copies.
struct Fixture {
    _site: Site,
    data: PathBuf,
    acked: String,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let site = Site::new(false);
        let daemon = site.start();
        site.append(
            ADDRESSES
                .iter()
                .enumerate()
                .flat_map(|(i, a)| (0..3).map(move |n| line(i * 10 + n, a))),
        );
        daemon.wait_stored("", 12);
        let client = daemon.client();
        let incidents = client.list(&Filters::default()).unwrap();
        assert_eq!(incidents.len(), ADDRESSES.len());
        let acked = incidents[0].id.clone();
        client
            .transition(&acked, socwatch::store::Action::Ack, None, "looking")
            .unwrap();
        daemon.stop();
        Fixture {
            data: site.path("data"),
            _site: site,
            acked,
        }
    })
}

/// A copy of a data folder (store and key) with a config pointing at it.
pub(crate) struct Copy {
    dir: tempfile::TempDir,
}

pub(crate) fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

impl Copy {
    /// A copy of the fixture's data folder.
    fn new() -> Copy {
        Copy::of(&fixture().data)
    }

    /// A copy of `data`.
    pub(crate) fn of(data: &Path) -> Copy {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(data, &dir.path().join("data"));
        std::fs::write(
            dir.path().join("socwatch.toml"),
            format!(
                "[daemon]\ndata_dir = \"{}\"\nlang = \"en\"\n",
                dir.path().join("data").display()
            ),
        )
        .unwrap();
        Copy { dir }
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_socwatch"))
            .arg("--config")
            .arg(self.dir.path().join("socwatch.toml"))
            .args(args)
            .output()
            .unwrap()
    }

    pub(crate) fn verify(&self) -> (Option<i32>, Report) {
        let out = self.run(&["verify", "--json"]);
        let report = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}{}", stdout(&out), stderr(&out)));
        (out.status.code(), report)
    }

    /// Changes the copy's sled trees directly, as someone with the files would. Without the
    /// background flusher, dropping the database lets go of its lock before this returns.
    pub(crate) fn tamper(&self, change: impl FnOnce(&sled::Db)) {
        let db = sled::Config::new()
            .path(self.data())
            .flush_every_ms(None)
            .open()
            .unwrap();
        change(&db);
        db.flush().unwrap();
    }
}

fn leaf_key(index: u64) -> [u8; 8] {
    index.to_be_bytes()
}

fn has(report: &Report, problem: &str, subject: &str) -> bool {
    report
        .findings
        .iter()
        .any(|f| f.problem == problem && f.subject.contains(subject))
}

#[test]
fn the_daemons_store_verifies_intact_with_its_signed_checkpoints() {
    let copy = Copy::new();
    let (code, report) = copy.verify();
    assert_eq!(code, Some(0), "{report:#?}");
    assert!(report.intact);
    assert!(report.checkpoints >= 1, "{report:#?}");
    assert_eq!(
        report.verified_size, report.size,
        "the last checkpoint covers every leaf"
    );
    // 4 incidents opened and updated, their cases, one ack: more leaves than records.
    assert!(report.size > report.records as u64, "{report:#?}");
    let text = copy.run(&["verify"]);
    assert_eq!(text.status.code(), Some(0));
    assert!(
        stdout(&text).contains("evidence log intact"),
        "{}",
        stdout(&text)
    );
}

#[test]
fn an_altered_incident_is_named() {
    let copy = Copy::new();
    let id = fixture().acked.clone();
    copy.tamper(|db| {
        let incidents = db.open_tree("incidents").unwrap();
        let bytes = incidents.get(id.as_bytes()).unwrap().unwrap();
        let mut incident: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        // The responder's ack quietly turned into a resolution, count lowered.
        incident["status"] = "resolved".into();
        incident["count"] = 1.into();
        incidents
            .insert(id.as_bytes(), serde_json::to_vec(&incident).unwrap())
            .unwrap();
    });
    let (code, report) = copy.verify();
    assert_eq!(code, Some(1), "{report:#?}");
    assert!(
        has(&report, "altered", &format!("incident {id}")),
        "{report:#?}"
    );
    assert_eq!(report.findings.len(), 1, "only that record: {report:#?}");
    let text = copy.run(&["verify"]);
    assert_eq!(text.status.code(), Some(1));
    assert!(stdout(&text).contains(&id), "{}", stdout(&text));
    assert!(stdout(&text).contains("NOT intact"), "{}", stdout(&text));
    // In Vietnamese, the detail too.
    let vi = stdout(&copy.run(&["--lang", "vi", "verify"]));
    assert!(
        vi.contains("KHÔNG nguyên vẹn") && vi.contains("khác với nội dung nhật ký đã ghi"),
        "{vi}"
    );
}

#[test]
fn a_deleted_incident_and_a_deleted_case_are_named() {
    let copy = Copy::new();
    let id = fixture().acked.clone();
    let mut case_id = String::new();
    copy.tamper(|db| {
        db.open_tree("incidents")
            .unwrap()
            .remove(id.as_bytes())
            .unwrap();
        let cases = db.open_tree("cases").unwrap();
        let (key, _) = cases.first().unwrap().unwrap();
        case_id = String::from_utf8(key.to_vec()).unwrap();
        cases.remove(key).unwrap();
    });
    let (code, report) = copy.verify();
    assert_eq!(code, Some(1));
    assert!(
        has(&report, "removed", &format!("incident {id}")),
        "{report:#?}"
    );
    assert!(
        has(&report, "removed", &format!("case {case_id}")),
        "{report:#?}"
    );
}

#[test]
fn swapped_log_leaves_are_reported_as_reordered() {
    let copy = Copy::new();
    copy.tamper(|db| {
        let log = db.open_tree("evidence_log").unwrap();
        let a = log.get(leaf_key(1)).unwrap().unwrap();
        let b = log.get(leaf_key(2)).unwrap().unwrap();
        log.insert(leaf_key(1), b).unwrap();
        log.insert(leaf_key(2), a).unwrap();
    });
    let (code, report) = copy.verify();
    assert_eq!(code, Some(1));
    assert!(has(&report, "reordered", "log leaf 1"), "{report:#?}");
    assert!(has(&report, "reordered", "log leaf 2"), "{report:#?}");
    // And the signed head no longer matches.
    assert!(has(&report, "altered", "log leaves 0 to"), "{report:#?}");
}

#[test]
fn a_rewritten_leaf_with_its_record_is_caught_by_the_signed_checkpoint() {
    // The careful forger changes a record and rewrites its leaf to match: only the signature
    // over the old head gives them away.
    let copy = Copy::new();
    let id = fixture().acked.clone();
    copy.tamper(|db| {
        let incidents = db.open_tree("incidents").unwrap();
        let bytes = incidents.get(id.as_bytes()).unwrap().unwrap();
        let mut incident: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        incident["count"] = 1.into();
        let forged = serde_json::to_vec(&incident).unwrap();
        let log = db.open_tree("evidence_log").unwrap();
        let mut last = None;
        for item in log.iter() {
            let (key, value) = item.unwrap();
            if key.len() == 8
                && let Ok(leaf) = serde_json::from_slice::<socwatch::evidence::Leaf>(&value)
                && leaf.id == id
            {
                last = Some((key, leaf));
            }
        }
        let (key, mut leaf) = last.unwrap();
        leaf.hash = socwatch::evidence::record_hash(&forged);
        log.insert(key, leaf.encode()).unwrap();
        incidents.insert(id.as_bytes(), forged).unwrap();
    });
    let (code, report) = copy.verify();
    assert_eq!(code, Some(1));
    assert!(has(&report, "altered", "log leaves"), "{report:#?}");
    assert!(
        !has(&report, "altered", "incident"),
        "the record matches its forged leaf"
    );
}

#[test]
fn a_truncated_log_is_named_even_with_its_counter_fixed() {
    let copy = Copy::new();
    let (_, before) = copy.verify();
    copy.tamper(|db| {
        let log = db.open_tree("evidence_log").unwrap();
        for index in before.size - 2..before.size {
            log.remove(leaf_key(index)).unwrap();
        }
        log.insert(b"size", &(before.size - 2).to_be_bytes()[..])
            .unwrap();
    });
    let (code, report) = copy.verify();
    assert_eq!(code, Some(1));
    assert!(has(&report, "truncated", "log"), "{report:#?}");
    let truncated = report
        .findings
        .iter()
        .find(|f| f.problem == "truncated")
        .unwrap();
    assert!(
        truncated
            .detail
            .contains(&format!("covers {} leaves", before.size)),
        "{truncated:?}"
    );
}

#[test]
fn a_retention_purge_is_logged_and_stays_verifiable() {
    let copy = Copy::new();
    let (_, before) = copy.verify();
    {
        let store = socwatch::store::Store::open(copy.data(), Default::default()).unwrap();
        let later: jiff::Timestamp = "2036-01-01T00:00:00Z".parse().unwrap();
        let purged = store
            .purge(
                later,
                std::time::Duration::from_secs(86400),
                &Default::default(),
            )
            .unwrap();
        assert_eq!(purged, ADDRESSES.len());
        assert!(store.is_empty());
        store.flush().unwrap();
    }
    // sled lets go of its lock from a background thread shortly after the handle drops.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let out = loop {
        let out = copy.run(&["verify", "--json"]);
        if out.status.success() || std::time::Instant::now() > deadline {
            break out;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let report: Report = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report.records, 0);
    // One purge leaf per incident and per case.
    assert!(
        report.size >= before.size + ADDRESSES.len() as u64 * 2,
        "{report:#?}"
    );
    // A purged incident's history, purge included, is still provable.
    let out = copy.run(&["verify", "--incident", &fixture().acked, "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let proof: Proof = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(proof.leaf.action, "purged");
    // Deleting a record without logging it is still caught after the purge: put one back.
    copy.tamper(|db| {
        db.open_tree("incidents")
            .unwrap()
            .insert(fixture().acked.as_bytes(), &b"{\"revision\": 2}"[..])
            .unwrap();
    });
    let (code, report) = copy.verify();
    assert_eq!(code, Some(1));
    assert!(has(&report, "added", &fixture().acked), "{report:#?}");
}

#[test]
fn an_incidents_proof_checks_against_the_signed_checkpoint_from_the_cli() {
    let copy = Copy::new();
    let out = copy.run(&["verify", "--public-key"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let key = stdout(&out);
    assert!(key.starts_with("socwatch/"), "{key}");
    let verifier = NoteVerifier::parse(key.trim()).unwrap();
    let out = copy.run(&["verify", "--incident", &fixture().acked, "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let proof: Proof = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(proof.id, fixture().acked);
    assert_eq!(proof.leaf.action, "ack");
    assert!(proof.history.len() >= 2, "opened, then ack: {proof:#?}");
    assert!(
        proof.checkpoint.is_some(),
        "the shutdown checkpoint covers it"
    );
    check_proof(&proof, Some(&verifier)).unwrap();
    // A proof for another leaf does not pass for this one.
    let mut forged = proof.clone();
    forged.leaf_index = (forged.leaf_index + 1) % forged.tree_size;
    assert!(check_proof(&forged, Some(&verifier)).is_err());
    // Another key refuses the checkpoint.
    let other = socwatch::evidence::note::Signer::new(verifier.name.clone(), [3; 32]).verifier();
    assert!(check_proof(&proof, Some(&other)).is_err());
    // The text form says so in words.
    let text = copy.run(&["verify", "--incident", &fixture().acked]);
    assert_eq!(text.status.code(), Some(0));
    assert!(
        stdout(&text).contains("the checkpoint is signed by the node's key: valid"),
        "{}",
        stdout(&text)
    );
    // With a witness's key for another node, the checkpoints are refused.
    let (code, report) = {
        let out = copy.run(&["verify", "--json", "--key", &other.encode()]);
        (
            out.status.code(),
            serde_json::from_slice::<Report>(&out.stdout).unwrap(),
        )
    };
    assert_eq!(code, Some(1));
    assert!(has(&report, "checkpoint", "checkpoint"), "{report:#?}");
}

#[test]
fn the_api_gives_an_incidents_proof_and_the_cli_verifies_through_a_running_daemon() {
    let site = Site::new(false);
    let daemon = site.start();
    site.append([line(1, "203.0.113.50")]);
    daemon.wait_stored("", 1);
    site.point_cli_at(&daemon);
    let client = daemon.client();
    let incident = client.list(&Filters::default()).unwrap().remove(0);
    let proof = client.proof(&incident.id).unwrap();
    assert_eq!(proof.id, incident.id);
    check_proof(&proof, None).unwrap();
    // The store is held by the daemon: the CLI asks its API.
    let out = Command::new(env!("CARGO_BIN_EXE_socwatch"))
        .arg("--config")
        .arg(site.path("socwatch.toml"))
        .args(["verify", "--json"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let report: Report = serde_json::from_slice(&out.stdout).unwrap();
    assert!(report.intact && report.size >= 2, "{report:#?}");
    assert!(client.proof("01JD3V6X8Q4W0Z5N2K7M9P1R3T").is_err());
    let consistency = client.consistency(1).unwrap();
    assert_eq!(consistency.from_size, 1);
    assert_eq!(consistency.to_size, report.size);
    assert!(
        client.consistency(report.size + 1).is_err(),
        "beyond the log"
    );
    daemon.stop();
}

#[test]
fn every_email_footer_carries_a_checkpoint_signed_by_the_node() {
    let pki = crate::email::Pki::new();
    let server = crate::email::SmtpServer::start("none", &pki, false);
    let site = Site::new(false);
    site.add_config(&format!(
        "[email]\nsmtp = \"127.0.0.1:{}\"\nsecurity = \"none\"\nfrom = \"socwatch <soc@example.gov.vn>\"\n\
         to = [\"oncall@example.gov.vn\"]\nmin_severity = \"high\"\ncase_hold = \"0s\"\n",
        server.port
    ));
    let daemon = site.start();
    site.append([line(1, "203.0.113.60")]);
    let message = &server.messages(1)[0];
    let out = Command::new(env!("CARGO_BIN_EXE_socwatch"))
        .arg("--config")
        .arg(site.path("socwatch.toml"))
        .args(["verify", "--public-key"])
        .output()
        .unwrap();
    let verifier = NoteVerifier::parse(stdout(&out).trim()).unwrap();
    daemon.stop();
    let text = crate::email::body(message, "text");
    let (_, footer) = text
        .split_once("Signed checkpoint of the evidence log (check with socwatch verify):\n")
        .unwrap_or_else(|| panic!("no checkpoint in the footer: {text}"));
    let checkpoint = verifier.open(footer).unwrap();
    assert!(
        checkpoint.size >= 2,
        "the incident and its case: {checkpoint:?}"
    );
    let html = crate::email::body(message, "html");
    assert!(html.contains(&verifier.name), "{html}");
}

/// The latest checkpoint stored in a copy, as a recipient would have kept it.
fn latest_note(copy: &Copy) -> String {
    let mut note = String::new();
    copy.tamper(|db| {
        let (_, value) = db
            .open_tree("evidence_checkpoints")
            .unwrap()
            .last()
            .unwrap()
            .unwrap();
        note = String::from_utf8(value.to_vec()).unwrap();
    });
    note
}

#[test]
fn a_kept_checkpoint_shows_whether_the_log_still_extends_it() {
    let copy = Copy::new();
    let note = latest_note(&copy);
    let kept = copy.dir.path().join("kept-checkpoint.txt");
    std::fs::write(&kept, &note).unwrap();
    let kept = kept.to_str().unwrap();
    let out = copy.run(&["verify", "--checkpoint", kept]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(stdout(&out).contains("consistent"), "{}", stdout(&out));

    // A rewritten past (a leaf inside the kept tree changed) is not consistent with it, whatever
    // the node signs afterwards.
    let rewritten = Copy::new();
    rewritten.tamper(|db| {
        let log = db.open_tree("evidence_log").unwrap();
        let bytes = log.get(leaf_key(0)).unwrap().unwrap();
        let mut leaf: socwatch::evidence::Leaf = serde_json::from_slice(&bytes).unwrap();
        leaf.hash = "0".repeat(64);
        log.insert(leaf_key(0), leaf.encode()).unwrap();
    });
    let out = rewritten.run(&["verify", "--checkpoint", kept]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("history was rewritten"),
        "{}",
        stderr(&out)
    );

    // A log cut below the kept size cannot extend it.
    let cut = Copy::new();
    cut.tamper(|db| {
        let log = db.open_tree("evidence_log").unwrap();
        log.remove(leaf_key(log.len() as u64 - 2)).unwrap();
    });
    let out = cut.run(&["verify", "--checkpoint", kept]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(stderr(&out).contains("truncated"), "{}", stderr(&out));

    // A note that is not the node's is refused before anything is compared.
    std::fs::write(
        copy.dir.path().join("forged.txt"),
        note.replacen('\n', "x\n", 1),
    )
    .unwrap();
    let forged = copy.dir.path().join("forged.txt");
    let out = copy.run(&["verify", "--checkpoint", forged.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("not validly signed"),
        "{}",
        stderr(&out)
    );
}
