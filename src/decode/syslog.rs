//! Syslog lines: RFC 3164 (BSD), RFC 5424, rsyslog's ISO-timestamp form and the journal's dateless short form.

use std::borrow::Cow;

use jiff::Timestamp;
use memchr::memchr;

use super::{
    DecodeContext, civil_to_timestamp, digits, fraction, month_from_abbr, parse_iso_timestamp,
};
use crate::model::{Event, Format, Logsource};

const CACHE_SLOTS: usize = 8;
const DAY_SECONDS: i64 = 86_400;

/// What RFC 3164 stamps need that they do not carry: the year, resolved against the reference,
/// and hour-level civil-to-UTC conversions, cached because a zone lookup costs more than the parse.
#[derive(Debug)]
pub(crate) struct SyslogState {
    year: i32,
    /// A stamp later than this (reference + 1 day) belongs to the previous year.
    latest: i64,
    /// Direct-mapped by (month, day, hour): the start of that hour this year and the year before.
    slots: [Option<HourSlot>; CACHE_SLOTS],
}

#[derive(Debug, Clone, Copy)]
struct HourSlot {
    key: u32,
    this_year: Option<i64>,
    last_year: Option<i64>,
}

impl SyslogState {
    pub(crate) fn new(ctx: &DecodeContext) -> Self {
        SyslogState {
            year: ctx.reference.to_zoned(ctx.zone.clone()).year().into(),
            latest: ctx.reference.as_second().saturating_add(DAY_SECONDS),
            slots: [None; CACHE_SLOTS],
        }
    }

    fn timestamp(&mut self, ctx: &DecodeContext, stamp: &Rfc3164Stamp) -> Option<Timestamp> {
        let key = (stamp.month * 32 + stamp.day) * 24 + stamp.hour;
        let index = key as usize % CACHE_SLOTS;
        let slot = match self.slots[index] {
            Some(slot) if slot.key == key => slot,
            _ => {
                let start = |year| {
                    civil_to_timestamp(&ctx.zone, year, stamp.month, stamp.day, stamp.hour, 0, 0, 0)
                        .map(|ts| ts.as_second())
                };
                let slot = HourSlot {
                    key,
                    this_year: start(self.year),
                    last_year: start(self.year - 1),
                };
                self.slots[index] = Some(slot);
                slot
            }
        };
        let within_hour = i64::from(stamp.minute * 60 + stamp.second);
        let second = match slot.this_year.map(|start| start + within_hour) {
            Some(second) if second <= self.latest => second,
            // Dec 31 read on Jan 1, or Feb 29 in a year that has none.
            _ => slot.last_year? + within_hour,
        };
        Timestamp::new(second, i32::try_from(stamp.nanos).ok()?).ok()
    }
}

/// Decodes any of the syslog forms, or `None` if the line is none of them.
pub(crate) fn decode<'a>(
    line: &'a str,
    ctx: &DecodeContext,
    state: &mut SyslogState,
) -> Option<Event<'a>> {
    let b = line.as_bytes();
    let start = skip_pri(b);
    let rest = &line[start..];
    let rb = rest.as_bytes();
    if start > 0 && rb.len() > 2 && rb[0].is_ascii_digit() && rb[1] == b' ' {
        return decode_5424(line, &rest[2..], ctx);
    }
    // rsyslog's RFC 3339 stamp always has the `T`; a bare date is more likely some other log.
    if digits(rb, 0, 4).is_some() && rb.get(4) == Some(&b'-') && rb.get(10) == Some(&b'T') {
        let end = memchr(b' ', rb)?;
        let ts = parse_iso_timestamp(&rest[..end], &ctx.zone)?;
        return Some(with_host_and_tag(line, Some(ts), &rest[end + 1..]));
    }
    if let Some((stamp, used)) = parse_3164_stamp(rb) {
        let ts = state.timestamp(ctx, &stamp);
        return Some(with_host_and_tag(line, ts, &rest[used..]));
    }
    if start == 0 {
        return decode_dateless(line);
    }
    None
}

/// Length of a leading `<PRI>`, 0 if there is none.
fn skip_pri(b: &[u8]) -> usize {
    if b.first() != Some(&b'<') {
        return 0;
    }
    match b.iter().take(5).position(|&c| c == b'>') {
        Some(end) if end > 1 && b[1..end].iter().all(u8::is_ascii_digit) => end + 1,
        _ => 0,
    }
}

