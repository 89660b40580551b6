//! Times as rocker records and shows them: nanoseconds since the epoch in
//! its files, RFC 3339 in JSON (as docker's inspect and json-file logs),
//! "3 minutes ago" in tables.

use std::time::{SystemTime, UNIX_EPOCH};

/// Now, in nanoseconds since the epoch.
pub fn now_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// `2026-11-24T11:31:32.123456789Z`.
pub fn rfc3339(nanos: u64) -> String {
    let secs = nanos / 1_000_000_000;
    let (year, month, day) = civil_from_days((secs / 86_400) as i64);
    let rest = secs % 86_400;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:09}Z",
        rest / 3600,
        rest / 60 % 60,
        rest % 60,
        nanos % 1_000_000_000
    )
}

/// The date of a day counted from 1970-01-01 (Howard Hinnant's algorithm
/// for the proleptic Gregorian calendar).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// How long ago `nanos` was, as docker's tables say it: "5 seconds",
/// "About a minute", "3 hours".
pub fn duration_words(from_nanos: u64, to_nanos: u64) -> String {
    let secs = to_nanos.saturating_sub(from_nanos) / 1_000_000_000;
    match secs {
        0 => "Less than a second".to_string(),
        1 => "1 second".to_string(),
        s if s < 60 => format!("{s} seconds"),
        s if s < 120 => "About a minute".to_string(),
        s if s < 3600 => format!("{} minutes", s / 60),
        s if s < 7200 => "About an hour".to_string(),
        s if s < 48 * 3600 => format!("{} hours", s / 3600),
        s => format!("{} days", s / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_spells_dates_as_docker_does() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000000000Z");
        // 2024-02-29 12:34:56.5 UTC: a leap day.
        assert_eq!(
            rfc3339(1_709_210_096_500_000_000),
            "2024-02-29T12:34:56.500000000Z"
        );
        assert_eq!(
            rfc3339(951_782_400 * 1_000_000_000),
            "2000-02-29T00:00:00.000000000Z"
        );
    }

    #[test]
    fn durations_read_as_words() {
        let s = 1_000_000_000;
        assert_eq!(duration_words(0, 5 * s), "5 seconds");
        assert_eq!(duration_words(0, 90 * s), "About a minute");
        assert_eq!(duration_words(0, 600 * s), "10 minutes");
        assert_eq!(duration_words(0, 3 * 3600 * s), "3 hours");
        assert_eq!(duration_words(10 * s, 0), "Less than a second");
    }
}
