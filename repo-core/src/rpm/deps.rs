//! Dependencies as createrepo_c writes them: flags, EVR splitting, and the
//! rules by which requirements are filtered (see [`filter_requires`]).

use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};

/// One dependency entry (`provides`, `requires`, ...), already filtered and
/// split the way createrepo_c writes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dependency {
    pub name: String,
    /// `EQ`, `LT`, `GT`, `LE`, `GE`, or absent for an unversioned dependency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flags: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epoch: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ver: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rel: Option<String>,
    /// A requirement needed before install scripts run (`Requires(pre)`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pre: bool,
}

/// True for paths that createrepo_c also lists in primary.xml.
pub fn is_primary_file(path: &str) -> bool {
    path.starts_with("/etc/") || path == "/usr/lib/sendmail" || path.contains("bin/")
}

pub(crate) fn flag_str(flags: u32) -> Option<&'static str> {
    match flags & 0xf {
        2 => Some("LT"),
        4 => Some("GT"),
        8 => Some("EQ"),
        10 => Some("LE"),
        12 => Some("GE"),
        _ => None,
    }
}

/// An EVR split into its parts: (epoch, version, release).
type Evr = (Option<String>, Option<String>, Option<String>);

/// Splits `[epoch:]version[-release]` the way createrepo_c's
/// `cr_str_to_evr` does: a missing epoch is "0", an empty string has no EVR
/// at all, an empty release is absent. `None` for an epoch that is not a
/// number (createrepo_c skips such a dependency with a warning).
fn split_evr(s: &str) -> Option<Evr> {
    if s.is_empty() {
        return Some((None, None, None));
    }
    let (epoch, rest) = match s.split_once(':') {
        // strtol's number: optional blanks and sign, then digits (or
        // nothing at all: an empty epoch is "0").
        Some((e, rest)) => {
            let digits = e.trim_start().trim_start_matches(['+', '-']);
            if !digits.bytes().all(|b| b.is_ascii_digit()) || (digits.is_empty() && !e.is_empty()) {
                return None;
            }
            (if e.is_empty() { "0" } else { e }.to_string(), rest)
        }
        None => ("0".to_string(), s),
    };
    let (ver, rel) = match rest.split_once('-') {
        Some((v, r)) => (v.to_string(), Some(r.to_string()).filter(|r| !r.is_empty())),
        None => (rest.to_string(), None),
    };
    Some((Some(epoch), Some(ver), rel))
}

const RPMSENSE_POSTTRANS: u32 = 1 << 5;
const RPMSENSE_PREREQ: u32 = 1 << 6;
const RPMSENSE_PRETRANS: u32 = 1 << 7;
const RPMSENSE_SCRIPT_PRE: u32 = 1 << 9;
const RPMSENSE_SCRIPT_POST: u32 = 1 << 10;
/// A requirement that may go unmet: a legacy (SUSE, Mandriva) weak
/// dependency, which createrepo_c lists as a recommendation.
const RPMSENSE_MISSINGOK: u32 = 1 << 19;
/// Converts dependencies as createrepo_c does, skipping those whose epoch
/// is not a number.
pub(crate) fn convert_deps(deps: Vec<rpm::Dependency>) -> Vec<Dependency> {
    deps.into_iter()
        .filter_map(|d| {
            let (epoch, ver, rel) = split_evr(&d.version)?;
            Some(Dependency {
                flags: flag_str(d.flags.bits()).map(str::to_string),
                name: d.name,
                epoch,
                ver,
                rel,
                pre: false,
            })
        })
        .collect()
}

/// createrepo_c's key for "this requirement is one of the package's own
/// provides": name, flags and version written one after the other.
fn nfv(name: &str, flags: Option<&str>, version: &str) -> String {
    format!("{name}{}{version}", flags.unwrap_or(""))
}

