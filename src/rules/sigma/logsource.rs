//! Sigma logsources to the events socwatch's decoders produce: which selector a Sigma rule gets,
//! how its incidents are grouped, and whether anything feeds it at all (rules nothing feeds load
//! as idle). A Windows category is Sigma's meaning of it: any event of that category, whichever
//! channel produced it (`decode::windows` says which events are which category).

use crate::decode::windows;
use crate::rules::LogsourceSelector;

/// Where a Sigma logsource's events come from in socwatch.
#[derive(Debug, Clone)]
pub struct Mapped {
    pub selector: LogsourceSelector,
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

/// Categories that arrive as JSON (or plain) lines whose source says what they are
/// (`--logsource category=proxy`, a source's `logsource` table).
const GIVEN_CATEGORIES: &[&str] = &["proxy", "firewall", "dns", "application", "antivirus"];

fn list(values: &[&str]) -> Option<Vec<String>> {
    Some(values.iter().map(|v| v.to_string()).collect())
}

fn one(value: Option<&str>) -> Option<Vec<String>> {
    value.map(|v| vec![v.to_ascii_lowercase()])
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
        (Some("windows"), _, category) => {
            mapped.group_by = vec!["Computer".into()];
            // Sigma's meaning: the category, from whichever channel (Sysmon, Security...), or
            // an input that declares it; a registry_event rule sees every registry event.
            if let Some(category) = category {
                let satisfying = windows::satisfying(category);
                if !satisfying.is_empty() {
                    mapped.selector.category = list(satisfying);
                }
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
    fn windows_categories_are_satisfied_by_any_source_of_them() {
        let windows = |service: Option<&'static str>, category: Option<&'static str>| Logsource {
            product: Some("windows".into()),
            service: service.map(Into::into),
            category: category.map(Into::into),
        };
        let m = map(Some("windows"), None, Some("process_creation"));
        assert!(m.idle.is_none());
        assert_eq!(m.group_by, vec!["Computer".to_string()]);
        // Sysmon 1, Security 4688, or an input declaring the rule's own logsource.
        assert!(
            m.selector
                .accepts(&windows(Some("sysmon"), Some("process_creation")))
        );
        assert!(
            m.selector
                .accepts(&windows(Some("security"), Some("process_creation")))
        );
        assert!(m.selector.accepts(&windows(None, Some("process_creation"))));
        assert!(
            !m.selector
                .accepts(&windows(Some("sysmon"), Some("network_connection")))
        );
        assert!(!m.selector.accepts(&windows(Some("sysmon"), None)));
        let registry = map(Some("windows"), None, Some("registry_event"));
        assert!(
            registry
                .selector
                .accepts(&windows(Some("sysmon"), Some("registry_set")))
        );
        let delete = map(Some("windows"), None, Some("registry_delete"));
        assert!(
            delete
                .selector
                .accepts(&windows(Some("sysmon"), Some("registry_add")))
        );
        let security = map(Some("windows"), Some("security"), None);
        assert!(
            security
                .selector
                .accepts(&windows(Some("security"), Some("process_creation")))
        );
        assert!(!security.selector.accepts(&windows(Some("system"), None)));
        let web = map(None, None, Some("webserver"));
        assert!(web.idle.is_none());
        assert_eq!(web.group_by, vec!["c-ip".to_string()]);
        assert!(map(None, None, Some("proxy")).idle.is_none());
    }
}
