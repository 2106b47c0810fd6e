//! Tests of the decoder API: line preparation, the configured-format fallback, format detection, and
//! a property test that no input makes any decoder panic or lose the line.

use proptest::prelude::*;

use super::test_support::{render, zurich_ctx};
use super::*;

const SSHD: &str =
    "Jun 21 16:47:48 digital-mlhhyiqscv sshd[13709]: error: PAM: Authentication failure for x";
const ACCESS: &str =
    r#"12.34.56.78 - - [20/Jan/2015:19:53:28 +0100] "GET / HTTP/1.1" 400 47 "-" "-""#;
const APACHE_ERROR: &str =
    "[Thu Jul 11 01:21:41 2013] [error] [client 194.228.20.113] user  not found: /";
const NGINX_ERROR: &str =
    "2014/04/01 22:20:38 [error] 30708#0: *3 user \"x\": password mismatch, client: 10.0.2.2";
const IIS_DEFAULT: &str =
    "2026-11-22 03:01:02 10.0.0.5 GET / - 443 - 203.0.113.9 Mozilla/5.0 - 200 0 0 15";
const JSON: &str = r#"{"msg":"hi","level":"info"}"#;
const PLAIN: &str =
    "Fri Jan 19 12:20:33 2007 [pid 27202] [anonymous] FAIL LOGIN: Client \"64.106.46.98\"";

#[test]
fn prepare_line_cases() {
    struct Case {
        bytes: &'static [u8],
        max: usize,
        text: &'static str,
        flags: LineFlags,
        borrowed: bool,
    }
    let clean = LineFlags::default();
    let cases = [
        Case {
            bytes: b"abc\r",
            max: 100,
            text: "abc",
            flags: clean,
            borrowed: true,
        },
        Case {
            bytes: b"a\rb",
            max: 100,
            text: "a\rb",
            flags: clean,
            borrowed: true,
        },
        Case {
            bytes: b"a\xffb",
            max: 100,
            text: "a\u{fffd}b",
            flags: LineFlags {
                invalid_utf8: true,
                ..clean
            },
            borrowed: false,
        },
        Case {
            bytes: b"a\0b",
            max: 100,
            text: "a\0b",
            flags: LineFlags {
                nul_bytes: true,
                ..clean
            },
            borrowed: true,
        },
        // "nổ" is n, then three bytes for ổ: a cut after its second byte drops the partial character.
        Case {
            bytes: "nổ hũ".as_bytes(),
            max: 3,
            text: "n",
            flags: LineFlags {
                truncated_from: Some(8),
                ..clean
            },
            borrowed: true,
        },
        Case {
            bytes: b"abcdef\r",
            max: 4,
            text: "abcd",
            flags: LineFlags {
                truncated_from: Some(6),
                ..clean
            },
            borrowed: true,
        },
        Case {
            bytes: b"\xff\0abc",
            max: 3,
            text: "\u{fffd}\0a",
            flags: LineFlags {
                invalid_utf8: true,
                nul_bytes: true,
                truncated_from: Some(5),
            },
            borrowed: false,
        },
        Case {
            bytes: b"",
            max: 10,
            text: "",
            flags: clean,
            borrowed: true,
        },
    ];
    for case in cases {
        let line = prepare_line(case.bytes, case.max);
        assert_eq!(line.text, case.text, "{:?}", case.bytes);
        assert_eq!(line.flags, case.flags, "{:?}", case.bytes);
        assert_eq!(
            matches!(line.text, Cow::Borrowed(_)),
            case.borrowed,
            "{:?}",
            case.bytes
        );
    }
}

#[test]
fn configured_format_falls_back_to_plain_with_parse_error() {
    let cases = [
        (
            Format::Syslog,
            SSHD,
            "syslog linux/sshd/- 2005-06-21T14:47:48Z",
        ),
        (Format::Syslog, JSON, "plain -/-/- - parse_error"),
        (
            Format::Nginx,
            ACCESS,
            "nginx nginx/access/webserver 2015-01-20T18:53:28Z",
        ),
        (
            Format::Apache,
            ACCESS,
            "apache apache/access/webserver 2015-01-20T18:53:28Z",
        ),
        (
            Format::Apache,
            NGINX_ERROR,
            "apache apache/error/- 2014-04-01T20:20:38Z",
        ),
        (Format::Nginx, SSHD, "plain -/-/- - parse_error"),
        (Format::Json, JSON, "json -/-/- -"),
        (Format::Json, SSHD, "plain -/-/- - parse_error"),
        (Format::Plain, SSHD, "plain -/-/- -"),
        // Auto tries every decoder and a line none knows is plain, but not an error.
        (
            Format::Auto,
            SSHD,
            "syslog linux/sshd/- 2005-06-21T14:47:48Z",
        ),
        (
            Format::Auto,
            ACCESS,
            "nginx webserver/access/webserver 2015-01-20T18:53:28Z",
        ),
        (
            Format::Auto,
            APACHE_ERROR,
            "apache apache/error/- 2013-07-10T23:21:41Z",
        ),
        (Format::Auto, JSON, "json -/-/- -"),
        (Format::Auto, PLAIN, "plain -/-/- -"),
    ];
    for (format, input, header) in cases {
        let mut decoder = Decoder::new(format, zurich_ctx());
        let event = decoder.decode(input);
        let rendered = render(&event);
        assert_eq!(rendered.lines().next(), Some(header), "{format:?} {input}");
        assert_eq!(event.raw, input);
        if event.format == Format::Plain {
            assert_eq!(event.message(), input);
        }
    }
}

