//! Web server logs: access logs (combined, common, vhost_combined) and apache/nginx error logs.

use std::borrow::Cow;
use std::net::Ipv6Addr;

use jiff::Timestamp;
use memchr::memchr;

use super::{
    DecodeContext, civil_to_timestamp, days_from_civil, digits, fraction, month_from_abbr,
};
use crate::model::{Event, Format, Logsource};

/// Attackers nest encodings (`%252e`); three rounds undo what real payloads use without letting a
/// crafted line make us loop.
const MAX_DECODE_ROUNDS: usize = 3;

/// Decodes an access or error line of either server. `product` is the configured server, `None` when
/// detecting: access lines then say `webserver`, error lines name the server their form belongs to.
pub(crate) fn decode<'a>(
    line: &'a str,
    ctx: &DecodeContext,
    product: Option<&'static str>,
) -> Option<Event<'a>> {
    let b = line.as_bytes();
    if b.first() == Some(&b'[') {
        return apache_error(line, ctx, product);
    }
    if digits(b, 0, 4).is_some() && b.get(4) == Some(&b'/') {
        return nginx_error(line, ctx, product);
    }
    access(line, ctx, product)
}

fn web_event<'a>(
    line: &'a str,
    ts: Option<Timestamp>,
    product: &'static str,
    service: &'static str,
) -> Event<'a> {
    Event {
        raw: line,
        ts,
        format: if product == "apache" {
            Format::Apache
        } else {
            Format::Nginx
        },
        parse_error: false,
        logsource: Logsource {
            product: Some(Cow::Borrowed(product)),
            service: Some(Cow::Borrowed(service)),
            category: (service == "access").then_some(Cow::Borrowed("webserver")),
        },
        fields: Vec::with_capacity(16),
        derived: Vec::new(),
    }
}

fn push<'a>(event: &mut Event<'a>, name: &'static str, value: impl Into<Cow<'a, str>>) {
    event.fields.push((Cow::Borrowed(name), value.into()));
}

/// Pushes a decoded form as a field, and as derived text when it is not what the line says.
fn push_decoded<'a>(event: &mut Event<'a>, name: &'static str, value: Cow<'a, str>) {
    if let Cow::Owned(text) = &value {
        event.derived.push(Cow::Owned(text.clone()));
    }
    push(event, name, value);
}

/// `[vhost:port ]ip ident user [ts] "request" status bytes[ "referer" "user-agent"[ ...]]`
fn access<'a>(
    line: &'a str,
    ctx: &DecodeContext,
    product: Option<&'static str>,
) -> Option<Event<'a>> {
    let b = line.as_bytes();
    let open = memchr(b'[', b)?;
    if open < 2 || b[open - 1] != b' ' {
        return None;
    }
    let mut prefix = line[..open - 1].splitn(4, ' ');
    let (vhost, ip, user) = match (prefix.next(), prefix.next(), prefix.next(), prefix.next()) {
        (Some(ip), Some(_), Some(user), None) => (None, ip, user),
        (Some(vhost), Some(ip), Some(_), Some(user)) => (Some(vhost), ip, user),
        _ => return None,
    };
    if ip.is_empty() || user.is_empty() || ip.contains('"') {
        return None;
    }
    let close = memchr(b']', &b[open..])? + open;
    let ts = access_timestamp(&b[open + 1..close], ctx)?;
    let (request, rest) = quoted(line[close + 1..].strip_prefix(' ')?)?;
    let (status, rest) = token(rest.strip_prefix(' ')?);
    let (bytes, rest) = token(rest.strip_prefix(' ')?);
    let numeric = |t: &str| t == "-" || (!t.is_empty() && t.bytes().all(|c| c.is_ascii_digit()));
    if !numeric(status) || !numeric(bytes) {
        return None;
    }
    // Everything after the byte count is optional: common format stops here, nginx may add more.
    let (referer, rest) = match rest.strip_prefix(' ').and_then(quoted) {
        Some((referer, rest)) => (Some(referer), rest),
        None => (None, ""),
    };
    let user_agent = rest.strip_prefix(' ').and_then(quoted).map(|(ua, _)| ua);

    let mut event = web_event(line, Some(ts), product.unwrap_or("webserver"), "access");
    if let Some(vhost) = vhost {
        push(&mut event, "cs-host", vhost);
    }
    push(&mut event, "c-ip", ip);
    if user != "-" {
        push(&mut event, "cs-username", user);
    }
    if let Some((method, target, version)) = split_request(request) {
        let (stem, query) = match target.split_once('?') {
            Some((stem, query)) => (stem, Some(query)),
            None => (target, None),
        };
        push(&mut event, "cs-method", method);
        push(&mut event, "cs-uri-stem", stem);
        if let Some(query) = query.filter(|q| !q.is_empty()) {
            push(&mut event, "cs-uri-query", query);
        }
        if let Some(version) = version {
            push(&mut event, "cs-version", version);
        }
        push(&mut event, "uri", target);
        push_decoded(&mut event, "uri_decoded", decode_uri(target));
    }
    push(&mut event, "sc-status", status);
    push(&mut event, "sc-bytes", bytes);
    if let Some(referer) = referer {
        push(&mut event, "cs-referer", referer);
        if referer != "-" {
            push_decoded(&mut event, "referer_decoded", decode_uri(referer));
        }
    }
    if let Some(user_agent) = user_agent {
        push(&mut event, "cs-user-agent", user_agent);
    }
    push(&mut event, "message", line);
    Some(event)
}