/// Compares two `libc.so.6...` requirement names as createrepo_c's
/// `cr_compare_dependency` does: by the version inside their first
/// parentheses (`libc.so.6` < `libc.so.6()(64bit)` <
/// `libc.so.6(GLIBC_2.3.4)(64bit)` < `libc.so.6(GLIBC_2.4)`). True when `b`
/// is the higher one.
fn libc_is_higher(a: &str, b: &str) -> bool {
    let (Some(pa), Some(pb)) = (a.find('('), b.find('(')) else {
        return a.find('(').is_none() && b.find('(').is_some();
    };
    let (Some(ea), Some(eb)) = (a[pa..].find(')'), b[pb..].find(')')) else {
        return a[pa..].find(')').is_none() && b[pb..].find(')').is_some();
    };
    let (ia, ib) = (&a[pa + 1..pa + ea], &b[pb + 1..pb + eb]);
    if ia.is_empty() || ib.is_empty() {
        return ia.is_empty() && !ib.is_empty();
    }
    // From the first digit; a version whose first digit lies past the
    // closing parenthesis (`GLIBC_PRIVATE)(64bit)`) has none.
    let digit = |s: &str, from: usize, end: usize| {
        s[from..]
            .find(|c: char| c.is_ascii_digit())
            .map(|i| from + i)
            .filter(|i| *i < end)
    };
    match (digit(a, pa + 1, pa + ea), digit(b, pb + 1, pb + eb)) {
        (None, None) => false,
        (None, Some(_)) => true,
        (Some(_), None) => false,
        (Some(da), Some(db)) => {
            super::version::rpmvercmp(&a[da..pa + ea], &b[db..pb + eb]) == Ordering::Less
        }
    }
}

