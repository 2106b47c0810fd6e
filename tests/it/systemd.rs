//! The shipped systemd unit and example config: `systemd-analyze verify` accepts the unit (with the
//! binary path pointed at this build), the example config passes `socwatch config check`, and the
//! daemon binds the syslog port 514 as an unprivileged user holding only the capability the unit
//! gives it (`setpriv`, as systemd's `User=` and `AmbientCapabilities=` would run it).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use crate::support::{crate_dir, socwatch, stderr};

#[test]
fn the_unit_passes_systemd_analyze_verify() {
    let unit = std::fs::read_to_string(crate_dir().join("systemd/socwatch.service")).unwrap();
    for needed in [
        "Type=notify",
        "ExecStartPre=/usr/bin/socwatch --config /etc/socwatch/socwatch.toml config check",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "Restart=on-failure",
        "User=socwatch",
        "SupplementaryGroups=adm",
        "StateDirectory=socwatch",
        "ProtectSystem=strict",
        "ProtectHome=true",
        "PrivateTmp=true",
        "NoNewPrivileges=true",
        "CapabilityBoundingSet=CAP_NET_BIND_SERVICE",
        "AmbientCapabilities=CAP_NET_BIND_SERVICE",
        "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
        "SystemCallFilter=@system-service",
    ] {
        assert!(unit.lines().any(|l| l == needed), "the unit lacks {needed}");
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("socwatch.service");
    std::fs::write(
        &path,
        unit.replace("/usr/bin/socwatch", env!("CARGO_BIN_EXE_socwatch")),
    )
    .unwrap();
    let out = Command::new("systemd-analyze")
        .args(["verify", path.to_str().unwrap()])
        .output()
        .expect("systemd-analyze (package systemd) is installed");
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "systemd-analyze verify: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_units_exposure_score_stays_at_most_2_1() {
    // The README gives the score; a weakened unit must change both.
    let out = Command::new("systemd-analyze")
        .args(["security", "--offline=true", "--no-pager"])
        .arg(crate_dir().join("systemd/socwatch.service"))
        .output()
        .expect("systemd-analyze (package systemd) is installed");
    let text = String::from_utf8_lossy(&out.stdout);
    let score: f64 = text
        .lines()
        .find_map(|l| l.split_once("Overall exposure level for socwatch.service: "))
        .and_then(|(_, rest)| rest.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| {
            panic!(
                "no score in: {text}{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    assert!(score <= 2.1, "exposure {score}: {text}");
}

#[test]
fn the_example_config_is_valid() {
    let config = crate_dir().join("systemd/socwatch.toml");
    let out = socwatch(&["--config", config.to_str().unwrap(), "config", "check"]);
    assert!(out.status.success(), "{}", stderr(&out));
}

/// `nobody` on Debian: an unprivileged user, as the unit's `socwatch` user is.
const NOBODY: u32 = 65534;

/// Runs `socwatch run` as `nobody` under `setpriv` with `caps` ("" or "+net_bind_service") in its
/// inheritable, ambient and bounding sets and no_new_privs set, as the unit runs it. Returns the
/// daemon's "running" log line and its effective capabilities, or its exit and stderr.
fn run_as_nobody(dir: &Path, caps: &str) -> Result<(String, u64), String> {
    let config = dir.join("socwatch.toml");
    let mut child = Command::new("setpriv")
        .arg(format!("--reuid={NOBODY}"))
        .arg(format!("--regid={NOBODY}"))
        .arg("--clear-groups")
        .arg(format!("--inh-caps=-all{}", caps.replace('+', ",+")))
        .arg(format!("--ambient-caps=-all{}", caps.replace('+', ",+")))
        .arg(format!("--bounding-set=-all{}", caps.replace('+', ",+")))
        .arg("--no-new-privs")
        .arg("--")
        .arg(dir.join("socwatch"))
        .args(["--config", config.to_str().unwrap(), "run"])
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("setpriv (package util-linux) is installed");
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut log = String::new();
    let running = loop {
        match lines.next() {
            Some(Ok(line)) if line.contains("socwatch running") => break line,
            Some(Ok(line)) => {
                log.push_str(&line);
                log.push('\n');
            }
            _ => {
                let status = child.wait().unwrap();
                return Err(format!("{status}: {log}"));
            }
        }
    };
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .unwrap()
            .trim()
            .to_string()
    };
    assert!(
        field("Uid:")
            .split_whitespace()
            .all(|uid| uid == NOBODY.to_string()),
        "runs as {}",
        field("Uid:")
    );
    let effective = u64::from_str_radix(&field("CapEff:"), 16).unwrap();
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let exit = child.wait().unwrap();
    assert!(
        exit.success(),
        "socwatch run exited with {exit:?} on SIGTERM"
    );
    Ok((running, effective))
}

#[test]
fn an_unprivileged_user_with_only_cap_net_bind_service_binds_port_514() {
    use std::os::unix::fs::{PermissionsExt, chown};
    let dir = tempfile::tempdir().unwrap();
    // The binary where nobody may run it, the folder nobody's to write the store in.
    std::fs::copy(env!("CARGO_BIN_EXE_socwatch"), dir.path().join("socwatch")).unwrap();
    std::fs::set_permissions(
        dir.path().join("socwatch"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("socwatch.toml"),
        format!(
            "[daemon]\ndata_dir = \"{}/data\"\nlang = \"en\"\n\n\
             [[source.syslog]]\nlisten = \"127.0.0.1:514\"\nprotocol = \"udp\"\n\n\
             [api]\nlisten = \"127.0.0.1:0\"\n",
            dir.path().display()
        ),
    )
    .unwrap();
    chown(dir.path(), Some(NOBODY), Some(NOBODY)).unwrap();

    // CAP_NET_BIND_SERVICE is bit 10 of the capability sets.
    let (running, effective) = run_as_nobody(dir.path(), "+net_bind_service").unwrap();
    assert!(running.contains("syslog=udp:127.0.0.1:514"), "{running}");
    assert_eq!(effective, 1 << 10, "only CAP_NET_BIND_SERVICE is effective");

    // Without it, a clear refusal that names the way out.
    let refused = run_as_nobody(dir.path(), "").unwrap_err();
    for needed in [
        "cannot listen for syslog on udp 127.0.0.1:514",
        "Permission denied",
        "CAP_NET_BIND_SERVICE",
        "AmbientCapabilities",
    ] {
        assert!(refused.contains(needed), "no '{needed}' in: {refused}");
    }
    assert!(refused.starts_with("exit status: 1"), "{refused}");
}