/// Up to the next space (or the end), and what follows from that space on.
fn token(text: &str) -> (&str, &str) {
    match memchr(b' ', text.as_bytes()) {
        Some(space) => (&text[..space], &text[space..]),
        None => (text, ""),
    }
}

/// `"..."` at the start of `text`, honouring backslash escapes: the content as logged and the rest.
fn quoted(text: &str) -> Option<(&str, &str)> {
    let b = text.as_bytes();
    if b.first() != Some(&b'"') {
        return None;
    }
    let mut i = 1;
    loop {
        i += memchr::memchr2(b'"', b'\\', b.get(i..)?)?;
        if b[i] == b'"' {
            return Some((&text[1..i], &text[i + 1..]));
        }
        i += 2;
    }
}

/// `METHOD target[ HTTP/x]`; `None` for what is not a request at all (`-`, TLS bytes, empty).
fn split_request(request: &str) -> Option<(&str, &str, Option<&str>)> {
    let (method, rest) = request.split_once(' ')?;
    let plausible = |c: u8| c.is_ascii_uppercase() || c == b'-' || c == b'_';
    if method.is_empty() || !method.bytes().all(plausible) || rest.is_empty() {
        return None;
    }
    match rest.rsplit_once(' ') {
        Some((target, version)) if version.starts_with("HTTP/") && !target.is_empty() => {
            Some((method, target, Some(version)))
        }
        _ => Some((method, rest, None)),
    }
}

/// `20/Jan/2015:19:53:28 +0100`, also `1/Apr/2014:...` (a one-digit day, as some servers and
/// log shippers write it). The line carries its offset, so no zone is consulted; a stamp without one
/// (`[27/Jun/2013:11:55:44]`, a custom LogFormat) is read in the source's zone.
fn access_timestamp(b: &[u8], ctx: &DecodeContext) -> Option<Timestamp> {
    if b.get(1) == Some(&b'/') {
        let mut padded = Vec::with_capacity(b.len() + 1);
        padded.push(b'0');
        padded.extend_from_slice(b);
        return access_timestamp(&padded, ctx);
    }
    let day = digits(b, 0, 2)?;
    let month = u32::from(month_from_abbr(b.get(3..6)?)?);
    let year = digits(b, 7, 4)?;
    let hour = digits(b, 12, 2)?;
    let minute = digits(b, 15, 2)?;
    let second = digits(b, 18, 2)?;
    let separators = [(2, b'/'), (6, b'/'), (11, b':'), (14, b':'), (17, b':')];
    if separators.iter().any(|&(at, c)| b.get(at) != Some(&c)) {
        return None;
    }
    let (nanos, at) = fraction(b, 20);
    if b[at..].iter().all(|&c| c == b' ') {
        if !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60 {
            return None;
        }
        let second = second.min(59);
        let year = i32::try_from(year).ok()?;
        return civil_to_timestamp(&ctx.zone, year, month, day, hour, minute, second, nanos);
    }
    let sign = match b.get(at..at + 2)? {
        b" +" => 1,
        b" -" => -1,
        _ => return None,
    };
    let offset_hours = digits(b, at + 2, 2)?;
    let minutes_at = if b.get(at + 4) == Some(&b':') {
        at + 5
    } else {
        at + 4
    };
    let offset_minutes = digits(b, minutes_at, 2)?;
    if !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
        || b.len() != minutes_at + 2
    {
        return None;
    }
    let local = days_from_civil(i64::from(year), month, day) * 86_400
        + i64::from(hour * 3600 + minute * 60 + second.min(59));
    let offset = sign * i64::from(offset_hours * 3600 + offset_minutes * 60);
    Timestamp::new(local - offset, i32::try_from(nanos).ok()?).ok()
}

