//! `scan` on hostile input: invalid UTF-8, NUL bytes, a 10 MB line, CRLF, a truncated gzip, stdin,
//! several files out of order. Every other attack line is still found and the oddities are counted.

use std::io::Write;

use crate::support::{fixture, incidents, socwatch, stderr};

fn attack(n: usize) -> Vec<u8> {
    format!("Nov 22 10:{:02}:{:02} portal-01 sshd[811]: Failed password for root from 203.0.113.{} port 51514 ssh2", n / 60, n % 60, n % 200 + 1).into_bytes()
}

/// Builds a log mixing attack lines with every kind of bad input; returns it and how many attack lines it holds.
fn hostile_log() -> (Vec<u8>, u64) {
    let mut log = Vec::new();
    let mut attacks = 0;
    for n in 0..50 {
        log.extend(attack(n));
        log.push(b'\n');
        attacks += 1;
        match n % 5 {
            0 => log.extend(b"Nov 22 10:00:00 portal-01 kernel: \xff\xfe garbage \xc3\x28 bytes\n"),
            1 => log.extend(b"\0\0\0\0\0\0\0\0 preallocated after a crash\n"),
            2 => {
                // An attack line with a bad byte inside is still an attack line.
                let mut line = attack(n + 1000);
                line.splice(30..30, *b"\xff");
                log.extend(line);
                log.push(b'\n');
                attacks += 1;
            }
            3 => {
                log.extend(attack(n + 2000));
                log.extend(b"\r\n");
                attacks += 1;
            }
            _ => {}
        }
        if n == 25 {
            log.extend(std::iter::repeat_n(b'A', 10 * 1024 * 1024));
            log.push(b'\n');
        }
    }
    (log, attacks)
}

fn scan_json(files: &[&std::path::Path]) -> (Vec<serde_json::Value>, String) {
    let rules = fixture("rules");
    let mut args = vec![
        "--lang",
        "en",
        "scan",
        "--json",
        "--rules",
        rules.to_str().unwrap(),
    ];
    args.extend(files.iter().map(|f| f.to_str().unwrap()));
    let out = socwatch(&args);
    (incidents(&out), stderr(&out))
}

fn total_count(found: &[serde_json::Value]) -> u64 {
    found.iter().map(|i| i["count"].as_u64().unwrap()).sum()
}

#[test]
fn bad_bytes_nul_huge_lines_and_crlf_lose_no_attack_line() {
    let dir = tempfile::tempdir().unwrap();
    let (log, attacks) = hostile_log();
    let path = dir.path().join("auth.log");
    std::fs::write(&path, &log).unwrap();
    let (found, err) = scan_json(&[&path]);
    assert_eq!(
        total_count(&found),
        attacks,
        "every attack line counted once"
    );
    assert!(err.contains("invalid UTF-8"), "{err}");
    let invalid = 10 + 10; // the garbage lines and the attack lines with a bad byte
    assert!(err.contains(&format!("{invalid} invalid UTF-8")), "{err}");
    assert!(err.contains("10 with NUL bytes"), "{err}");
    assert!(err.contains("1 cut at 65536 bytes"), "{err}");
    for incident in &found {
        for evidence in incident["evidence"].as_array().unwrap() {
            assert!(
                !evidence["line"].as_str().unwrap().ends_with('\r'),
                "CR stripped"
            );
        }
    }
}

#[test]
fn a_truncated_gzip_is_read_up_to_the_cut_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = hostile_log();
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(&log).unwrap();
    let gz = encoder.finish().unwrap();
    let whole = dir.path().join("auth.log.2.gz");
    std::fs::write(&whole, &gz).unwrap();
    let (complete, _) = scan_json(&[&whole]);

    let cut = dir.path().join("auth.log.3.gz");
    std::fs::write(&cut, &gz[..gz.len() * 2 / 3]).unwrap();
    let (partial, err) = scan_json(&[&cut]);
    assert!(err.contains("gzip stream is truncated"), "{err}");
    let (all, some) = (total_count(&complete), total_count(&partial));
    assert!(
        some > 0 && some < all,
        "read up to the cut: {some} of {all}"
    );
}

#[test]
fn stdin_is_scanned_like_a_file() {
    let rules = fixture("rules");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_socwatch"))
        .args(["scan", "--json", "--rules", rules.to_str().unwrap(), "-"])
        .env("SOCWATCH_CONFIG", "/dev/null")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    for n in 0..7 {
        input.write_all(&attack(n)).unwrap();
        input.write_all(b"\n").unwrap();
    }
    drop(input);
    let out = child.wait_with_output().unwrap();
    assert_eq!(total_count(&incidents(&out)), 7);
}

