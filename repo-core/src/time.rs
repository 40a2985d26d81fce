//! Calendar formatting of unix timestamps (UTC), without a date library.

/// (year, month, day) of a count of days since 1970-01-01.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    // Howard Hinnant's algorithm.
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// `20261124T223000Z`: sortable, safe in paths and URLs.
pub fn compact_utc(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

/// RFC 2822 date as APT's Release files use it: `Tue, 24 Nov 2026 22:30:00 UTC`.
pub fn rfc2822_utc(secs: u64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{}, {d:02} {} {y:04} {:02}:{:02}:{:02} UTC",
        DAYS[(days % 7) as usize],
        MONTHS[(m - 1) as usize],
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

/// Unix seconds of a `SystemTime` (0 before the epoch).
pub fn unix(t: std::time::SystemTime) -> u64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(compact_utc(0), "19700101T000000Z");
        assert_eq!(compact_utc(1_795_559_400), "20261124T223000Z");
        assert_eq!(rfc2822_utc(1_795_559_400), "Tue, 24 Nov 2026 22:30:00 UTC");
        assert_eq!(rfc2822_utc(951_782_400), "Tue, 29 Feb 2000 00:00:00 UTC");
    }
}

/// Parses a duration such as `20d`, `12h`, `30m`, `45s` or plain seconds.
pub fn parse_duration(s: &str) -> crate::Result<u64> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: u64 = num.parse().map_err(|_| bad_duration(s))?;
    let mult = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return Err(bad_duration(s)),
    };
    n.checked_mul(mult).ok_or_else(|| bad_duration(s))
}

fn bad_duration(s: &str) -> crate::Error {
    crate::Error::InvalidInput(format!(
        "invalid duration {s:?} (a number with s, m, h, d or w, e.g. 20d)"
    ))
}

#[cfg(test)]
mod duration_tests {
    use super::parse_duration;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("20d").ok(), Some(20 * 86_400));
        assert_eq!(parse_duration("90").ok(), Some(90));
        assert_eq!(parse_duration("2h").ok(), Some(7200));
        assert!(parse_duration("").is_err());
        assert!(parse_duration("d").is_err());
        assert!(parse_duration("5y").is_err());
        assert!(parse_duration("-5s").is_err());
    }
}