/// The requirements createrepo_c writes, and the legacy weak requirements
/// it moves to the recommendations. Each rule is createrepo_c's
/// (`cr_package_from_header` in src/parsehdr.c), in its order:
/// 1. `rpmlib(...)` requirements are dropped;
/// 2. a requirement on one of the package's own files that primary.xml
///    lists (`/etc/...`, `*bin/*`, `/usr/lib/sendmail`) is dropped;
/// 3. a requirement equal (name, flags and version) to one of the
///    package's provides is dropped;
/// 4. `pre` is set for `Requires(pre)`, `(post)`, `(pretrans)`,
///    `(posttrans)` and the old PreReq;
/// 5. a requirement equal (flags, version and `pre`) to the last one kept
///    with the same name is dropped;
/// 6. one whose epoch is not a number is dropped;
/// 7. a `MISSINGOK` requirement is a recommendation (legacy weak
///    dependencies, `pre` unset);
/// 8. of the `libc.so.6...` requirements only the highest version is kept
///    (see [`libc_is_higher`]), and written last.
pub(crate) fn filter_requires(
    deps: Vec<rpm::Dependency>,
    raw_provides: &[rpm::Dependency],
    own_files: &HashSet<&str>,
) -> (Vec<Dependency>, Vec<Dependency>) {
    let provided: HashSet<String> = raw_provides
        .iter()
        .filter(|p| split_evr(&p.version).is_some())
        .map(|p| nfv(&p.name, flag_str(p.flags.bits()), &p.version))
        .collect();
    let mut requires: Vec<Dependency> = Vec::new();
    let mut weak: Vec<Dependency> = Vec::new();
    let mut libc: Option<Dependency> = None;
    let mut last: HashMap<String, (Option<&'static str>, String, bool)> = HashMap::new();
    for d in deps {
        if d.name.starts_with("rpmlib(") {
            continue;
        }
        if d.name.starts_with('/')
            && own_files.contains(d.name.as_str())
            && is_primary_file(&d.name)
        {
            continue;
        }
        let bits = d.flags.bits();
        let flags = flag_str(bits);
        if provided.contains(&nfv(&d.name, flags, &d.version)) {
            continue;
        }
        let pre = bits
            & (RPMSENSE_PREREQ
                | RPMSENSE_SCRIPT_PRE
                | RPMSENSE_POSTTRANS
                | RPMSENSE_PRETRANS
                | RPMSENSE_SCRIPT_POST)
            != 0;
        if last
            .get(&d.name)
            .is_some_and(|(f, v, p)| *f == flags && *v == d.version && *p == pre)
        {
            continue;
        }
        let Some((epoch, ver, rel)) = split_evr(&d.version) else {
            continue;
        };
        let mut dep = Dependency {
            name: d.name,
            flags: flags.map(str::to_string),
            epoch,
            ver,
            rel,
            pre: false,
        };
        if bits & RPMSENSE_MISSINGOK != 0 {
            weak.push(dep);
            continue;
        }
        dep.pre = pre;
        if dep.name.starts_with("libc.so.6") {
            if libc
                .as_ref()
                .is_none_or(|l| libc_is_higher(&l.name, &dep.name))
            {
                libc = Some(dep);
            }
            continue;
        }
        last.insert(dep.name.clone(), (flags, d.version, pre));
        requires.push(dep);
    }
    requires.extend(libc);
    (requires, weak)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evr_split_matches_createrepo_c() {
        assert_eq!(split_evr(""), Some((None, None, None)));
        assert_eq!(
            split_evr("1.0-2"),
            Some((Some("0".into()), Some("1.0".into()), Some("2".into())))
        );
        assert_eq!(
            split_evr("3:1.0"),
            Some((Some("3".into()), Some("1.0".into()), None))
        );
        assert_eq!(
            split_evr(":1.0-"),
            Some((Some("0".into()), Some("1.0".into()), None))
        );
        assert_eq!(split_evr("x:1.0"), None, "a non-numeric epoch");
    }

    #[test]
    fn libc_order_matches_createrepo_c() {
        let order = [
            "libc.so.6",
            "libc.so.6()(64bit)",
            "libc.so.6(GLIBC_2.2.5)(64bit)",
            "libc.so.6(GLIBC_2.3.4)(64bit)",
            "libc.so.6(GLIBC_2.14)(64bit)",
            "libc.so.6(GLIBC_2.34)",
        ];
        for w in order.windows(2) {
            assert!(libc_is_higher(w[0], w[1]), "{} < {}", w[0], w[1]);
            assert!(!libc_is_higher(w[1], w[0]), "{} > {}", w[1], w[0]);
        }
        assert!(!libc_is_higher(
            "libc.so.6(GLIBC_2.4)",
            "libc.so.6(GLIBC_PRIVATE)"
        ));
        assert!(libc_is_higher(
            "libc.so.6(GLIBC_PRIVATE)",
            "libc.so.6(GLIBC_2.4)"
        ));
    }

    #[test]
    fn requires_are_filtered_as_createrepo_c_does() {
        use rpm::{Dependency as D, DependencyFlags as F};
        let dep = |name: &str, flags: F, version: &str| D {
            name: name.into(),
            flags,
            version: version.into(),
        };
        let requires = vec![
            dep("rpmlib(CompressedFileNames)", F::LE | F::RPMLIB, "3.0.4-1"),
            dep("/usr/bin/own", F::ANY, ""),
            dep("/usr/share/own", F::ANY, ""),
            dep("foo", F::EQUAL, "1.0"),
            dep("foo", F::GE, "1.0"),
            dep("libc.so.6()(64bit)", F::ANY, ""),
            dep("bar", F::ANY, ""),
            dep("libc.so.6(GLIBC_2.34)(64bit)", F::ANY, ""),
            dep("bar", F::ANY, ""),
            dep("/bin/sh", F::PRETRANS, ""),
            dep("libc.so.6(GLIBC_2.2.5)(64bit)", F::ANY, ""),
            dep("weak", F::MISSINGOK, ""),
            dep("bad", F::EQUAL, "x:1"),
        ];
        let provides = vec![dep("foo", F::EQUAL, "1.0")];
        let own: HashSet<&str> = ["/usr/bin/own", "/usr/share/own"].into_iter().collect();
        let (kept, weak) = filter_requires(requires, &provides, &own);
        let names: Vec<(&str, Option<&str>, bool)> = kept
            .iter()
            .map(|d| (d.name.as_str(), d.flags.as_deref(), d.pre))
            .collect();
        assert_eq!(
            names,
            vec![
                ("/usr/share/own", None, false),
                ("foo", Some("GE"), false),
                ("bar", None, false),
                ("/bin/sh", None, true),
                ("libc.so.6(GLIBC_2.34)(64bit)", None, false),
            ]
        );
        assert_eq!(weak.len(), 1);
        assert_eq!(weak[0].name, "weak");
    }

    #[test]
    fn primary_files_are_etc_bin_and_sendmail() {
        assert!(is_primary_file("/etc/foo.conf"));
        assert!(is_primary_file("/usr/sbin/foo"));
        assert!(is_primary_file("/usr/lib/sendmail"));
        assert!(!is_primary_file("/usr/share/doc/foo"));
    }
}
