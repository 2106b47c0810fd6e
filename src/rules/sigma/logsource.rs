//! Sigma logsources to the events socwatch's decoders produce: which selector a Sigma rule gets,
//! what it adds to the detection (Sysmon event ids for Windows categories), how its incidents are
//! grouped, and whether anything feeds it at all (rules nothing feeds load as idle).

use crate::rules::LogsourceSelector;
use crate::rules::condition::{Condition, Test};

/// Where a Sigma logsource's events come from in socwatch.
#[derive(Debug, Clone)]
pub struct Mapped {
    pub selector: LogsourceSelector,
    /// Added to the detection with AND (e.g. `EventID: 1` for Sysmon process creation).
    pub extra: Option<Condition>,
    /// Why nothing feeds this logsource, when nothing does.
    pub idle: Option<String>,
    /// Fields that separate incidents of a plain Sigma rule (an attacker's address, a host).
    pub group_by: Vec<String>,
}

/// Programs whose messages syslog writes to auth.log / secure (the auth and authpriv facilities).
const AUTH_PROGRAMS: &[&str] = &[
    "sshd",
    "sudo",
    "su",
    "login",
    "passwd",
    "chpasswd",
    "chage",
    "useradd",
    "userdel",
    "usermod",
    "groupadd",
    "groupdel",
    "groupmod",
    "gpasswd",
    "newusers",
    "systemd-logind",
    "polkitd",
    "pkexec",
    "cron",
    "dropbear",
    "unix_chkpwd",
];

/// Sysmon's event ids for Sigma's Windows categories (Sigma's own Sysmon mapping).
const SYSMON: &[(&str, &[&str])] = &[
    ("process_creation", &["1"]),
    ("file_change", &["2"]),
    ("network_connection", &["3"]),
    ("sysmon_status", &["4", "16"]),
    ("process_termination", &["5"]),
    ("driver_load", &["6"]),
    ("image_load", &["7"]),
    ("create_remote_thread", &["8"]),
    ("raw_access_thread", &["9"]),
    ("process_access", &["10"]),
    ("file_event", &["11"]),
    ("registry_add", &["12"]),
    ("registry_delete", &["12"]),
    ("registry_set", &["13"]),
    ("registry_rename", &["14"]),
    ("registry_event", &["12", "13", "14"]),
    ("create_stream_hash", &["15"]),
    ("pipe_created", &["17", "18"]),
    ("wmi_event", &["19", "20", "21"]),
    ("dns_query", &["22"]),
    ("file_delete", &["23", "26"]),
    ("clipboard_capture", &["24"]),
    ("process_tampering", &["25"]),
    ("file_delete_detected", &["26"]),
    ("file_block_executable", &["27"]),
    ("file_block_shredding", &["28"]),
    ("file_executable_detected", &["29"]),
    ("sysmon_error", &["255"]),
];

/// PowerShell's categories: (category, service the events come as, event ids).
const POWERSHELL: &[(&str, &str, &[&str])] = &[
    ("ps_module", "powershell", &["4103"]),
    ("ps_script", "powershell", &["4104"]),
    ("ps_classic_start", "powershell-classic", &["400"]),
    ("ps_classic_provider_start", "powershell-classic", &["600"]),
    ("ps_classic_script", "powershell-classic", &["800"]),
];

/// Categories that arrive as JSON (or plain) lines whose source says what they are
/// (`--logsource category=proxy`, a source's `logsource` table).
const GIVEN_CATEGORIES: &[&str] = &["proxy", "firewall", "dns", "application", "antivirus"];

fn list(values: &[&str]) -> Option<Vec<String>> {
    Some(values.iter().map(|v| v.to_string()).collect())
}

fn one(value: Option<&str>) -> Option<Vec<String>> {
    value.map(|v| vec![v.to_ascii_lowercase()])
}

fn event_ids(ids: &[&str]) -> Condition {
    Condition::Field {
        field: "EventID".into(),
        test: Test::OneOf {
            values: ids.iter().map(|s| s.to_string()).collect(),
            ignore_case: false,
        },
    }
}

fn describe(product: Option<&str>, service: Option<&str>, category: Option<&str>) -> String {
    let parts: Vec<String> = [
        ("product", product),
        ("service", service),
        ("category", category),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.map(|v| format!("{k}={v}")))
    .collect();
    parts.join(",")
}