/// `uri` with percent-decoding applied until it stops changing (at most three rounds) and `+` read
/// as a space in the query. Borrowed when there was nothing to decode.
pub(crate) fn decode_uri(uri: &str) -> Cow<'_, str> {
    // `+` means space only in the query, and only as logged: a `+` that decoding produced is data.
    let query_from = memchr(b'?', uri.as_bytes()).unwrap_or(uri.len());
    let Some(mut current) = decode_once(uri, query_from) else {
        return Cow::Borrowed(uri);
    };
    for _ in 1..MAX_DECODE_ROUNDS {
        match decode_once(&current, usize::MAX) {
            Some(next) => current = next,
            None => break,
        }
    }
    Cow::Owned(current)
}

/// One round of `%hh` decoding (and `+` to space from `plus_from` on), invalid UTF-8 replaced;
/// `None` when there was nothing to decode.
fn decode_once(text: &str, plus_from: usize) -> Option<String> {
    let b = text.as_bytes();
    let hex = |c: u8| (c as char).to_digit(16).map(|v| v as u8);
    let escape_at =
        |i: usize| -> Option<u8> { Some(hex(*b.get(i + 1)?)? * 16 + hex(*b.get(i + 2)?)?) };
    let mut out: Vec<u8> = Vec::new();
    let mut copied = 0;
    let mut i = 0;
    while let Some(found) = memchr::memchr2(b'%', b'+', &b[i..]) {
        i += found;
        let replacement = match b[i] {
            b'+' if i >= plus_from => Some((b' ', 1)),
            b'%' => escape_at(i).map(|byte| (byte, 3)),
            _ => None,
        };
        match replacement {
            Some((byte, len)) => {
                out.extend_from_slice(&b[copied..i]);
                out.push(byte);
                i += len;
                copied = i;
            }
            None => i += 1,
        }
    }
    if copied == 0 {
        return None;
    }
    out.extend_from_slice(&b[copied..]);
    Some(match String::from_utf8(out) {
        Ok(text) => text,
        Err(err) => String::from_utf8_lossy(err.as_bytes()).into_owned(),
    })
}

/// The client address without its port. `has_port` says the log form always appends one (apache
/// 2.4), which is the only way to tell `::1:8080` from an IPv6 address ending in a group.
fn client_ip(addr: &str, has_port: bool) -> &str {
    if let Some(inner) = addr.strip_prefix('[') {
        return inner.split(']').next().unwrap_or(inner);
    }
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit());
    match addr.bytes().filter(|&c| c == b':').count() {
        0 => addr,
        1 => match addr.split_once(':') {
            Some((ip, port)) if all_digits(port) => ip,
            _ => addr,
        },
        _ => match addr.rsplit_once(':') {
            Some((ip, port)) if has_port && all_digits(port) && ip.parse::<Ipv6Addr>().is_ok() => {
                ip
            }
            _ => addr,
        },
    }
}