struct Rfc3164Stamp {
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
    nanos: u32,
}

/// `Nov 22 10:01:02 `, `Feb 6 ...`, `Feb  6 ...`, optionally with fractional seconds. Returns the
/// stamp and the length consumed including the space after it.
fn parse_3164_stamp(b: &[u8]) -> Option<(Rfc3164Stamp, usize)> {
    let month = u32::from(month_from_abbr(b.get(..3)?)?);
    if b.get(3) != Some(&b' ') {
        return None;
    }
    let mut i = 4;
    if b.get(i) == Some(&b' ') {
        i += 1;
    }
    let (day, used) = match digits(b, i, 2) {
        Some(day) => (day, 2),
        None => (digits(b, i, 1)?, 1),
    };
    i += used;
    if b.get(i) != Some(&b' ') || b.get(i + 3) != Some(&b':') || b.get(i + 6) != Some(&b':') {
        return None;
    }
    let hour = digits(b, i + 1, 2)?;
    let minute = digits(b, i + 4, 2)?;
    let second = digits(b, i + 7, 2)?;
    let (nanos, after) = fraction(b, i + 9);
    if b.get(after) != Some(&b' ')
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    // A leap second has no civil representation; it is logged as the second before.
    let second = second.min(59);
    let stamp = Rfc3164Stamp {
        month,
        day,
        hour,
        minute,
        second,
        nanos,
    };
    Some((stamp, after + 1))
}

/// `host tag: message` after a timestamp. A line without a recognisable tag keeps everything
/// after the host as its message rather than failing: the stamp already proved it is syslog.
/// Some devices send no host at all (`Nov 22 10:01:02 sshd[1]: msg`): a first word ending in `:`
/// is then the tag.
fn with_host_and_tag<'a>(line: &'a str, ts: Option<Timestamp>, rest: &'a str) -> Event<'a> {
    let (host, after_host) = match memchr(b' ', rest.as_bytes()) {
        Some(space) if rest[..space].ends_with(':') => ("", rest),
        Some(space) => (&rest[..space], &rest[space + 1..]),
        None => (rest, ""),
    };
    let tag = parse_tag(after_host);
    let mut event = syslog_event(line, ts, tag.program);
    if !host.is_empty() {
        event
            .fields
            .push((Cow::Borrowed("host"), Cow::Borrowed(host)));
    }
    push_tag(&mut event, tag);
    event
}

struct Tag<'a> {
    program: Option<&'a str>,
    pid: Option<&'a str>,
    message: &'a str,
}

/// `prog[pid]: msg`, `prog: msg`, `prog[pid] msg` (proftpd), or no tag at all.
fn parse_tag(text: &str) -> Tag<'_> {
    let untagged = Tag {
        program: None,
        pid: None,
        message: text,
    };
    let b = text.as_bytes();
    let Some(end) = b.iter().position(|&c| matches!(c, b'[' | b':' | b' ')) else {
        return untagged;
    };
    if end == 0 {
        return untagged;
    }
    let program = Some(&text[..end]);
    match b[end] {
        b':' => Tag {
            program,
            pid: None,
            message: after_colon(text, end),
        },
        b'[' => {
            let Some(close) = memchr(b']', &b[end..]).map(|i| end + i) else {
                return untagged;
            };
            let pid = &text[end + 1..close];
            if pid.is_empty() || pid.contains(' ') {
                return untagged;
            }
            let message = match b.get(close + 1) {
                Some(b':') => after_colon(text, close + 1),
                Some(b' ') => &text[close + 2..],
                None => "",
                Some(_) => return untagged,
            };
            Tag {
                program,
                pid: Some(pid),
                message,
            }
        }
        _ => untagged,
    }
}

fn after_colon(text: &str, colon: usize) -> &str {
    let rest = &text[colon + 1..];
    rest.strip_prefix(' ').unwrap_or(rest)
}

/// `host prog[pid]: msg` or `prog[pid]: msg`, as `journalctl -o short`-like tools print without a
/// date. Without a stamp almost any text could pass for this, so the pid and colon are required.
fn decode_dateless(line: &str) -> Option<Event<'_>> {
    let (host, tag) = match strict_tag(line) {
        Some(tag) => (None, tag),
        None => {
            let space = memchr(b' ', line.as_bytes())?;
            let host = &line[..space];
            if host.is_empty()
                || !host
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || b"-._".contains(&c))
            {
                return None;
            }
            (Some(host), strict_tag(&line[space + 1..])?)
        }
    };
    let mut event = syslog_event(line, None, tag.program);
    if let Some(host) = host {
        event
            .fields
            .push((Cow::Borrowed("host"), Cow::Borrowed(host)));
    }
    push_tag(&mut event, tag);
    Some(event)
}