#[test]
fn detect_format_cases() {
    let cases: [(&[&str], Format); 11] = [
        (
            &[
                "#Software: Microsoft Internet Information Services 10.0",
                SSHD,
                SSHD,
            ],
            Format::Iis,
        ),
        (&[IIS_DEFAULT, IIS_DEFAULT, PLAIN], Format::Iis),
        (&[SSHD, "", SSHD, PLAIN], Format::Syslog),
        (&[ACCESS, ACCESS, PLAIN], Format::Nginx),
        (&[ACCESS, APACHE_ERROR], Format::Apache),
        (&[NGINX_ERROR, ACCESS], Format::Nginx),
        (&[JSON, JSON, SSHD], Format::Json),
        (&[PLAIN, "   "], Format::Plain),
        (&[], Format::Plain),
        // Ties go to syslog, then web, then JSON.
        (&[SSHD, ACCESS, JSON], Format::Syslog),
        (&[ACCESS, JSON], Format::Nginx),
    ];
    for (sample, expected) in cases {
        assert_eq!(detect_format(sample), expected, "{sample:?}");
    }
    // Only the first 20 non-empty lines count: 20 plain lines outvote the syslog after them.
    let mut sample = vec![PLAIN; 20];
    sample.extend([SSHD; 30]);
    assert_eq!(detect_format(&sample), Format::Plain);
}

#[test]
fn hostile_lines_do_not_panic() {
    let long = format!("Nov 22 10:01:02 h p[1]: {}", "\u{fffd}\0".repeat(20_000));
    let opening = "[".repeat(65_536);
    let quotes = format!(
        "1.2.3.4 - - [20/Jan/2015:19:53:28 +0100] \"{}",
        "\\".repeat(1001)
    );
    for line in [
        long.as_str(),
        opening.as_str(),
        quotes.as_str(),
        "<999999>",
        "<1>",
        "<1>1 ",
        "2026-",
        "\u{feff}",
    ] {
        for format in ALL_FORMATS {
            let event = Decoder::new(format, zurich_ctx()).decode(line);
            assert_eq!(event.raw, line);
        }
    }
}

const ALL_FORMATS: [Format; 7] = Format::ALL;

/// Bytes that are mostly the delimiters the decoders look for, so the search reaches deep states.
fn line_bytes() -> impl Strategy<Value = Vec<u8>> {
    let interesting = prop_oneof![
        Just(b"<34>1 ".to_vec()),
        Just(b"Nov 22 10:01:02 ".to_vec()),
        Just(b"[20/Jan/2015:19:53:28 +0100] ".to_vec()),
        Just(b"[Tue Mar 16 15:39:29 2010] [error] [client ".to_vec()),
        Just(b"2015/01/20 19:53:28 [error] 1#0: ".to_vec()),
        Just(b"{\"a\":".to_vec()),
        Just(b"#Fields: date time c-ip sc-status ".to_vec()),
        Just(b"Nov 22 10:01:02 h nginx[1]: ".to_vec()),
        Just("\"\\u00e9nổ%E1%BB%25".as_bytes().to_vec()),
        prop::collection::vec(
            prop::sample::select(b"[]\"\\: -=%+?{},0123456789\0\r\xff\xe1".to_vec()),
            0..8
        ),
        prop::collection::vec(any::<u8>(), 0..8),
    ];
    prop::collection::vec(interesting, 0..12).prop_map(|parts| parts.concat())
}

