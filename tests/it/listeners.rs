//! Syslog listeners label their messages themselves: system and level come from the listener a
//! message arrived on, not from whichever listener its sender used first (issue 11, finding 4), and a
//! listener's `timezone` reads RFC 3164 stamps from a sender that logs in UTC (finding 5).

use std::process::Command;
use std::time::Duration;

use socwatch::query::Filters;

use crate::daemon::{Daemon, Site};

fn send(daemon: &Daemon, proto: &str, message: &str) {
    let addr = daemon
        .syslog_addr(proto)
        .expect("the daemon names its listener");
    let (_, port) = addr.rsplit_once(':').unwrap();
    // The sender's clock is in UTC, as on many appliances and cloud hosts.
    let status = Command::new("logger")
        .env("TZ", "UTC")
        .args([
            "--server",
            "127.0.0.1",
            "--port",
            port,
            &format!("--{proto}"),
        ])
        .args(["--rfc3164", "-t", "postfix/smtpd", message])
        .status()
        .expect("logger (bsdutils) is installed");
    assert!(status.success());
}

#[test]
fn each_listener_labels_its_own_messages_and_reads_its_own_zone() {
    let site = Site::new(false);
    site.add_config(
        "[[source.syslog]]\nlisten = \"127.0.0.1:0\"\nprotocol = \"udp\"\nsystem = \"perimeter-firewall\"\nlevel = 3\n\n\
         [[source.syslog]]\nlisten = \"127.0.0.1:0\"\nprotocol = \"tcp\"\nsystem = \"mail\"\nlevel = 2\ntimezone = \"UTC\"\n",
    );
    site.set_daemon_option("timezone = \"Asia/Ho_Chi_Minh\"");
    let daemon = site.start();
    // The same peer (127.0.0.1) uses the firewall listener first, then the mail one.
    send(&daemon, "udp", "attempt 1 from 198.51.100.1");
    daemon.wait_for(1);
    send(&daemon, "tcp", "attempt 2 from 198.51.100.2");
    daemon.wait_for(2);
    let incidents = daemon.client().list(&Filters::default()).unwrap();
    let by_address = |ip: &str| {
        incidents
            .iter()
            .find(|i| i.group.get("src_ip").map(String::as_str) == Some(ip))
            .unwrap_or_else(|| panic!("no incident for {ip}: {incidents:?}"))
    };
    let firewall = by_address("198.51.100.1");
    let mail = by_address("198.51.100.2");
    assert_eq!(
        (firewall.system.as_str(), firewall.level),
        ("perimeter-firewall", 3)
    );
    assert_eq!(
        (mail.system.as_str(), mail.level),
        ("mail", 2),
        "the mail listener's message must not take the firewall listener's labels"
    );
    let now = jiff::Timestamp::now();
    let off = |ts: jiff::Timestamp| now.duration_since(ts).unsigned_abs();
    assert!(
        off(mail.first_seen) < Duration::from_secs(600),
        "a UTC sender on a listener with timezone = UTC is read right: {} vs now {now}",
        mail.first_seen
    );
    assert!(
        off(firewall.first_seen) > Duration::from_secs(6 * 3600),
        "the same UTC stamp on a listener without its own zone is read in daemon.timezone: {}",
        firewall.first_seen
    );
    daemon.stop();
}