fn strict_tag(text: &str) -> Option<Tag<'_>> {
    let tag = parse_tag(text);
    let program = tag.program?;
    let pid = tag.pid?;
    let close = program.len() + pid.len() + 2;
    let plausible_program = program
        .bytes()
        .all(|c| c.is_ascii_alphanumeric() || b"-_./@()".contains(&c));
    (plausible_program
        && pid.bytes().all(|c| c.is_ascii_digit())
        && text.as_bytes().get(close) == Some(&b':'))
    .then_some(tag)
}

fn syslog_event<'a>(line: &'a str, ts: Option<Timestamp>, program: Option<&str>) -> Event<'a> {
    Event {
        raw: line,
        ts,
        format: Format::Syslog,
        parse_error: false,
        logsource: Logsource {
            product: Some(Cow::Borrowed("linux")),
            service: program.and_then(service_of),
            category: None,
        },
        fields: Vec::with_capacity(6),
        derived: Vec::new(),
    }
}

fn push_tag<'a>(event: &mut Event<'a>, tag: Tag<'a>) {
    if let Some(program) = tag.program {
        event
            .fields
            .push((Cow::Borrowed("program"), Cow::Borrowed(program)));
    }
    if let Some(pid) = tag.pid {
        event
            .fields
            .push((Cow::Borrowed("pid"), Cow::Borrowed(pid)));
    }
    event
        .fields
        .push((Cow::Borrowed("message"), Cow::Borrowed(tag.message)));
    if event.logsource.service.as_deref() == Some("sshd")
        && let Some(ip) = sshd_peer(tag.message)
    {
        // Sigma rules cannot extract fields, so a Sigma correlation over sshd events needs the
        // peer's address already decoded to group by it (named as the shipped rules name it).
        event
            .fields
            .push((Cow::Borrowed("src_ip"), Cow::Borrowed(ip)));
    }
}

/// The address after sshd's last ` from ` (the last, so a user name cannot inject one).
fn sshd_peer(message: &str) -> Option<&str> {
    let at = message.rfind(" from ")? + " from ".len();
    let token = message[at..].split(' ').next()?;
    token.parse::<std::net::IpAddr>().is_ok().then_some(token)
}

/// Programs common enough that naming their service should not allocate.
const KNOWN_SERVICES: &[&str] = &[
    "sshd",
    "sudo",
    "su",
    "cron",
    "kernel",
    "systemd",
    "postfix",
    "dovecot",
    "named",
    "vsftpd",
    "proftpd",
    "pure-ftpd",
    "nginx",
    "httpd",
    "apache2",
    "login",
    "smbd",
    "sendmail",
    "sm-mta",
    "imapd",
    "ntpd",
    "dhclient",
    "auditd",
    "polkitd",
    "systemd-logind",
    "dropbear",
    "xinetd",
    "openvpn",
    "squid",
    "mysqld",
];

/// The logsource service of a program: lower-cased, without `/...` or `(...)`; `sshd-session` is `sshd`.
fn service_of(program: &str) -> Option<Cow<'static, str>> {
    // `/usr/sbin/cron[12]` names the binary by path: its last component is the program.
    let program = match program.strip_prefix('/') {
        Some(path) => path.rsplit('/').next().unwrap_or(path),
        None => program,
    };
    let end = program.find(['/', '(', '[']).unwrap_or(program.len());
    let name = &program[..end];
    if name.is_empty() {
        return None;
    }
    if name.eq_ignore_ascii_case("sshd-session") {
        return Some(Cow::Borrowed("sshd"));
    }
    if let Some(known) = KNOWN_SERVICES
        .iter()
        .find(|known| known.eq_ignore_ascii_case(name))
    {
        return Some(Cow::Borrowed(known));
    }
    Some(Cow::Owned(name.to_lowercase()))
}

