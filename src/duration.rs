//! Durations as operators write them in rules and config: `90s`, `10m`, `24h`, `7d`, `500ms`, or `1h30m`.

use std::time::Duration;

/// Parses `"10m"`-style durations; several parts may be chained (`1h30m`). Zero is allowed.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("empty duration (expected e.g. 90s, 10m, 24h, 7d)".into());
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(format!(
                "bad duration '{text}' (expected e.g. 90s, 10m, 24h, 7d)"
            ));
        }
        let number: u64 = rest[..digits]
            .parse()
            .map_err(|_| format!("bad duration '{text}': number too large"))?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let unit_secs_millis: (u64, u64) = match &rest[..unit_len] {
            "ms" => (0, 1),
            "s" => (1, 0),
            "m" => (60, 0),
            "h" => (3600, 0),
            "d" => (86_400, 0),
            "w" => (7 * 86_400, 0),
            "" => {
                return Err(format!(
                    "bad duration '{text}': missing unit (ms, s, m, h, d, w)"
                ));
            }
            unit => return Err(format!("bad duration '{text}': unknown unit '{unit}'")),
        };
        rest = &rest[unit_len..];
        let part = Duration::from_secs(number.saturating_mul(unit_secs_millis.0))
            + Duration::from_millis(number.saturating_mul(unit_secs_millis.1));
        total = total.saturating_add(part);
    }
    Ok(total)
}

/// The shortest exact spelling of a duration, for messages and `rules list`.
pub fn format_duration(duration: Duration) -> String {
    let secs = duration.as_secs();
    if duration.subsec_millis() != 0 || secs == 0 {
        return format!("{}ms", duration.as_millis());
    }
    for (unit, size) in [("d", 86_400), ("h", 3600), ("m", 60)] {
        if secs % size == 0 {
            return format!("{}{unit}", secs / size);
        }
    }
    format!("{secs}s")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_operators_write() {
        let cases = [
            ("90s", 90),
            ("10m", 600),
            ("24h", 86_400),
            ("7d", 604_800),
            ("1h30m", 5400),
            ("0s", 0),
        ];
        for (text, secs) in cases {
            assert_eq!(
                parse_duration(text),
                Ok(Duration::from_secs(secs)),
                "{text}"
            );
        }
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
    }

    #[test]
    fn rejects_what_is_not_a_duration() {
        for text in ["", "10", "m", "10x", "ten minutes", "-5m", "5m-"] {
            assert!(parse_duration(text).is_err(), "{text} should be rejected");
        }
    }

    #[test]
    fn formats_round_trip() {
        for text in ["90s", "10m", "36h", "7d", "250ms"] {
            assert_eq!(format_duration(parse_duration(text).unwrap()), text);
        }
    }
}