proptest! {
    #[test]
    fn no_input_panics_and_raw_is_the_prepared_text(bytes in line_bytes(), max in 1usize..200) {
        let line = prepare_line(&bytes, max);
        // Only the U+FFFD replacements (3 bytes for as little as 1) may take the text past the cap.
        let cap = if line.flags.invalid_utf8 { 3 * max } else { max };
        prop_assert!(line.text.len() <= cap);
        for format in ALL_FORMATS {
            let mut decoder = Decoder::new(format, zurich_ctx());
            let event = decoder.decode(&line.text);
            prop_assert_eq!(event.raw, line.text.as_ref());
            prop_assert!(!event.parse_error || event.format == Format::Plain);
        }
    }
}

/// Web servers logging through syslog: the message is decoded as the access or error line it is,
/// under the webserver field names, keeping the syslog host and program; the line's own stamp wins.
#[test]
fn web_lines_wrapped_in_syslog_are_web_events() {
    let cases = [
        (
            r#"Nov 22 10:01:02 web-01 nginx[123]: 1.2.3.4 - - [22/Nov/2026:10:01:02 +0700] "GET /wp-login.php?a=%27 HTTP/1.1" 404 5 "-" "curl/8""#,
            r#"nginx nginx/access/webserver 2026-11-22T03:01:02Z
             host=web-01
             program=nginx
             pid=123
             c-ip=1.2.3.4
             cs-method=GET
             cs-uri-stem=/wp-login.php
             cs-uri-query=a=%27
             cs-version=HTTP/1.1
             uri=/wp-login.php?a=%27
             uri_decoded=/wp-login.php?a='
             sc-status=404
             sc-bytes=5
             cs-referer=-
             cs-user-agent=curl/8
             message=1.2.3.4 - - [22/Nov/2026:10:01:02 +0700] "GET /wp-login.php?a=%27 HTTP/1.1" 404 5 "-" "curl/8"
             ~/wp-login.php?a='"#,
        ),
        (
            r#"2023-12-09T21:35:20+01:00 host nginx[983479]: 2023/12/09 21:35:20 [error] 983479#983479: *2 limiting requests, excess: 1.4 by zone "one", client: 192.0.2.2, server: x"#,
            r#"nginx nginx/error/- 2023-12-09T20:35:20Z
             host=host
             program=nginx
             pid=983479
             c-ip=192.0.2.2
             log_level=error
             message=limiting requests, excess: 1.4 by zone "one", client: 192.0.2.2, server: x"#,
        ),
        (
            "Nov 22 10:01:02 web-01 apache2[9]: [client 1.2.3.4] script '/var/www/x.php' not found or unable to stat",
            "syslog linux/apache2/- 2004-11-22T09:01:02Z
             host=web-01
             program=apache2
             pid=9
             message=[client 1.2.3.4] script '/var/www/x.php' not found or unable to stat",
        ),
        (
            "Nov 22 10:01:02 web-01 sshd[9]: 1.2.3.4 - - [22/Nov/2026:10:01:02 +0700] \"GET / HTTP/1.1\" 200 1",
            "syslog linux/sshd/- 2004-11-22T09:01:02Z
             host=web-01
             program=sshd
             pid=9
             message=1.2.3.4 - - [22/Nov/2026:10:01:02 +0700] \"GET / HTTP/1.1\" 200 1",
        ),
    ];
    for format in [Format::Syslog, Format::Auto] {
        for (line, expected) in cases {
            let event = Decoder::new(format, zurich_ctx()).decode(line);
            super::test_support::assert_rendered(line, &render(&event), expected);
        }
    }
}

/// `[1/Apr/2014:...]` (one-digit day) and a stamp without an offset (read in the source's zone).
#[test]
fn access_dates_with_one_digit_days_and_no_offset() {
    let mut decoder = Decoder::new(Format::Nginx, zurich_ctx());
    for (line, ts) in [
        (
            r#"1.2.3.4 - - [1/Apr/2014:10:01:02 +0700] "GET / HTTP/1.1" 200 1"#,
            "2014-04-01T03:01:02Z",
        ),
        (
            r#"1.2.3.4 - - [01/Apr/2014:10:01:02 +0700] "GET / HTTP/1.1" 200 1"#,
            "2014-04-01T03:01:02Z",
        ),
        (
            r#"1.2.3.4 - u [27/Jun/2013:11:55:44] "GET / HTTP/1.1" 200 1"#,
            "2013-06-27T09:55:44Z",
        ),
    ] {
        let event = decoder.decode(line);
        assert!(!event.parse_error, "{line}");
        assert_eq!(
            event.ts.map(|t| t.to_string()).as_deref(),
            Some(ts),
            "{line}"
        );
    }
    assert!(
        decoder
            .decode(r#"1.2.3.4 - - [1/Apx/2014:10:01:02 +0700] "GET / HTTP/1.1" 200 1"#)
            .parse_error
    );
}
