//! Revisions: the immutable package lists of a repository, the package
//! references in them (with provenance), and their text form, whole or as
//! a delta against a whole base.

use serde::{Deserialize, Serialize};

use crate::names::{RepoName, Sha256};

/// Where a promoted package came from: provenance kept in every revision
/// that holds it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Origin {
    /// The repository it was promoted from.
    pub from: RepoName,
    /// The change (review) it belongs to.
    pub change: String,
    /// The id of the token that promoted it (`-` for the command line).
    pub token: String,
    /// Unix seconds.
    pub at: u64,
}

/// Where a package's metadata record lives: a byte range of a meta pack.
///
/// A record is a 4-byte big-endian length, that many bytes of
/// [`PackageMeta`] JSON, then the package's index fragments. One pack holds
/// the records of one add, so an add of thousands of packages creates one
/// metadata object, not thousands (file creation dominates a cold import on
/// a local filesystem), and a publish reads ranges of a few objects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetaLocation {
    pub pack: Sha256,
    pub offset: u64,
    pub len: u64,
}

/// One package in a revision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackageRef {
    /// `name-epoch:version-release.arch`.
    pub identity: String,
    pub name: String,
    pub sha256: Sha256,
    pub size: u64,
    /// Path of the package inside a publication.
    pub location: String,
    pub meta: MetaLocation,
    /// Set on packages that entered the repository by promotion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<Origin>,
}

/// An immutable package list (`revisions/<repo>/<id>`); the id is the
/// SHA-256 of its stored text (see [`Revision::to_text`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revision {
    pub parent: Option<String>,
    pub seq: u64,
    pub created: u64,
    /// Sorted by location; locations are unique.
    pub packages: Vec<PackageRef>,
    /// The whole revision this one is stored as a delta against, if any
    /// (see [`Revision::to_delta_text`]).
    pub base: Option<String>,
}

/// A stored delta revision, before its base is applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevisionDelta {
    pub parent: Option<String>,
    pub seq: u64,
    pub created: u64,
    pub base: String,
    /// Packages new or changed relative to the base.
    pub put: Vec<PackageRef>,
    /// Locations of the base that are gone.
    pub del: Vec<String>,
}

impl RevisionDelta {
    /// The revision: `base` (the whole revision named `self.base`) with
    /// the changes applied, by one merge of the location-sorted lists.
    pub fn apply(mut self, base: &Revision) -> Revision {
        self.put.sort_by(|a, b| a.location.cmp(&b.location));
        self.del.sort();
        let mut packages = Vec::with_capacity(base.packages.len() + self.put.len());
        let mut put = self.put.into_iter().peekable();
        let mut del = self.del.iter().peekable();
        for b in &base.packages {
            while let Some(p) = put.next_if(|p| p.location < b.location) {
                packages.push(p);
            }
            while del.next_if(|d| d.as_str() < b.location.as_str()).is_some() {}
            if del.next_if(|d| **d == b.location).is_some() {
                continue;
            }
            match put.next_if(|p| p.location == b.location) {
                Some(p) => packages.push(p),
                None => packages.push(b.clone()),
            }
        }
        packages.extend(put);
        Revision {
            parent: self.parent,
            seq: self.seq,
            created: self.created,
            packages,
            base: Some(self.base),
        }
    }
}

/// A delta is written while it stays under this fraction (1/n) of its base.
const DELTA_MAX_FRACTION: usize = 8;

impl Revision {
    /// The stored form: a line-oriented text with the meta pack names
    /// listed once, read and written on every add and publish of a large
    /// repository (a third the size of the same data as JSON, parsed without
    /// a JSON parser). Fields never contain whitespace (names, versions and
    /// arches are checked at upload).
    ///
    /// ```text
    /// repokit-revision 1
    /// parent <id> | parent -
    /// seq <n>
    /// created <unix seconds>
    /// pack <sha256>                              (one per meta pack, in index order)
    /// origin <from> <change> <token> <at>        (one per provenance, in index order)
    /// pkg <sha256> <size> <pack index> <offset> <len> <name> <location> <identity> [<origin index>]
    /// ```
    pub fn to_text(&self) -> String {
        let mut out = String::with_capacity(220 * self.packages.len() + 128);
        out.push_str("repokit-revision 1\n");
        self.write_header(&mut out);
        write_packages(&mut out, self.packages.iter());
        out
    }