/// `<PRI>1 TIMESTAMP HOST APP PROCID MSGID SD [MSG]`, given the text after `<PRI>1 `.
fn decode_5424<'a>(line: &'a str, rest: &'a str, ctx: &DecodeContext) -> Option<Event<'a>> {
    let mut rest = rest;
    let mut header = [""; 5];
    for slot in &mut header {
        let space = memchr(b' ', rest.as_bytes())?;
        *slot = &rest[..space];
        rest = &rest[space + 1..];
    }
    let nil = |value: &'a str| (value != "-" && !value.is_empty()).then_some(value);
    let [stamp, host, app, procid, msgid] = header.map(nil);
    let ts = match stamp {
        Some(stamp) => Some(parse_iso_timestamp(stamp, &ctx.zone)?),
        None => None,
    };
    let mut event = syslog_event(line, ts, app);
    for (name, value) in [
        ("host", host),
        ("program", app),
        ("pid", procid),
        ("msgid", msgid),
    ] {
        if let Some(value) = value {
            event
                .fields
                .push((Cow::Borrowed(name), Cow::Borrowed(value)));
        }
    }
    let message = if let Some(after) = rest.strip_prefix('-') {
        after
    } else {
        parse_structured_data(rest, &mut event)?
    };
    let message = match message.strip_prefix(' ') {
        Some(message) => message,
        None if message.is_empty() => message,
        None => return None,
    };
    let message = message.strip_prefix('\u{feff}').unwrap_or(message);
    event
        .fields
        .push((Cow::Borrowed("message"), Cow::Borrowed(message)));
    Some(event)
}

/// `[id k="v" ...][id2 ...]`: each parameter becomes `sd.ID.PARAM`. Returns the text after it.
fn parse_structured_data<'a>(mut rest: &'a str, event: &mut Event<'a>) -> Option<&'a str> {
    if !rest.starts_with('[') {
        return None;
    }
    while let Some(element) = rest.strip_prefix('[') {
        let b = element.as_bytes();
        let id_end = b.iter().position(|&c| c == b' ' || c == b']')?;
        let id = &element[..id_end];
        if id.is_empty() {
            return None;
        }
        let mut at = id_end;
        loop {
            match b.get(at)? {
                b']' => {
                    at += 1;
                    break;
                }
                b' ' => {
                    let eq = memchr(b'=', &b[at..])? + at;
                    let name = &element[at + 1..eq];
                    if b.get(eq + 1) != Some(&b'"') || name.is_empty() || name.contains([' ', ']'])
                    {
                        return None;
                    }
                    let (value, close) = sd_value(element, eq + 2)?;
                    if let Cow::Owned(unescaped) = &value {
                        event.derived.push(Cow::Owned(unescaped.clone()));
                    }
                    event
                        .fields
                        .push((Cow::Owned(format!("sd.{id}.{name}")), value));
                    at = close + 1;
                }
                _ => return None,
            }
        }
        rest = &element[at..];
    }
    Some(rest)
}

