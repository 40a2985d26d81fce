//! RPM version order: `rpmvercmp`, as rpm's `lib/rpmvercmp.c` defines it.
//!
//! Pure. Segments of digits compare as numbers (leading zeros ignored),
//! segments of letters as strings, a digit segment is newer than a letter
//! segment, `~` sorts before everything (even the end of the string) and
//! `^` after the end of the string but before anything else.

use std::cmp::Ordering;

/// Compares two version (or release) strings as rpm does.
pub fn rpmvercmp(a: &str, b: &str) -> Ordering {
    if a == b {
        return Ordering::Equal;
    }
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    let separator = |c: u8| !c.is_ascii_alphanumeric() && c != b'~' && c != b'^';
    while i < a.len() || j < b.len() {
        while i < a.len() && separator(a[i]) {
            i += 1;
        }
        while j < b.len() && separator(b[j]) {
            j += 1;
        }
        let (x, y) = (a.get(i).copied(), b.get(j).copied());
        match mark_order(x, y) {
            Some(Ordering::Equal) => {
                i += 1;
                j += 1;
                continue;
            }
            Some(other) => return other,
            None => {}
        }
        let (Some(x), Some(_)) = (x, y) else {
            break;
        };
        let numeric = x.is_ascii_digit();
        let class = |c: &u8| {
            if numeric {
                c.is_ascii_digit()
            } else {
                c.is_ascii_alphabetic()
            }
        };
        let end_a = i + a[i..].iter().take_while(|c| class(c)).count();
        let end_b = j + b[j..].iter().take_while(|c| class(c)).count();
        match segment_order(&a[i..end_a], &b[j..end_b], numeric) {
            Ordering::Equal => {}
            other => return other,
        }
        i = end_a;
        j = end_b;
    }
    match (i >= a.len(), j >= b.len()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Less,
        _ => Ordering::Greater,
    }
}

/// How `~` or `^` at the current positions decides: `None` when neither
/// side has one, `Equal` when both have the same (skip it on both sides).
fn mark_order(x: Option<u8>, y: Option<u8>) -> Option<Ordering> {
    if x == Some(b'~') || y == Some(b'~') {
        return Some(match (x == Some(b'~'), y == Some(b'~')) {
            (true, true) => Ordering::Equal,
            (false, _) => Ordering::Greater,
            (true, false) => Ordering::Less,
        });
    }
    if x == Some(b'^') || y == Some(b'^') {
        return Some(match (x, y) {
            (None, _) => Ordering::Less,
            (_, None) => Ordering::Greater,
            (Some(b'^'), Some(b'^')) => Ordering::Equal,
            (Some(_), Some(b'^')) => Ordering::Greater,
            _ => Ordering::Less,
        });
    }
    None
}

/// Compares one segment of each side: numbers by value (leading zeros
/// ignored), letters as strings. When the first side lacks the segment it
/// is older (arbitrary, as rpm); when only the second does, a number on the
/// first side is newer and letters are older.
fn segment_order(mut one: &[u8], mut two: &[u8], numeric: bool) -> Ordering {
    if one.is_empty() {
        return Ordering::Less;
    }
    if two.is_empty() {
        return if numeric {
            Ordering::Greater
        } else {
            Ordering::Less
        };
    }
    if numeric {
        while one.first() == Some(&b'0') {
            one = &one[1..];
        }
        while two.first() == Some(&b'0') {
            two = &two[1..];
        }
        match one.len().cmp(&two.len()) {
            Ordering::Equal => {}
            other => return other,
        }
    }
    one.cmp(two)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Cases from rpm's own test suite (tests/rpmvercmp.at).
    #[test]
    fn matches_rpms_own_cases() {
        let cases: &[(&str, &str, i32)] = &[
            ("1.0", "1.0", 0),
            ("1.0", "2.0", -1),
            ("2.0", "1.0", 1),
            ("2.0.1", "2.0.1", 0),
            ("2.0", "2.0.1", -1),
            ("2.0.1a", "2.0.1", 1),
            ("5.5p1", "5.5p2", -1),
            ("5.5p10", "5.5p1", 1),
            ("10xyz", "10.1xyz", -1),
            ("xyz10", "xyz10.1", -1),
            ("xyz.4", "8", -1),
            ("8", "xyz.4", 1),
            ("5.5p1", "5.5p10", -1),
            ("1b.fc17", "1.fc17", -1),
            ("1.fc17", "1b.fc17", 1),
            ("1g.fc17", "1.fc17", 1),
            ("1.1.α", "1.1.α", 0),
            ("20101121", "20101122", -1),
            ("2_0", "2_0", 0),
            ("2.0", "2_0", 0),
            ("a", "a", 0),
            ("a+", "a+", 0),
            ("a+", "a_", 0),
            ("+a", "_a", 0),
            ("+_", "_+", 0),
            ("_+", "+_", 0),
            ("1.0~rc1", "1.0~rc1", 0),
            ("1.0~rc1", "1.0", -1),
            ("1.0", "1.0~rc1", 1),
            ("1.0~rc1", "1.0~rc2", -1),
            ("1.0~rc1~git123", "1.0~rc1", -1),
            ("1.0^", "1.0^", 0),
            ("1.0^", "1.0", 1),
            ("1.0", "1.0^", -1),
            ("1.0^git1", "1.0^git2", -1),
            ("1.0^git1", "1.01", -1),
            ("1.0^20160101", "1.0.1", -1),
            ("1.0^20160101^git1", "1.0^20160101", 1),
            ("1.0~rc1^git1", "1.0~rc1", 1),
            ("1.0^git1~pre", "1.0^git1", -1),
            ("001", "1", 0),
            ("4.999.9", "5.0", -1),
        ];
        for (a, b, want) in cases {
            let got = match rpmvercmp(a, b) {
                Ordering::Less => -1,
                Ordering::Equal => 0,
                Ordering::Greater => 1,
            };
            assert_eq!(got, *want, "rpmvercmp({a:?}, {b:?})");
        }
    }
}
