//! `socwatch status` against the real daemon: sources with their lines and last line, a listener
//! that has delivered nothing flagged, rules and store, in vi and en and JSON; and a clear exit 1
//! when no daemon answers.

use std::process::{Command, Output};

use crate::daemon::{Site, line};
use crate::support::{stderr, stdout};

fn status(site: &Site, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_socwatch"))
        .args(["--config", site.path("socwatch.toml").to_str().unwrap()])
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn status_tells_what_the_daemon_is_doing_and_when_it_is_not_running() {
    let site = Site::new(false);
    site.add_config("[[source.syslog]]\nlisten = \"127.0.0.1:0\"\nprotocol = \"udp\"\n");
    let daemon = site.start();
    site.append((0..30).map(|n| line(n, "203.0.113.5")));
    daemon.wait_for(30);
    site.point_cli_at(&daemon);

    let out = status(&site, &["status", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let sources = json["sources"].as_array().unwrap();
    let file = sources
        .iter()
        .find(|s| s["name"].as_str().unwrap().ends_with("logs/app.log"))
        .unwrap_or_else(|| panic!("{json}"));
    assert_eq!(file["kind"], "file");
    assert_eq!(file["lines"], 30);
    assert!(file["last_line"].is_string(), "{json}");
    let listener = sources.iter().find(|s| s["kind"] == "syslog").unwrap();
    assert_eq!(listener["lines"], 0);
    assert!(listener.get("last_line").is_none(), "{json}");
    assert_eq!(json["rules_loaded"], 1);
    assert_eq!(json["incidents_open"], 1);
    assert_eq!(json["cases_open"], 1, "the one incident is one case");
    assert!(json["store_bytes"].as_u64().unwrap() > 0);

    let en = stdout(&status(&site, &["--lang", "en", "status"]));
    assert!(
        en.contains("running since")
            && en.contains("no line yet")
            && en.contains("1 open incidents in 1 open cases"),
        "{en}"
    );
    let vi = stdout(&status(&site, &["--lang", "vi", "status"]));
    assert!(
        vi.contains("đang chạy từ") && vi.contains("chưa có dòng nào"),
        "{vi}"
    );
    assert!(vi.contains("Dòng cuối"), "{vi}");

    daemon.stop();
    let down = status(&site, &["--lang", "en", "status"]);
    assert_eq!(down.status.code(), Some(1));
    assert!(
        stderr(&down).contains("socwatch is not running"),
        "{}",
        stderr(&down)
    );
}
