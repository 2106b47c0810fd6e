//! The shipped systemd unit and example config: `systemd-analyze verify` accepts the unit (with the
//! binary path pointed at this build), and the example config passes `socwatch config check`.

use std::process::Command;

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
fn the_example_config_is_valid() {
    let config = crate_dir().join("systemd/socwatch.toml");
    let out = socwatch(&["--config", config.to_str().unwrap(), "config", "check"]);
    assert!(out.status.success(), "{}", stderr(&out));
}