#[test]
fn several_files_are_merged_by_event_time() {
    // Five failures spread over two rotated files: a threshold of 5 in 10 minutes only fires if
    // the files are read as one timeline, whatever order they are named in.
    let dir = tempfile::tempdir().unwrap();
    let rule = dir.path().join("rule.yml");
    std::fs::write(
        &rule,
        "id: five-in-ten\ntitle: t\nseverity: high\nmatch: {message: 'Failed password for (?P<user>\\S+) from (?P<src_ip>\\S+)'}\nthreshold: {count: 5, within: 10m, group_by: [src_ip]}\nsuppress: 1m\n",
    )
    .unwrap();
    let line = |minute: u32| {
        format!(
            "Nov 22 10:{minute:02}:00 portal-01 sshd[811]: Failed password for root from 198.51.100.9 port 22 ssh2\n"
        )
    };
    // Older file: minutes 0, 2, 4 and a lone one at 30; newer: 6 and 8.
    let older = dir.path().join("auth.log.1");
    std::fs::write(&older, [0, 2, 4, 30].map(line).concat()).unwrap();
    let newer = dir.path().join("auth.log");
    std::fs::write(&newer, [31, 33].map(line).concat()).unwrap();
    let interleaved = dir.path().join("auth.log.0");
    std::fs::write(&interleaved, [6, 8].map(line).concat()).unwrap();
    let out = socwatch(&[
        "scan",
        "--json",
        "--timezone",
        "UTC",
        "--rules",
        rule.to_str().unwrap(),
        newer.to_str().unwrap(),
        interleaved.to_str().unwrap(),
        older.to_str().unwrap(),
    ]);
    let found = incidents(&out);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0]["count"], 5);
    assert!(
        found[0]["first_seen"]
            .as_str()
            .unwrap()
            .contains("T17:00:00+07:00"),
        "{}",
        found[0]["first_seen"]
    );
}

/// Several files read in parallel give exactly the incidents of reading them one after the other
/// on one thread: the merge by event time, not the threads, decides the order correlation sees.
#[test]
fn parallel_scan_equals_sequential_scan() {
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for f in 0..6 {
        let path = dir.path().join(format!("auth{f}.log"));
        let mut text = String::new();
        for i in 0..400 {
            // Interleaved times across files, shared addresses, so groups span files.
            let second = i * 6 + f;
            text.push_str(&format!(
                "Nov 22 10:{:02}:{:02} portal-01 sshd[{}]: Failed password for invalid user u{} from 203.0.113.{} port {} ssh2\n",
                second / 60 % 60,
                second % 60,
                1000 + i,
                i % 7,
                i % 5,
                40000 + i
            ));
        }
        std::fs::write(&path, text).unwrap();
        files.push(path.display().to_string());
    }
    let run = |threads: &str| {
        let mut args = vec!["scan", "--json", "--threads", threads];
        args.extend(files.iter().map(String::as_str));
        let out = crate::support::socwatch(&args);
        let mut incidents = crate::support::incidents(&out);
        for incident in &mut incidents {
            incident.as_object_mut().unwrap().remove("id");
        }
        incidents
    };
    let sequential = run("1");
    assert!(!sequential.is_empty());
    assert_eq!(run("4"), sequential);
    assert_eq!(run("6"), sequential);
}

/// `scan --matches` lists every hit with its line number and fields, before any threshold: one
/// failed login opens no incident but is listed.
#[test]
fn scan_matches_lists_every_hit_without_thresholds() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("auth.log");
    std::fs::write(
        &path,
        "Nov 22 10:00:01 portal-01 sshd[1]: Accepted publickey for deploy from 10.0.0.5 port 1 ssh2\n\
         Nov 22 10:00:02 portal-01 sshd[2]: Failed password for root from 203.0.113.7 port 2 ssh2\n",
    )
    .unwrap();
    let file = path.display().to_string();
    let out = crate::support::socwatch(&["scan", "--matches", "--json", &file]);
    let hits = crate::support::incidents(&out);
    let rules: Vec<&str> = hits
        .iter()
        .map(|h| h["rule_id"].as_str().unwrap())
        .collect();
    assert!(
        rules.contains(&"ssh-bruteforce") && rules.contains(&"ssh-root-login-attempt"),
        "{hits:?}"
    );
    assert!(
        hits.iter()
            .all(|h| h["line"] == 2 && h["fields"]["src_ip"] == "203.0.113.7"),
        "{hits:?}"
    );
    let table = crate::support::socwatch(&["--lang", "en", "scan", "--matches", &file]);
    let text = crate::support::stdout(&table);
    assert!(
        text.starts_with("File") && text.contains("ssh-bruteforce") && text.contains("user=root"),
        "{text}"
    );
    let vi = crate::support::stdout(&crate::support::socwatch(&["scan", "--matches", &file]));
    assert!(
        vi.starts_with("Tệp") && vi.contains("Trường trích xuất"),
        "{vi}"
    );
    // Without --matches the single failure is below every threshold: no incident.
    let incidents =
        crate::support::incidents(&crate::support::socwatch(&["scan", "--json", &file]));
    assert!(incidents.is_empty(), "{incidents:?}");
}