    /// The stored form as a delta against `base` (a whole revision, stored
    /// as `base_id`): the same header, then `base <id>` and `count <n>`,
    /// then `pkg` lines for packages new or changed and `del <location>`
    /// lines for packages gone. `None` when the change is too large for a
    /// delta to pay off. A one-package add to a large repository then
    /// writes a few hundred bytes instead of the whole list.
    pub fn to_delta_text(&self, base_id: &str, base: &Revision) -> Option<String> {
        let limit = base.packages.len() / DELTA_MAX_FRACTION + 16;
        let (mut put, mut del) = (Vec::new(), Vec::new());
        let (mut i, mut j) = (0, 0);
        let (a, b) = (&base.packages, &self.packages);
        while i < a.len() || j < b.len() {
            match (a.get(i), b.get(j)) {
                (Some(x), Some(y)) if x.location == y.location => {
                    if x != y {
                        put.push(y);
                    }
                    i += 1;
                    j += 1;
                }
                (Some(x), Some(y)) if x.location < y.location => {
                    del.push(&x.location);
                    i += 1;
                }
                (Some(x), None) => {
                    del.push(&x.location);
                    i += 1;
                }
                (_, Some(y)) => {
                    put.push(y);
                    j += 1;
                }
                (None, None) => break,
            }
            if put.len() + del.len() > limit {
                return None;
            }
        }
        use std::fmt::Write;
        let mut out = String::with_capacity(220 * (put.len() + del.len()) + 256);
        out.push_str("repokit-revision-delta 1\n");
        self.write_header(&mut out);
        let _ = writeln!(out, "base {base_id}");
        let _ = writeln!(out, "count {}", self.packages.len());
        write_packages(&mut out, put.into_iter());
        for d in del {
            let _ = writeln!(out, "del {d}");
        }
        Some(out)
    }

    fn write_header(&self, out: &mut String) {
        use std::fmt::Write;
        let _ = writeln!(out, "parent {}", self.parent.as_deref().unwrap_or("-"));
        let _ = writeln!(out, "seq {}", self.seq);
        let _ = writeln!(out, "created {}", self.created);
    }

    /// The parent, seq, created time and package count of a stored
    /// revision (whole or delta), without parsing its package lines.
    pub fn summary_from_text(text: &str) -> Option<(Option<String>, u64, u64, usize)> {
        let mut lines = text.lines();
        let delta = match lines.next()? {
            "repokit-revision 1" => false,
            "repokit-revision-delta 1" => true,
            _ => return None,
        };
        let (parent, seq, created) = read_header(&mut lines)?;
        let count = if delta {
            lines.find_map(|l| l.strip_prefix("count "))?.parse().ok()?
        } else {
            lines.filter(|l| l.starts_with("pkg ")).count()
        };
        Some((parent, seq, created, count))
    }

    /// Parses [`Revision::to_text`] output.
    pub fn from_text(text: &str) -> Option<Revision> {
        let mut lines = text.lines();
        (lines.next()? == "repokit-revision 1").then_some(())?;
        let (parent, seq, created) = read_header(&mut lines)?;
        // A package line is about 200 bytes.
        let body = read_packages(lines, text.len() / 160)?;
        (body.base.is_none() && body.del.is_empty()).then_some(())?;
        Some(Revision {
            parent,
            seq,
            created,
            packages: body.packages,
            base: None,
        })
    }

    /// Parses [`Revision::to_delta_text`] output.
    pub fn delta_from_text(text: &str) -> Option<RevisionDelta> {
        let mut lines = text.lines();
        (lines.next()? == "repokit-revision-delta 1").then_some(())?;
        let (parent, seq, created) = read_header(&mut lines)?;
        let body = read_packages(lines, text.len() / 160)?;
        Some(RevisionDelta {
            parent,
            seq,
            created,
            base: body.base?,
            put: body.packages,
            del: body.del,
        })
    }
}

