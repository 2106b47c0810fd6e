//! Incident filters as people write them (`--since 24h`, `?severity=high&field=src_ip=…`) turned into a
//! [`store::Query`](crate::store::Query). Shared by the `incidents` CLI and the HTTP API so both read
//! filters the same way. Pure: `now` is an argument.

use jiff::Timestamp;

use crate::duration::parse_duration;
use crate::model::{Severity, Status, display_zone};
use crate::store::{Query, status_name};

/// The filters of `incidents list`/`export` and of `GET /api/v1/incidents`, as text (times stay text
/// until `now` is known, so a `24h` sent to the daemon means 24 hours before the daemon's now).
#[derive(clap::Args, Debug, Clone, Default, PartialEq)]
pub struct Filters {
    /// Last seen at or after: a duration back from now (24h, 7d) or a date (2026-11-01) or RFC 3339 time
    #[arg(long, value_name = "WHEN")]
    pub since: Option<String>,
    /// Last seen at or before: a duration back from now, a date (the whole day counts) or RFC 3339 time
    #[arg(long, value_name = "WHEN")]
    pub until: Option<String>,
    /// This severity and above: info, low, medium, high, critical
    #[arg(long)]
    pub severity: Option<Severity>,
    /// open, acknowledged, resolved or false_positive
    #[arg(long, value_parser = parse_status)]
    pub status: Option<Status>,
    #[arg(long, value_name = "ID")]
    pub rule: Option<String>,
    #[arg(long, value_name = "NAME")]
    pub host: Option<String>,
    #[arg(long, value_name = "NAME")]
    pub system: Option<String>,
    /// A group value, e.g. src_ip=203.0.113.7 (repeatable: all must hold)
    #[arg(long = "field", value_name = "KEY=VALUE")]
    pub fields: Vec<String>,
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
}

impl Filters {
    /// Filters from `key=value` pairs (a decoded query string). Unknown keys, repeated single-valued
    /// keys and bad values are errors; `field` may repeat.
    pub fn from_pairs<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Filters, String> {
        let mut filters = Filters::default();
        for (key, value) in pairs {
            fn once(slot: &mut Option<String>, key: &str, value: &str) -> Result<(), String> {
                if slot.replace(value.to_string()).is_some() {
                    return Err(format!("'{key}' given more than once"));
                }
                Ok(())
            }
            match key {
                "since" => once(&mut filters.since, key, value)?,
                "until" => once(&mut filters.until, key, value)?,
                "rule" => once(&mut filters.rule, key, value)?,
                "host" => once(&mut filters.host, key, value)?,
                "system" => once(&mut filters.system, key, value)?,
                "severity" => {
                    let severity = value.parse::<Severity>().map_err(|_| {
                        format!(
                            "unknown severity '{value}' (expected info, low, medium, high or critical)"
                        )
                    })?;
                    if filters.severity.replace(severity).is_some() {
                        return Err("'severity' given more than once".into());
                    }
                }
                "status" => {
                    if filters.status.replace(parse_status(value)?).is_some() {
                        return Err("'status' given more than once".into());
                    }
                }
                "field" => filters.fields.push(value.to_string()),
                "limit" => {
                    let limit = value
                        .parse::<usize>()
                        .map_err(|_| format!("limit must be a whole number, got '{value}'"))?;
                    if filters.limit.replace(limit).is_some() {
                        return Err("'limit' given more than once".into());
                    }
                }
                other => {
                    return Err(format!(
                        "unknown filter '{other}' (expected since, until, severity, status, rule, host, system, field or limit)"
                    ));
                }
            }
        }
        Ok(filters)
    }

    /// The same filters for cases: times and severity as for incidents, `rule` a rule one of the
    /// case's incidents has, `host` a host the case names, `field` an entity value.
    pub fn to_case_query(
        &self,
        now: Timestamp,
        default_limit: Option<usize>,
    ) -> Result<crate::store::CaseQuery, String> {
        let query = self.to_query(now, default_limit)?;
        Ok(crate::store::CaseQuery {
            since: query.since,
            until: query.until,
            min_severity: query.min_severity,
            status: query.status,
            rule: query.rule,
            host: query.host,
            system: query.system,
            fields: query.fields,
            text: None,
            limit: query.limit,
        })
    }

    /// The inverse of [`Filters::from_pairs`].
    pub fn to_pairs(&self) -> Vec<(&'static str, String)> {
        let mut pairs = Vec::new();
        let texts = [
            ("since", &self.since),
            ("until", &self.until),
            ("rule", &self.rule),
            ("host", &self.host),
            ("system", &self.system),
        ];
        for (key, value) in texts {
            if let Some(value) = value {
                pairs.push((key, value.clone()));
            }
        }
        if let Some(severity) = self.severity {
            pairs.push(("severity", severity.as_str().to_string()));
        }
        if let Some(status) = self.status {
            pairs.push(("status", status_name(status).to_string()));
        }
        for field in &self.fields {
            pairs.push(("field", field.clone()));
        }
        if let Some(limit) = self.limit {
            pairs.push(("limit", limit.to_string()));
        }
        pairs
    }