/// A parameter value starting at `start` (after its opening quote): the value with `\"`, `\\` and
/// `\]` unescaped, and the index of its closing quote. Other backslashes are kept, as RFC 5424 says.
fn sd_value(text: &str, start: usize) -> Option<(Cow<'_, str>, usize)> {
    let b = text.as_bytes();
    let mut owned: Option<String> = None;
    let mut copied = start;
    let mut i = start;
    loop {
        i = memchr::memchr2(b'"', b'\\', b.get(i..)?)? + i;
        if b[i] == b'"' {
            let value = match owned {
                Some(mut out) => {
                    out.push_str(&text[copied..i]);
                    Cow::Owned(out)
                }
                None => Cow::Borrowed(&text[start..i]),
            };
            return Some((value, i));
        }
        if matches!(b.get(i + 1), Some(b'"' | b'\\' | b']')) {
            let out = owned.get_or_insert_with(String::new);
            out.push_str(&text[copied..i]);
            copied = i + 1;
            i += 2;
        } else {
            i += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use jiff::tz::TimeZone;

    use super::*;
    use crate::decode::test_support::{assert_rendered, render, zurich_ctx};

    fn check(input: &str, expected: &str) {
        check_with(&zurich_ctx(), input, expected);
    }

    fn check_with(ctx: &DecodeContext, input: &str, expected: &str) {
        let mut state = SyslogState::new(ctx);
        let actual = decode(input, ctx, &mut state)
            .map_or_else(|| "none".to_string(), |event| render(&event));
        assert_rendered(input, &actual, expected);
    }

    fn ctx_at(zone: &str, reference: &str) -> DecodeContext {
        DecodeContext::new(TimeZone::get(zone).unwrap(), reference.parse().unwrap())
    }

    #[test]
    fn rfc3164() {
        let cases = [
            (
                "Jun 21 16:47:48 digital-mlhhyiqscv sshd[13709]: error: PAM: Authentication failure for x from 192.030.0.6",
                "syslog linux/sshd/- 2005-06-21T14:47:48Z
                 host=digital-mlhhyiqscv
                 program=sshd
                 pid=13709
                 message=error: PAM: Authentication failure for x from 192.030.0.6",
            ),
            (
                "<38>Nov 22 10:01:02 portal-01 sshd-session[811]: Failed password for root",
                "syslog linux/sshd/- 2004-11-22T09:01:02Z
                 host=portal-01
                 program=sshd-session
                 pid=811
                 message=Failed password for root",
            ),
            (
                "Feb 6 12:02:29 server vsftpd(pam_unix)[15522]: authentication failure; rhost=64.168.103.1",
                "syslog linux/vsftpd/- 2005-02-06T11:02:29Z
                 host=server
                 program=vsftpd(pam_unix)
                 pid=15522
                 message=authentication failure; rhost=64.168.103.1",
            ),
            (
                "Feb  6 12:02:29 mail postfix/smtpd[123]: NOQUEUE: reject",
                "syslog linux/postfix/- 2005-02-06T11:02:29Z
                 host=mail
                 program=postfix/smtpd
                 pid=123
                 message=NOQUEUE: reject",
            ),
            (
                "Oct 11 01:06:47 ServerJV imapd: Login failed user=x",
                "syslog linux/imapd/- 2004-10-10T23:06:47Z
                 host=ServerJV
                 program=imapd
                 message=Login failed user=x",
            ),
            (
                "Jan 10 00:00:00 myhost proftpd[12345] myhost.domain.com (1.2.3.4[1.2.3.4]): USER u",
                "syslog linux/proftpd/- 2005-01-09T23:00:00Z
                 host=myhost
                 program=proftpd
                 pid=12345
                 message=myhost.domain.com (1.2.3.4[1.2.3.4]): USER u",
            ),
            (
                "Aug  3 10:00:00 gw sm-mta[5133]: ruleset=check_rcpt",
                "syslog linux/sm-mta/- 2005-08-03T08:00:00Z
                 host=gw
                 program=sm-mta
                 pid=5133
                 message=ruleset=check_rcpt",
            ),
            (
                "Aug  3 10:00:00.250 gw Something without a tag",
                "syslog linux/-/- 2005-08-03T08:00:00.25Z
                 host=gw
                 message=Something without a tag",
            ),
            (
                "Aug 03 10:00:00 gw CRON[77]:",
                "syslog linux/cron/- 2005-08-03T08:00:00Z
                 host=gw
                 program=CRON
                 pid=77
                 message=",
            ),
            (
                "Aug  3 10:00:00 kernel: [  12.3] usb 1-1: new device",
                "syslog linux/kernel/- 2005-08-03T08:00:00Z
                 program=kernel
                 message=[  12.3] usb 1-1: new device",
            ),
            ("Aug 32 10:00:00 gw x: y", "none"),
            ("Aug 3 25:00:00 gw x: y", "none"),
            ("Foo 3 10:00:00 gw x: y", "none"),
        ];
        for (input, expected) in cases {
            check(input, expected);
        }
    }

    #[test]
    fn year_inference() {
        // Two weeks after the reference is last year; within a day of it is this year.
        check(
            "Aug 28 10:00:00 h a: b",
            "syslog linux/a/- 2004-08-28T08:00:00Z\nhost=h\nprogram=a\nmessage=b",
        );
        check(
            "Aug 15 11:00:00 h a: b",
            "syslog linux/a/- 2005-08-15T09:00:00Z\nhost=h\nprogram=a\nmessage=b",
        );
        // New Year: a Dec 31 line read on Jan 1 belongs to the old year.
        let ctx = ctx_at("Asia/Ho_Chi_Minh", "2026-01-01T00:30:00+07:00");
        check_with(
            &ctx,
            "Dec 31 23:59:59 h a: b",
            "syslog linux/a/- 2025-12-31T16:59:59Z\nhost=h\nprogram=a\nmessage=b",
        );
        check_with(
            &ctx,
            "Jan  1 00:10:00 h a: b",
            "syslog linux/a/- 2025-12-31T17:10:00Z\nhost=h\nprogram=a\nmessage=b",
        );
        // Feb 29 in a year without one falls back to the previous year when that has one.
        let ctx = ctx_at("UTC", "2025-03-01T00:00:00Z");
        check_with(
            &ctx,
            "Feb 29 12:00:00 h a: b",
            "syslog linux/a/- 2024-02-29T12:00:00Z\nhost=h\nprogram=a\nmessage=b",
        );
    }

    #[test]
    fn zones_and_cache() {
        let ctx = ctx_at("Europe/Zurich", "2026-12-01T00:00:00Z");
        let mut state = SyslogState::new(&ctx);
        // Same hour twice (cache hit), then both sides of the autumn fold and a summer line.
        let cases = [
            ("Mar 29 01:59:59 h a: b", "2026-03-29T00:59:59Z"),
            ("Mar 29 03:00:00 h a: b", "2026-03-29T01:00:00Z"),
            ("Jul  1 12:00:00 h a: b", "2026-07-01T10:00:00Z"),
            ("Jul  1 12:30:00 h a: b", "2026-07-01T10:30:00Z"),
            ("Oct 25 02:30:00 h a: b", "2026-10-25T00:30:00Z"),
            ("Nov 22 10:01:02 h a: b", "2026-11-22T09:01:02Z"),
        ];
        for (input, expected) in cases {
            let event = decode(input, &ctx, &mut state).unwrap();
            assert_eq!(event.ts.unwrap().to_string(), expected, "{input}");
        }
        let utc = ctx_at("UTC", "2026-12-01T00:00:00Z");
        check_with(
            &utc,
            "Nov 22 10:01:02 h a: b",
            "syslog linux/a/- 2026-11-22T10:01:02Z\nhost=h\nprogram=a\nmessage=b",
        );
    }

    #[test]
    fn rfc5424() {
        let cases = [
            (
                "<34>1 2026-11-22T10:01:02.123Z mymachine su - ID47 - \u{feff}'su root' failed on /dev/pts/8",
                "syslog linux/su/- 2026-11-22T10:01:02.123Z
                 host=mymachine
                 program=su
                 msgid=ID47
                 message='su root' failed on /dev/pts/8",
            ),
            (
                r#"<165>1 2026-11-22T10:01:02+07:00 h app 42 - [exampleSDID@32473 iut="3" eventSource="Appl\"ic\\a\]tion"][meta x="y"] hi"#,
                r#"syslog linux/app/- 2026-11-22T03:01:02Z
                 host=h
                 program=app
                 pid=42
                 sd.exampleSDID@32473.iut=3
                 sd.exampleSDID@32473.eventSource=Appl"ic\a]tion
                 sd.meta.x=y
                 message=hi
                 ~Appl"ic\a]tion"#,
            ),
            (
                r#"<13>1 - - - - - [a b="c\d"]"#,
                r#"syslog linux/-/- -
                 sd.a.b=c\d
                 message="#,
            ),
            ("<13>1 2026-11-22T10:01:02Z h a 1 - [broken", "none"),
            ("<13>1 notatime h a 1 - - x", "none"),
        ];
        for (input, expected) in cases {
            check(input, expected);
        }
    }

    #[test]
    fn iso_and_dateless() {
        let cases = [
            (
                "2026-11-22T10:01:02.123456+07:00 web-01 sshd[42]: Accepted publickey for deploy",
                "syslog linux/sshd/- 2026-11-22T03:01:02.123456Z
                 host=web-01
                 program=sshd
                 pid=42
                 message=Accepted publickey for deploy",
            ),
            (
                "srv sshd[13709]: error: PAM: Authentication failure",
                "syslog linux/sshd/- -
                 host=srv
                 program=sshd
                 pid=13709
                 message=error: PAM: Authentication failure",
            ),
            (
                "sshd[13709]: Invalid user x",
                "syslog linux/sshd/- -
                 program=sshd
                 pid=13709
                 message=Invalid user x",
            ),
            ("just some words: here", "none"),
            ("2026-11-22 not a syslog line", "none"),
            ("srv sshd: no pid", "none"),
            (r#"{"a": "b[1]: c"}"#, "none"),
            ("", "none"),
        ];
        for (input, expected) in cases {
            check(input, expected);
        }
    }
}