fn read_header<'a>(
    lines: &mut impl Iterator<Item = &'a str>,
) -> Option<(Option<String>, u64, u64)> {
    let parent = lines.next()?.strip_prefix("parent ")?;
    let parent = (parent != "-").then(|| parent.to_string());
    let seq = lines.next()?.strip_prefix("seq ")?.parse().ok()?;
    let created = lines.next()?.strip_prefix("created ")?.parse().ok()?;
    Some((parent, seq, created))
}

/// `pack`, `origin` and `pkg` lines for `packages`.
fn write_packages<'a>(out: &mut String, packages: impl Iterator<Item = &'a PackageRef> + Clone) {
    use std::fmt::Write;
    let mut packs: Vec<&Sha256> = Vec::new();
    let mut index: std::collections::HashMap<&Sha256, usize> = std::collections::HashMap::new();
    let mut origins: Vec<&Origin> = Vec::new();
    let mut origin_index: std::collections::HashMap<&Origin, usize> =
        std::collections::HashMap::new();
    for p in packages.clone() {
        index.entry(&p.meta.pack).or_insert_with(|| {
            packs.push(&p.meta.pack);
            packs.len() - 1
        });
        if let Some(o) = &p.origin {
            origin_index.entry(o).or_insert_with(|| {
                origins.push(o);
                origins.len() - 1
            });
        }
    }
    for p in &packs {
        let _ = writeln!(out, "pack {p}");
    }
    for o in &origins {
        let _ = writeln!(out, "origin {} {} {} {}", o.from, o.change, o.token, o.at);
    }
    for p in packages {
        let _ = write!(
            out,
            "pkg {} {} {} {} {} {} {} {}",
            p.sha256,
            p.size,
            index[&p.meta.pack],
            p.meta.offset,
            p.meta.len,
            p.name,
            p.location,
            p.identity
        );
        match &p.origin {
            Some(o) => {
                let _ = writeln!(out, " {}", origin_index[o]);
            }
            None => out.push('\n'),
        }
    }
}

/// The body lines of a stored revision.
struct Body {
    packages: Vec<PackageRef>,
    base: Option<String>,
    del: Vec<String>,
}

fn read_packages<'a>(lines: impl Iterator<Item = &'a str>, capacity: usize) -> Option<Body> {
    let mut packs: Vec<Sha256> = Vec::new();
    let mut origins: Vec<Origin> = Vec::new();
    let mut body = Body {
        packages: Vec::with_capacity(capacity),
        base: None,
        del: Vec::new(),
    };
    for line in lines {
        if let Some(p) = line.strip_prefix("pack ") {
            packs.push(Sha256::new(p).ok()?);
            continue;
        }
        if let Some(o) = line.strip_prefix("origin ") {
            let mut f = o.split(' ');
            origins.push(Origin {
                from: RepoName::new(f.next()?).ok()?,
                change: f.next()?.to_string(),
                token: f.next()?.to_string(),
                at: f.next()?.parse().ok()?,
            });
            continue;
        }
        if let Some(b) = line.strip_prefix("base ") {
            body.base = Some(b.to_string());
            continue;
        }
        if line.starts_with("count ") {
            continue;
        }
        if let Some(d) = line.strip_prefix("del ") {
            body.del.push(d.to_string());
            continue;
        }
        let mut f = line.strip_prefix("pkg ")?.split(' ');
        let sha256 = Sha256::new(f.next()?).ok()?;
        let size = f.next()?.parse().ok()?;
        let pack = packs.get(f.next()?.parse::<usize>().ok()?)?.clone();
        let offset = f.next()?.parse().ok()?;
        let len = f.next()?.parse().ok()?;
        let name = f.next()?.to_string();
        let location = f.next()?.to_string();
        let identity = f.next()?.to_string();
        let origin = match f.next() {
            Some(i) => Some(origins.get(i.parse::<usize>().ok()?)?.clone()),
            None => None,
        };
        f.next().is_none().then_some(())?;
        body.packages.push(PackageRef {
            identity,
            name,
            sha256,
            size,
            location,
            meta: MetaLocation { pack, offset, len },
            origin,
        });
    }
    Some(body)
}