/// Maps a Sigma logsource (values as the rule writes them).
pub fn map(product: Option<&str>, service: Option<&str>, category: Option<&str>) -> Mapped {
    let mut mapped = Mapped {
        selector: LogsourceSelector {
            product: one(product),
            service: one(service),
            category: one(category),
        },
        extra: None,
        idle: None,
        group_by: Vec::new(),
    };
    let product_l = product.map(str::to_ascii_lowercase);
    let service_l = service.map(str::to_ascii_lowercase);
    let category_l = category.map(str::to_ascii_lowercase);
    match (
        product_l.as_deref(),
        service_l.as_deref(),
        category_l.as_deref(),
    ) {
        // Syslog: product linux, service = the program.
        (Some("linux"), service, None) => {
            mapped.group_by = vec!["host".into()];
            match service {
                None | Some("syslog") => mapped.selector.service = None,
                Some("auth") => mapped.selector.service = list(AUTH_PROGRAMS),
                Some("cron") => mapped.selector.service = list(&["cron", "crond", "anacron"]),
                Some("clamav") => {
                    mapped.selector.service = list(&["clamd", "freshclam", "clamav", "clamscan"])
                }
                Some("guacamole") => mapped.selector.service = list(&["guacd", "guacamole"]),
                Some("auditd") => {
                    mapped.idle = Some(
                        "product=linux,service=auditd: audit.log's format is not decoded".into(),
                    )
                }
                Some(_) => {}
            }
        }
        (Some("linux"), _, Some(category)) => {
            mapped.idle = Some(format!(
                "{}: these events come from auditd or Sysmon for Linux, which no decoder reads \
                 (JSON lines given --logsource product=linux,category={category} would run it)",
                describe(product, service, Some(category))
            ));
        }
        // Web access logs (nginx, apache): category webserver, product nginx/apache.
        (_, _, Some("webserver")) => mapped.group_by = vec!["c-ip".into()],
        // `service: apache` / `service: nginx` are the servers' own (error) logs.
        (None, Some(server @ ("apache" | "nginx")), None) => {
            mapped.selector.product = one(Some(server));
            mapped.selector.service = None;
            mapped.group_by = vec!["c-ip".into()];
        }
        (Some("windows"), service, category) => {
            mapped.group_by = vec!["Computer".into()];
            if let Some(category) = category {
                if let Some((_, ids)) = SYSMON.iter().find(|(c, _)| *c == category) {
                    mapped.selector.category = None;
                    mapped.selector.service = list(&["sysmon"]);
                    mapped.extra = Some(event_ids(ids));
                } else if let Some((_, svc, ids)) =
                    POWERSHELL.iter().find(|(c, _, _)| *c == category)
                {
                    mapped.selector.category = None;
                    mapped.selector.service = list(&[svc]);
                    mapped.extra = Some(event_ids(ids));
                }
            } else if service.is_none() {
                mapped.selector.product = list(&["windows"]);
            }
        }
        (_, _, Some(category)) if GIVEN_CATEGORIES.contains(&category) => {
            if category == "proxy" {
                mapped.group_by = vec!["c-ip".into()];
            }
        }
        _ => {
            mapped.idle = Some(format!(
                "{}: no decoder produces these events (JSON lines given this --logsource would run it)",
                describe(product, service, category)
            ));
        }
    }
    mapped
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Logsource;

    fn syslog(program: &'static str) -> Logsource {
        Logsource {
            product: Some("linux".into()),
            service: Some(program.into()),
            category: None,
        }
    }

    #[test]
    fn linux_services_route_syslog_programs() {
        let auth = map(Some("linux"), Some("auth"), None);
        assert!(auth.idle.is_none());
        assert!(auth.selector.accepts(&syslog("sshd")));
        assert!(auth.selector.accepts(&syslog("sudo")));
        assert!(!auth.selector.accepts(&syslog("postfix")));
        let all = map(Some("linux"), Some("syslog"), None);
        assert!(all.selector.accepts(&syslog("postfix")));
        let cron = map(Some("linux"), Some("cron"), None);
        assert!(cron.selector.accepts(&syslog("cron")));
        assert!(!cron.selector.accepts(&syslog("sshd")));
        assert!(map(Some("linux"), Some("auditd"), None).idle.is_some());
        assert!(
            map(Some("linux"), None, Some("process_creation"))
                .idle
                .is_some()
        );
        assert!(map(Some("zeek"), Some("dns"), None).idle.is_some());
    }

    #[test]
    fn windows_categories_become_sysmon_event_ids() {
        let m = map(Some("windows"), None, Some("process_creation"));
        assert!(m.idle.is_none());
        let sysmon = Logsource {
            product: Some("windows".into()),
            service: Some("sysmon".into()),
            category: None,
        };
        assert!(m.selector.accepts(&sysmon));
        assert!(matches!(m.extra, Some(Condition::Field { ref field, .. }) if field == "EventID"));
        let web = map(None, None, Some("webserver"));
        assert!(web.idle.is_none());
        assert_eq!(web.group_by, vec!["c-ip".to_string()]);
        assert!(map(None, None, Some("proxy")).idle.is_none());
    }
}
