//! Windows events through the real `socwatch`, one test per way they arrive: Security 4688 and
//! Sysmon 1 as JSON lines (NXLog), Winlogbeat lines, `.evtx` files (written by `evtx_writer`), JSON
//! lines that declare the rule's own logsource, and a Windows event inside a syslog message sent
//! to the daemon. Every one must fire a SigmaHQ-style `process_creation` rule with no
//! `--logsource`, since the events say what they are.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use socwatch::query::Filters;

use crate::daemon::{Site, logger};
use crate::evtx_writer::{WinEvent, write_evtx};
use crate::support::{fixture, incidents, socwatch, stderr};

/// The whoami rule of the fixture (filtered when run as SYSTEM) and the encoded-PowerShell rule.
fn rules() -> PathBuf {
    fixture("sigma/windows/proc_creation_win_whoami.yml")
}

const WHOAMI: &str = "5f2c6b8e-6a0f-4d3e-9b1e-3c1f6f3a9a01";
const ENCODED: &str = "0c7a5d6e-2b3f-4f4a-8e6d-9a1b2c3d4e02";

fn write(dir: &Path, name: &str, lines: &[&str]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    path
}

/// (rule id, Computer) of every incident `scan --json` finds in `file`, sorted.
fn scan(file: &Path, extra: &[&str]) -> Vec<(String, String)> {
    let rules = rules();
    let mut args = vec!["scan", "--rules", rules.to_str().unwrap(), "--json"];
    args.extend_from_slice(extra);
    args.push(file.to_str().unwrap());
    let out = socwatch(&args);
    let mut found: Vec<(String, String)> = incidents(&out)
        .iter()
        .map(|i| {
            (
                i["rule_id"].as_str().unwrap().to_string(),
                i["group"]["Computer"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    found.sort();
    found
}

fn pair(rule: &str, computer: &str) -> (String, String) {
    (rule.to_string(), computer.to_string())
}

#[test]
fn security_4688_fires_a_process_creation_rule() {
    let dir = tempfile::tempdir().unwrap();
    // NXLog im_msvistalog JSON of Security 4688: NewProcessName is Sigma's Image.
    let log = write(
        dir.path(),
        "security.json",
        &[
            r#"{"EventTime":"2026-11-22 10:01:02","Hostname":"ws-01.corp.local","Keywords":-9214364837600034816,"EventType":"AUDIT_SUCCESS","SeverityValue":2,"Severity":"INFO","EventID":4688,"SourceName":"Microsoft-Windows-Security-Auditing","ProviderGuid":"{54849625-5478-4994-A5BA-3E3B0328C30D}","Version":2,"Task":13312,"OpcodeValue":0,"RecordNumber":1442,"ProcessID":4,"ThreadID":96,"Channel":"Security","Message":"A new process has been created.","Category":"Process Creation","Opcode":"Info","SubjectUserSid":"S-1-5-21-1-2-3-1104","SubjectUserName":"alice","SubjectDomainName":"CORP","SubjectLogonId":"0x5a3c1","NewProcessId":"0x1f3c","NewProcessName":"C:\\Windows\\System32\\whoami.exe","TokenElevationType":"%%1938","ProcessId":"0x1a2c","CommandLine":"whoami /priv","ParentProcessName":"C:\\Windows\\System32\\cmd.exe","MandatoryLabel":"S-1-16-8192","EventReceivedTime":"2026-11-22 10:01:03","SourceModuleName":"eventlog","SourceModuleType":"im_msvistalog"}"#,
            // The same event run by the machine account: the rule's filter on User holds.
            r#"{"EventTime":"2026-11-22 10:01:04","Hostname":"ws-02.corp.local","EventID":4688,"SourceName":"Microsoft-Windows-Security-Auditing","Channel":"Security","SubjectUserName":"SYSTEM","SubjectDomainName":"NT AUTHORITY","NewProcessName":"C:\\Windows\\System32\\whoami.exe","CommandLine":"whoami","ParentProcessName":"C:\\Windows\\System32\\services.exe"}"#,
            // A logon (4624) naming whoami.exe is not process creation.
            r#"{"EventTime":"2026-11-22 10:01:05","Hostname":"ws-03.corp.local","EventID":4624,"SourceName":"Microsoft-Windows-Security-Auditing","Channel":"Security","ProcessName":"C:\\Windows\\System32\\whoami.exe","NewProcessName":"C:\\Windows\\System32\\whoami.exe"}"#,
        ],
    );
    assert_eq!(scan(&log, &[]), vec![pair(WHOAMI, "ws-01.corp.local")]);
}

#[test]
fn sysmon_1_as_a_json_line_fires() {
    let dir = tempfile::tempdir().unwrap();
    let log = write(
        dir.path(),
        "sysmon.json",
        &[
            r#"{"EventTime":"2026-11-22 10:02:00","Hostname":"ws-04","SourceName":"Microsoft-Windows-Sysmon","Channel":"Microsoft-Windows-Sysmon/Operational","EventID":1,"UtcTime":"2026-11-22 03:02:00.125","ProcessGuid":"{a1}","ProcessId":"4711","Image":"C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe","OriginalFileName":"PowerShell.EXE","CommandLine":"powershell.exe -enc SQBFAFgA","User":"CORP\\bob","ParentImage":"C:\\Windows\\explorer.exe"}"#,
            // Sysmon 3 (a network connection) of the same image is no process creation.
            r#"{"EventTime":"2026-11-22 10:02:01","Hostname":"ws-05","SourceName":"Microsoft-Windows-Sysmon","Channel":"Microsoft-Windows-Sysmon/Operational","EventID":3,"Image":"C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe","CommandLine":"powershell.exe -enc x"}"#,
        ],
    );
    assert_eq!(scan(&log, &[]), vec![pair(ENCODED, "ws-04")]);
}

#[test]
fn winlogbeat_lines_fire() {
    let dir = tempfile::tempdir().unwrap();
    let log = write(
        dir.path(),
        "winlogbeat.ndjson",
        &[
            r#"{"@timestamp":"2026-11-22T03:03:00.000Z","agent":{"type":"winlogbeat","version":"8.15.0"},"event":{"code":"1","kind":"event","provider":"Microsoft-Windows-Sysmon"},"host":{"name":"ws-06"},"log":{"level":"information"},"message":"Process Create:","winlog":{"api":"wineventlog","channel":"Microsoft-Windows-Sysmon/Operational","computer_name":"ws-06.corp.local","event_id":"1","provider_name":"Microsoft-Windows-Sysmon","record_id":"5521","process":{"pid":2404,"thread":{"id":3512}},"user":{"identifier":"S-1-5-18"},"event_data":{"Image":"C:\\Windows\\System32\\whoami.exe","CommandLine":"whoami /groups","User":"CORP\\carol","ParentImage":"C:\\Windows\\System32\\cmd.exe"}}}"#,
            // Security 4688 from Winlogbeat.
            r#"{"@timestamp":"2026-11-22T03:03:01.000Z","event":{"code":"4688"},"host":{"name":"ws-07"},"winlog":{"channel":"Security","computer_name":"ws-07.corp.local","event_id":"4688","provider_name":"Microsoft-Windows-Security-Auditing","event_data":{"NewProcessName":"C:\\Windows\\System32\\whoami.exe","SubjectUserName":"dave","SubjectDomainName":"CORP","ParentProcessName":"C:\\Windows\\System32\\cmd.exe"}}}"#,
        ],
    );
    assert_eq!(
        scan(&log, &[]),
        vec![
            pair(WHOAMI, "ws-06.corp.local"),
            pair(WHOAMI, "ws-07.corp.local")
        ]
    );
}

#[test]
fn lines_that_declare_the_rules_own_logsource_are_accepted() {
    let dir = tempfile::tempdir().unwrap();
    // Plain process events from an EDR export: no channel, no event id.
    let log = write(
        dir.path(),
        "edr.json",
        &[
            r#"{"ts":"2026-11-22T03:04:00Z","Computer":"ws-08","Image":"C:\\Windows\\System32\\whoami.exe","User":"CORP\\erin"}"#,
        ],
    );
    assert_eq!(
        scan(
            &log,
            &["--logsource", "product=windows,category=process_creation"]
        ),
        vec![pair(WHOAMI, "ws-08")]
    );
    // Declared as another category, or not at all, the rule does not see it.
    assert!(
        scan(
            &log,
            &["--logsource", "product=windows,category=file_event"]
        )
        .is_empty()
    );
    assert!(scan(&log, &[]).is_empty());
}

fn sysmon_process(computer: &str, time: i64, image: &str, user: &str) -> WinEvent {
    WinEvent::new(
        "Microsoft-Windows-Sysmon",
        1,
        "Microsoft-Windows-Sysmon/Operational",
        computer,
        time,
    )
    .data("RuleName", "-")
    .data("UtcTime", "2026-11-22 03:05:00.000")
    .data("ProcessGuid", "{5770385f-0000-0000-0000-000000000001}")
    .data("ProcessId", "4711")
    .data("Image", image)
    .data("CommandLine", "whoami /all")
    .data("User", user)
    .data("ParentImage", "C:\\Windows\\System32\\cmd.exe")
}

#[test]
fn evtx_files_are_scanned() {
    let dir = tempfile::tempdir().unwrap();
    let t = 1_795_316_700; // 2026-11-22T03:05:00Z
    let mut events = vec![
        sysmon_process(
            "ws-09",
            t,
            "C:\\Windows\\System32\\whoami.exe",
            "CORP\\frank",
        ),
        sysmon_process(
            "ws-10",
            t + 1,
            "C:\\Windows\\System32\\whoami.exe",
            "NT AUTHORITY\\SYSTEM",
        ),
        WinEvent::new(
            "Microsoft-Windows-Security-Auditing",
            4688,
            "Security",
            "ws-11",
            t + 2,
        )
        .data("SubjectUserName", "grace")
        .data("SubjectDomainName", "CORP")
        .data("NewProcessName", "C:\\Windows\\System32\\whoami.exe")
        .data("ParentProcessName", "C:\\Windows\\explorer.exe"),
    ];
    // Enough ordinary events to need more than one 64 KiB chunk.
    for i in 0..400 {
        events.push(sysmon_process(
            "ws-quiet",
            t + 3 + i,
            "C:\\Windows\\System32\\svchost.exe",
            "CORP\\svc",
        ));
    }
    let file = dir
        .path()
        .join("Microsoft-Windows-Sysmon%4Operational.evtx");
    write_evtx(&file, &events);
    assert!(std::fs::metadata(&file).unwrap().len() > 4096 + 2 * 65536);
    assert_eq!(
        scan(&file, &[]),
        vec![pair(WHOAMI, "ws-09"), pair(WHOAMI, "ws-11")]
    );
    let rules = rules();
    let out = socwatch(&[
        "--lang",
        "en",
        "scan",
        "--rules",
        rules.to_str().unwrap(),
        "--json",
        file.to_str().unwrap(),
    ]);
    let found = incidents(&out);
    let first = found
        .iter()
        .find(|i| i["group"]["Computer"] == "ws-09")
        .unwrap();
    // Times come from TimeCreated, evidence is the record as JSON.
    assert_eq!(first["first_seen"], "2026-11-22T10:05:00+07:00");
    let evidence = first["evidence"][0]["line"].as_str().unwrap();
    assert!(evidence.contains("\"EventID\":1"), "{evidence}");
    assert!(
        stderr(&out).contains("Read 403 lines"),
        "every record is a line: {}",
        stderr(&out)
    );
    // The same file gzipped, and on stdin.
    let gz = dir.path().join("sysmon.evtx.gz");
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("gzip -c '{}' > '{}'", file.display(), gz.display()))
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(
        scan(&gz, &[]),
        vec![pair(WHOAMI, "ws-09"), pair(WHOAMI, "ws-11")]
    );
    let config = dir.path().join("empty.toml");
    std::fs::write(&config, "").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_socwatch"))
        .args(["scan", "--rules", rules.to_str().unwrap(), "--json", "-"])
        .env("SOCWATCH_CONFIG", &config)
        .stdin(std::fs::File::open(&file).unwrap())
        .output()
        .unwrap();
    let mut from_stdin: Vec<String> = incidents(&out)
        .iter()
        .map(|i| i["group"]["Computer"].as_str().unwrap().to_string())
        .collect();
    from_stdin.sort();
    assert_eq!(from_stdin, ["ws-09", "ws-11"]);
}

#[test]
fn a_broken_evtx_record_is_counted_and_the_rest_read() {
    let dir = tempfile::tempdir().unwrap();
    let t = 1_795_316_700;
    let file = dir.path().join("broken.evtx");
    write_evtx(
        &file,
        &[
            sysmon_process("ws-12", t, "C:\\Windows\\System32\\notepad.exe", "CORP\\h"),
            sysmon_process(
                "ws-13",
                t + 1,
                "C:\\Windows\\System32\\whoami.exe",
                "CORP\\i",
            ),
        ],
    );
    // Damage the first record's BinXML: its root element's token becomes one that does not exist.
    // Checksums are not trusted (Windows leaves them stale in logs it is still writing), so the
    // chunk is read and only that record is lost.
    let mut bytes = std::fs::read(&file).unwrap();
    let binxml = 4096 + 512 + 24;
    assert_eq!(
        bytes[binxml + 4],
        0x41,
        "<Event xmlns=...> opens the record"
    );
    bytes[binxml + 4] = 0xee;
    std::fs::write(&file, &bytes).unwrap();
    let rules = rules();
    let out = socwatch(&[
        "--lang",
        "en",
        "scan",
        "--rules",
        rules.to_str().unwrap(),
        "--json",
        file.to_str().unwrap(),
    ]);
    let text = stderr(&out);
    let found = incidents(&out);
    assert!(text.contains("Read 2 lines"), "{text}");
    assert!(text.contains("1 unparsed"), "{text}");
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0]["group"]["Computer"], "ws-13");
}

#[test]
fn windows_events_reach_the_daemon_inside_syslog_messages_and_in_tailed_files() {
    let site = Site::new(true);
    std::fs::copy(rules(), site.path("rules/windows.yml")).unwrap();
    let daemon = site.start();
    // NXLog `to_syslog_bsd()` of a Sysmon event after `to_json()`, as logger sends it.
    let event = r#"{"EventTime":"2026-11-22 10:06:00","Hostname":"ws-14","SourceName":"Microsoft-Windows-Sysmon","Channel":"Microsoft-Windows-Sysmon/Operational","EventID":1,"Image":"C:\\Windows\\System32\\whoami.exe","CommandLine":"whoami","User":"CORP\\judy"}"#;
    logger(&daemon, "udp", &["--size", "8192"], event);
    let client = daemon.client();
    let deadline = Instant::now() + Duration::from_secs(60);
    let found = loop {
        let found = client.list(&Filters::default()).unwrap_or_default();
        if !found.is_empty() {
            break found;
        }
        assert!(Instant::now() < deadline, "no incident after 60 s");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0].rule_id, WHOAMI);
    assert_eq!(
        found[0].group.get("Computer").map(String::as_str),
        Some("ws-14")
    );
    // A Winlogbeat line in a tailed file (format auto) is recognised too.
    site.append([r#"{"@timestamp":"2026-11-22T03:06:01.000Z","winlog":{"channel":"Security","computer_name":"ws-15","event_id":"4688","event_data":{"NewProcessName":"C:\\Windows\\System32\\whoami.exe","SubjectUserName":"ken","SubjectDomainName":"CORP"}}}"#.to_string()]);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let found = client.list(&Filters::default()).unwrap_or_default();
        if found
            .iter()
            .any(|i| i.group.get("Computer").map(String::as_str) == Some("ws-15"))
        {
            assert_eq!(found.len(), 2, "{found:#?}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no incident for the tailed line after 60 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    daemon.stop();
}