/// `[Tue Mar 16 15:39:29 2010] [error] [client 1.2.3.4] msg` (2.2) and
/// `[Sat Mar 15 16:04:06.105212 2010] [core:error] [pid 17408] [client 192.0.2.1:55280] msg` (2.4).
fn apache_error<'a>(
    line: &'a str,
    ctx: &DecodeContext,
    product: Option<&'static str>,
) -> Option<Event<'a>> {
    let b = line.as_bytes();
    let close = memchr(b']', b)?;
    let (ts, precise) = apache_error_timestamp(&b[1..close], ctx)?;
    let rest = line[close + 1..].strip_prefix(" [")?;
    let (level_group, mut rest) = rest.split_once(']')?;
    let (module, level) = match level_group.rsplit_once(':') {
        Some((module, level)) => (Some(module), level),
        None => (None, level_group),
    };
    if level.is_empty() || !level.bytes().all(|c| c.is_ascii_alphanumeric()) {
        return None;
    }
    let modern = precise || module.is_some();
    let mut pid = None;
    let mut client = None;
    while let Some(group) = rest.strip_prefix(' ').unwrap_or(rest).strip_prefix('[') {
        let Some((kind, value)) = group
            .split_once(' ')
            .filter(|(kind, _)| matches!(*kind, "pid" | "client" | "remote"))
        else {
            break;
        };
        // `[client [2001:db8::1]:51548]`: a bracketed IPv6 address holds the first `]`.
        let end = if value.starts_with('[') {
            value
                .find(']')
                .and_then(|i| value[i + 1..].find(']').map(|j| i + 1 + j))
        } else {
            value.find(']')
        };
        let Some(end) = end else {
            break;
        };
        let (value, after) = (&value[..end], &value[end + 1..]);
        match kind {
            "pid" => pid = Some(value.split(':').next().unwrap_or(value)),
            "client" => client = Some(client_ip(value, modern)),
            // Behind a proxy with mod_remoteip, apache names the original client `remote`.
            "remote" if client.is_none() => client = Some(client_ip(value, modern)),
            _ => {}
        }
        rest = after;
    }
    let message = rest.strip_prefix(' ').unwrap_or(rest);
    let mut event = web_event(line, ts, product.unwrap_or("apache"), "error");
    if let Some(client) = client {
        push(&mut event, "c-ip", client);
    }
    push(&mut event, "log_level", level);
    if let Some(module) = module {
        push(&mut event, "module", module);
    }
    if let Some(pid) = pid {
        push(&mut event, "pid", pid);
    }
    push(&mut event, "message", message);
    Some(event)
}

/// `Tue Mar 16 15:39:29 2010` or with microseconds; the bool says whether it had them (2.4 form).
/// The stamp proves the form; a date the zone cannot represent still yields the event, without `ts`.
fn apache_error_timestamp(b: &[u8], ctx: &DecodeContext) -> Option<(Option<Timestamp>, bool)> {
    if !b.get(..3)?.iter().all(u8::is_ascii_alphabetic)
        || b.get(3) != Some(&b' ')
        || b.get(7) != Some(&b' ')
    {
        return None;
    }
    let month = u32::from(month_from_abbr(b.get(4..7)?)?);
    let day = match b.get(8) {
        Some(b' ') => digits(b, 9, 1)?,
        _ => digits(b, 8, 2)?,
    };
    if b.get(10) != Some(&b' ') || b.get(13) != Some(&b':') || b.get(16) != Some(&b':') {
        return None;
    }
    let hour = digits(b, 11, 2)?;
    let minute = digits(b, 14, 2)?;
    let second = digits(b, 17, 2)?;
    let (nanos, at) = fraction(b, 19);
    if b.get(at) != Some(&b' ') || b.len() != at + 5 {
        return None;
    }
    let year = i32::try_from(digits(b, at + 1, 4)?).ok()?;
    let ts = civil_to_timestamp(
        &ctx.zone,
        year,
        month,
        day,
        hour,
        minute,
        second.min(59),
        nanos,
    );
    Some((ts, at != 19))
}