/// More inputs than threads, with the files a thread serves first holding the later times: the merge
/// waits for a thread's other file while the first one's channel is full. It must neither hang nor
/// change the incidents.
#[test]
fn parallel_scan_with_more_files_than_threads_and_skewed_times() {
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for f in 0..4 {
        let path = dir.path().join(format!("auth{f}.log"));
        // Files 0 and 1 (served first by threads 0 and 1) are two hours later than files 2 and 3.
        let hour = if f < 2 { 12 } else { 10 };
        let mut text = String::new();
        for i in 0..6000 {
            text.push_str(&format!(
                "Nov 22 {hour}:{:02}:{:02} portal-01 sshd[{}]: Failed password for root from 198.51.100.{} port {} ssh2\n",
                i / 100 % 60,
                i % 60,
                1000 + i,
                i % 9 + f * 10,
                40000 + i % 20000
            ));
        }
        std::fs::write(&path, text).unwrap();
        files.push(path.display().to_string());
    }
    let run = |threads: &str| {
        let mut args = vec!["scan", "--json", "--threads", threads];
        args.extend(files.iter().map(String::as_str));
        let mut incidents = crate::support::incidents(&crate::support::socwatch(&args));
        for incident in &mut incidents {
            incident.as_object_mut().unwrap().remove("id");
        }
        incidents
    };
    let sequential = run("1");
    assert!(!sequential.is_empty());
    assert_eq!(run("2"), sequential);
}

/// Issue 17: `--jobs` cuts one big plain file into pieces read on several threads. The incidents,
/// the cases and every hit's line number must be those of one reader, with the conditions that
/// make a piece differ from a whole file: times years old, times that go backwards, and runs of
/// lines without a time (which take the time of the line before, even across a piece's start).
#[test]
fn issue17_a_file_read_in_pieces_gives_what_one_reader_gives() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("auth.log");
    let mut text = String::new();
    let mut seed: u64 = 17;
    let mut next = |n: u64| {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 33) % n
    };
    let mut second = 0u64;
    for i in 0..6000u64 {
        let ip = format!("203.0.113.{}", next(12));
        let message = match next(10) {
            0 => format!("Accepted password for admin from {ip} port 2222 ssh2"),
            1 => format!("Invalid user u{} from {ip} port 40000", next(50)),
            _ => format!("Failed password for root from {ip} port {} ssh2", 40000 + i),
        };
        // Mostly forward, sometimes a minute back (a skewed writer).
        second = if next(25) == 0 {
            second.saturating_sub(60)
        } else {
            second + next(4)
        };
        let line = match (i / 500) % 3 {
            // Two years old, with the zone written.
            0 => format!(
                "2024-03-01T{:02}:{:02}:{:02}+07:00 portal-01 sshd[{i}]: {message}",
                10 + second / 3600 % 10,
                second / 60 % 60,
                second % 60
            ),
            // Runs of untimed lines, so pieces start inside them.
            1 if i % 500 < 150 => message,
            _ => format!(
                "Nov 22 {:02}:{:02}:{:02} portal-01 sshd[{i}]: {message}",
                10 + second / 3600 % 10,
                second / 60 % 60,
                second % 60
            ),
        };
        text.push_str(&line);
        text.push('\n');
    }
    std::fs::write(&path, &text).unwrap();
    let file = path.display().to_string();
    let run = |jobs: &str, what: &str| {
        let mut args = vec!["--lang", "en", "scan", "--json", "--jobs", jobs];
        args.extend(["--piece-size", "4096"]);
        if !what.is_empty() {
            args.push(what);
        }
        args.push(&file);
        let out = crate::support::socwatch(&args);
        (
            crate::support::incidents(&out),
            crate::support::stderr(&out),
        )
    };
    for what in ["", "--cases", "--matches"] {
        let (one_reader, said) = run("1", what);
        assert!(one_reader.len() > 10, "{what}: {one_reader:?}");
        assert!(!said.contains("pieces"), "{said}");
        for jobs in ["2", "3"] {
            let (pieced, said) = run(jobs, what);
            assert!(said.contains("pieces at once"), "{said}");
            assert_eq!(pieced, one_reader, "--jobs {jobs} {what}");
        }
    }
}