    /// The store query, times resolved against `now`; `default_limit` applies when none was given.
    pub fn to_query(&self, now: Timestamp, default_limit: Option<usize>) -> Result<Query, String> {
        let mut fields = Vec::new();
        for pair in &self.fields {
            let (key, value) = pair
                .split_once('=')
                .filter(|(k, _)| !k.is_empty())
                .ok_or_else(|| format!("field takes KEY=VALUE, got '{pair}'"))?;
            fields.push((key.to_string(), value.to_string()));
        }
        Ok(Query {
            since: self
                .since
                .as_deref()
                .map(|t| parse_when(t, now, false))
                .transpose()?,
            until: self
                .until
                .as_deref()
                .map(|t| parse_when(t, now, true))
                .transpose()?,
            min_severity: self.severity,
            status: self.status,
            rule: self.rule.clone(),
            host: self.host.clone(),
            system: self.system.clone(),
            fields,
            limit: self.limit.or(default_limit),
        })
    }
}

pub fn parse_status(text: &str) -> Result<Status, String> {
    match text {
        "open" => Ok(Status::Open),
        "acknowledged" => Ok(Status::Acknowledged),
        "resolved" => Ok(Status::Resolved),
        "false_positive" | "false-positive" => Ok(Status::FalsePositive),
        other => Err(format!(
            "unknown status '{other}' (expected open, acknowledged, resolved or false_positive)"
        )),
    }
}

/// `24h` (back from now), `2026-11-01` (that day in Asia/Ho_Chi_Minh; its start, or with `end_of_day`
/// its last instant) or an RFC 3339 time.
pub fn parse_when(text: &str, now: Timestamp, end_of_day: bool) -> Result<Timestamp, String> {
    if let Ok(duration) = parse_duration(text) {
        let back = jiff::SignedDuration::try_from(duration).map_err(|e| e.to_string())?;
        return now.checked_sub(back).map_err(|e| e.to_string());
    }
    if let Ok(date) = text.parse::<jiff::civil::Date>() {
        let day = date.to_zoned(display_zone()).map_err(|e| e.to_string())?;
        return if end_of_day {
            let next = day.tomorrow().map_err(|e| e.to_string())?;
            Ok(next.timestamp() - jiff::SignedDuration::from_nanos(1))
        } else {
            Ok(day.timestamp())
        };
    }
    text.parse::<Timestamp>().map_err(|_| {
        format!(
            "bad time '{text}' (expected e.g. 24h, 7d, 2026-11-01 or 2026-11-01T08:00:00+07:00)"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_durations_dates_or_rfc3339() {
        let now: Timestamp = "2026-11-22T03:00:00Z".parse().unwrap();
        assert_eq!(
            parse_when("24h", now, false).unwrap(),
            "2026-11-21T03:00:00Z".parse::<Timestamp>().unwrap()
        );
        assert_eq!(
            parse_when("2026-11-01", now, false).unwrap(),
            "2026-10-31T17:00:00Z".parse::<Timestamp>().unwrap()
        );
        assert_eq!(
            parse_when("2026-11-01", now, true).unwrap(),
            "2026-11-01T16:59:59.999999999Z"
                .parse::<Timestamp>()
                .unwrap()
        );
        assert!(parse_when("yesterday", now, false).is_err());
    }

    #[test]
    fn pairs_round_trip_and_reject_what_they_do_not_know() {
        let filters = Filters {
            since: Some("24h".into()),
            severity: Some(Severity::High),
            status: Some(Status::FalsePositive),
            fields: vec!["src_ip=1.2.3.4".into(), "user=root".into()],
            limit: Some(5),
            ..Filters::default()
        };
        let pairs = filters.to_pairs();
        let back = Filters::from_pairs(pairs.iter().map(|(k, v)| (*k, v.as_str()))).unwrap();
        assert_eq!(back, filters);
        for bad in [
            [("severity", "huge")],
            [("status", "closed")],
            [("limit", "-1")],
            [("colour", "red")],
        ] {
            assert!(Filters::from_pairs(bad).is_err(), "{bad:?}");
        }
        assert!(Filters::from_pairs([("rule", "a"), ("rule", "b")]).is_err());
        let bad_time = Filters::from_pairs([("since", "yesterday")]).unwrap();
        assert!(bad_time.to_query(Timestamp::now(), None).is_err());
    }
}