/// `2015/01/20 19:53:28 [error] 1234#0: *5 msg, client: 1.2.3.4, server: x, request: "..."`
fn nginx_error<'a>(
    line: &'a str,
    ctx: &DecodeContext,
    product: Option<&'static str>,
) -> Option<Event<'a>> {
    let b = line.as_bytes();
    let year = i32::try_from(digits(b, 0, 4)?).ok()?;
    let month = digits(b, 5, 2)?;
    let day = digits(b, 8, 2)?;
    let hour = digits(b, 11, 2)?;
    let minute = digits(b, 14, 2)?;
    let second = digits(b, 17, 2)?;
    let separators = [
        (7, b'/'),
        (10, b' '),
        (13, b':'),
        (16, b':'),
        (19, b' '),
        (20, b'['),
    ];
    if separators.iter().any(|&(at, c)| b.get(at) != Some(&c)) {
        return None;
    }
    let ts = civil_to_timestamp(&ctx.zone, year, month, day, hour, minute, second.min(59), 0);
    let (level, rest) = line[21..].split_once("] ")?;
    if level.is_empty() || !level.bytes().all(|c| c.is_ascii_alphabetic()) {
        return None;
    }
    // `pid#tid: ` and the connection number `*N ` are bookkeeping, not part of the message.
    let (pid, message) = match rest.split_once(": ") {
        Some((ids, message))
            if ids.contains('#') && ids.bytes().all(|c| c.is_ascii_digit() || c == b'#') =>
        {
            (ids.split('#').next(), message)
        }
        _ => (None, rest),
    };
    let message = match message.strip_prefix('*').and_then(|m| m.split_once(' ')) {
        Some((connection, message)) if connection.bytes().all(|c| c.is_ascii_digit()) => message,
        _ => message,
    };
    let client = message.find(", client: ").map(|at| {
        let value = &message[at + ", client: ".len()..];
        value.split(',').next().unwrap_or(value)
    });
    let mut event = web_event(line, ts, product.unwrap_or("nginx"), "error");
    if let Some(client) = client.filter(|c| !c.is_empty()) {
        push(&mut event, "c-ip", client_ip(client, false));
    }
    push(&mut event, "log_level", level);
    if let Some(pid) = pid {
        push(&mut event, "pid", pid);
    }
    push(&mut event, "message", message);
    Some(event)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::test_support::{assert_rendered, render, zurich_ctx};

    fn check(input: &str, expected: &str) {
        check_as(Some("nginx"), input, expected);
    }

    fn check_as(product: Option<&'static str>, input: &str, expected: &str) {
        let actual = decode(input, &zurich_ctx(), product)
            .map_or_else(|| "none".to_string(), |event| render(&event));
        assert_rendered(input, &actual, expected);
    }

    #[test]
    fn access_forms() {
        let cases = [
            (
                r#"203.0.113.7 - alice [20/Jan/2015:19:53:28 +0100] "GET /index.php?id=1+2&q=%27 HTTP/1.1" 200 512 "http://x/?a=%41" "curl/8.0""#,
                r#"nginx nginx/access/webserver 2015-01-20T18:53:28Z
                 c-ip=203.0.113.7
                 cs-username=alice
                 cs-method=GET
                 cs-uri-stem=/index.php
                 cs-uri-query=id=1+2&q=%27
                 cs-version=HTTP/1.1
                 uri=/index.php?id=1+2&q=%27
                 uri_decoded=/index.php?id=1 2&q='
                 sc-status=200
                 sc-bytes=512
                 cs-referer=http://x/?a=%41
                 referer_decoded=http://x/?a=A
                 cs-user-agent=curl/8.0
                 message=203.0.113.7 - alice [20/Jan/2015:19:53:28 +0100] "GET /index.php?id=1+2&q=%27 HTTP/1.1" 200 512 "http://x/?a=%41" "curl/8.0"
                 ~/index.php?id=1 2&q='
                 ~http://x/?a=A"#,
            ),
            (
                r#"2001:db8::1 - - [01/Feb/2026:00:00:00 -0530] "POST /login HTTP/2.0" 401 -"#,
                r#"nginx nginx/access/webserver 2026-02-01T05:30:00Z
                 c-ip=2001:db8::1
                 cs-method=POST
                 cs-uri-stem=/login
                 cs-version=HTTP/2.0
                 uri=/login
                 uri_decoded=/login
                 sc-status=401
                 sc-bytes=-
                 message=2001:db8::1 - - [01/Feb/2026:00:00:00 -0530] "POST /login HTTP/2.0" 401 -"#,
            ),
            (
                r#"www.example.vn:443 198.51.100.2 - - [22/Nov/2026:10:01:02 +0700] "GET /a%252e%252e%252fetc HTTP/1.1" 404 10 "-" "Mozilla/5.0 (X11)" "-" rt=0.001"#,
                r#"nginx nginx/access/webserver 2026-11-22T03:01:02Z
                 cs-host=www.example.vn:443
                 c-ip=198.51.100.2
                 cs-method=GET
                 cs-uri-stem=/a%252e%252e%252fetc
                 cs-version=HTTP/1.1
                 uri=/a%252e%252e%252fetc
                 uri_decoded=/a../etc
                 sc-status=404
                 sc-bytes=10
                 cs-referer=-
                 cs-user-agent=Mozilla/5.0 (X11)
                 message=www.example.vn:443 198.51.100.2 - - [22/Nov/2026:10:01:02 +0700] "GET /a%252e%252e%252fetc HTTP/1.1" 404 10 "-" "Mozilla/5.0 (X11)" "-" rt=0.001
                 ~/a../etc"#,
            ),
            (
                r#"12.34.56.78 - root [20/Jan/2015:19:53:28 +0100] "" 400 47 "-" "-" "-""#,
                r#"nginx nginx/access/webserver 2015-01-20T18:53:28Z
                 c-ip=12.34.56.78
                 cs-username=root
                 sc-status=400
                 sc-bytes=47
                 cs-referer=-
                 cs-user-agent=-
                 message=12.34.56.78 - root [20/Jan/2015:19:53:28 +0100] "" 400 47 "-" "-" "-""#,
            ),
            (
                r#"12.34.56.78 - - [20/Jan/2015:19:53:28 +0100] "\x03\x00\x00/*\xE0\x00Cookie: mstshash=Administr" 400 47 "-" "-" "-""#,
                r#"nginx nginx/access/webserver 2015-01-20T18:53:28Z
                 c-ip=12.34.56.78
                 sc-status=400
                 sc-bytes=47
                 cs-referer=-
                 cs-user-agent=-
                 message=12.34.56.78 - - [20/Jan/2015:19:53:28 +0100] "\x03\x00\x00/*\xE0\x00Cookie: mstshash=Administr" 400 47 "-" "-" "-""#,
            ),
            (
                r#"1.2.3.4 - - [20/Jan/2015:19:53:28 +0100] "GET /say\"hi\" HTTP/1.0" 200 1"#,
                r#"nginx nginx/access/webserver 2015-01-20T18:53:28Z
                 c-ip=1.2.3.4
                 cs-method=GET
                 cs-uri-stem=/say\"hi\"
                 cs-version=HTTP/1.0
                 uri=/say\"hi\"
                 uri_decoded=/say\"hi\"
                 sc-status=200
                 sc-bytes=1
                 message=1.2.3.4 - - [20/Jan/2015:19:53:28 +0100] "GET /say\"hi\" HTTP/1.0" 200 1"#,
            ),
            (
                r#"1.2.3.4 - - [32/Jan/2015:19:53:28 +0100] "GET / HTTP/1.0" 200 1"#,
                "none",
            ),
            (
                r#"1.2.3.4 - - [20/Jan/2015:19:53:28 +0100] "GET / HTTP/1.0" OK 1"#,
                "none",
            ),
            (
                r#"1.2.3.4 - - [20/Jan/2015:19:53:28 +0100] "GET / HTTP/1.0 200 1"#,
                "none",
            ),
            ("Nov 22 10:01:02 h sshd[1]: [x] y", "none"),
        ];
        for (input, expected) in cases {
            check(input, expected);
        }
    }

    #[test]
    fn product_follows_configuration() {
        let line = r#"1.2.3.4 - - [20/Jan/2015:19:53:28 +0100] "GET / HTTP/1.0" 200 1"#;
        for (product, header) in [
            (Some("apache"), "apache apache/access/webserver"),
            (None, "nginx webserver/access/webserver"),
        ] {
            let event = decode(line, &zurich_ctx(), product).unwrap();
            assert!(
                render(&event).starts_with(header),
                "{product:?}: {}",
                render(&event)
            );
        }
    }

    #[test]
    fn percent_decoding() {
        let cases = [
            ("/plain", "/plain"),
            ("/%252e%252e%252f", "/../"),
            ("/%25252e", "/."),
            ("/%2525252e", "/%2e"),
            ("/search?q=n%E1%BB%95%20h%C5%A9", "/search?q=nổ hũ"),
            ("/a+b?c+d", "/a+b?c d"),
            ("/?a=%2B+b", "/?a=+ b"),
            ("/%3Fx+y", "/?x+y"),
            ("/%ff%zz%", "/\u{fffd}%zz%"),
            ("/%E1%BB", "/\u{fffd}"),
        ];
        for (input, expected) in cases {
            assert_eq!(decode_uri(input), expected, "{input}");
        }
        assert!(matches!(decode_uri("/no/escapes?x=1"), Cow::Borrowed(_)));
    }

    #[test]
    fn error_logs() {
        let cases = [
            (
                "[Tue Mar 16 15:39:29 2010] [error] [client 58.179.109.179] user x not found: /",
                "apache apache/error/- 2010-03-16T14:39:29Z
                 c-ip=58.179.109.179
                 log_level=error
                 message=user x not found: /",
            ),
            (
                "[Sat Mar 15 16:04:06.105212 2010] [core:error] [pid 17408:tid 3] [client 192.0.2.1:55280] AH00126: Invalid URI",
                "apache apache/error/- 2010-03-15T15:04:06.105212Z
                 c-ip=192.0.2.1
                 log_level=error
                 module=core
                 pid=17408
                 message=AH00126: Invalid URI",
            ),
            (
                "[Thu Jul 11 01:21:44 2013] [error] [client 2001:db8::80da:af6b:8b2c] user test not found: /",
                "apache apache/error/- 2013-07-10T23:21:44Z
                 c-ip=2001:db8::80da:af6b:8b2c
                 log_level=error
                 message=user test not found: /",
            ),
            (
                "[Thu Jul 11 01:21:44.5 2013] [auth_basic:error] [client ::1:48326] AH01618: user x not found",
                "apache apache/error/- 2013-07-10T23:21:44.5Z
                 c-ip=::1
                 log_level=error
                 module=auth_basic
                 message=AH01618: user x not found",
            ),
            (
                "[Thu Jul 11 01:21:44.5 2013] [auth_basic:error] [pid 7:tid 9] [client [2001:db8::1]:51548] AH01618: user x not found",
                "apache apache/error/- 2013-07-10T23:21:44.5Z
                 c-ip=2001:db8::1
                 log_level=error
                 module=auth_basic
                 pid=7
                 message=AH01618: user x not found",
            ),
            (
                "[Sat Jun 01 02:17:42 2013] [error] [client 192.168.33.1] File does not exist: /srv/[client 192.168.0.1] x",
                "apache apache/error/- 2013-06-01T00:17:42Z
                 c-ip=192.168.33.1
                 log_level=error
                 message=File does not exist: /srv/[client 192.168.0.1] x",
            ),
            (
                r#"2012/04/09 11:53:29 [error] 2865#0: *66647 user "xyz" was not found in "/x", client: 192.0.43.10, server: www.myhost.com, request: "GET / HTTP/1.1", host: "www.myhost.com""#,
                r#"nginx nginx/error/- 2012-04-09T09:53:29Z
                 c-ip=192.0.43.10
                 log_level=error
                 pid=2865
                 message=user "xyz" was not found in "/x", client: 192.0.43.10, server: www.myhost.com, request: "GET / HTTP/1.1", host: "www.myhost.com""#,
            ),
            (
                "2026/11/22 10:01:02 [emerg] 1#1: bind() to 0.0.0.0:80 failed",
                "nginx nginx/error/- 2026-11-22T09:01:02Z
                 log_level=emerg
                 pid=1
                 message=bind() to 0.0.0.0:80 failed",
            ),
            (
                "[Tue Mar 16 15:39:29 2010] error without level brackets",
                "none",
            ),
            ("2026/11/22 10:01:02 error", "none"),
        ];
        for (input, expected) in cases {
            check_as(None, input, expected);
        }
        // Configured as nginx, an apache error line is still decoded, under the configured product.
        check(
            "[Tue Mar 16 15:39:29 2010] [warn] [client 1.2.3.4] x",
            "nginx nginx/error/- 2010-03-16T14:39:29Z\nc-ip=1.2.3.4\nlog_level=warn\nmessage=x",
        );
    }
}
