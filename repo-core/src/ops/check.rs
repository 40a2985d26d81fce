//! `check`, in the spirit of `git fsck` and `restic check`: every
//! repository's ref, revisions and publications read as they are served
//! (gc's marking, with each failure reported instead of stopping), every
//! object they name present, every signed-variant record naming a stored
//! package, and with `read_data` every reachable package and metadata blob
//! hashing to its name. `repair` fixes only what can be re-derived and
//! deletes nothing reachable: a signed-variant record whose objects are
//! gone is dropped (the next add of its package signs it again).

use std::collections::HashMap;

use futures::StreamExt;
use serde::Serialize;
use sha2::Digest;

use super::gc::{Marks, PREFIXES};
use crate::engine::kit::Repokit;
use crate::error::Result;
use crate::model::PackageRef;
use crate::names::Sha256;
use crate::store::StorageKey;

/// What `check` does besides reading the structure.
#[derive(Debug, Clone, Copy, Default)]
pub struct CheckOptions {
    /// Read every reachable blob and compare it with its SHA-256 name.
    pub read_data: bool,
    /// Repair what can be re-derived (see the module documentation).
    pub repair: bool,
}

/// One thing found wrong.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Problem {
    /// `unreadable_ref`, `broken_repository`, `missing_object`,
    /// `bad_object` or `dangling_variant`.
    pub kind: &'static str,
    /// The object or repository concerned.
    pub object: String,
    pub detail: String,
    /// Whether `repair` fixed it.
    pub repaired: bool,
}

/// What `check` found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CheckReport {
    pub repositories: usize,
    /// Objects reachable from some repository.
    pub objects: usize,
    /// Bytes read and hashed (`read_data`).
    pub verified_bytes: u64,
    pub problems: Vec<Problem>,
}

impl CheckReport {
    /// No problem left unrepaired.
    pub fn is_clean(&self) -> bool {
        self.problems.iter().all(|p| p.repaired)
    }

    fn problem(&mut self, kind: &'static str, object: impl Into<String>, detail: impl ToString) {
        self.problems.push(Problem {
            kind,
            object: object.into(),
            detail: detail.to_string(),
            repaired: false,
        });
    }
}

impl Repokit {
    /// Checks the store (see the module documentation). Reads only, unless
    /// `opts.repair`.
    pub async fn check(&self, opts: &CheckOptions) -> Result<CheckReport> {
        let mut report = CheckReport::default();
        let mut marks = Marks::default();
        for name in self.store().list_ref_names().await? {
            let r = match self.store().get_ref(&name).await {
                Ok(Some(r)) => r,
                Ok(None) => continue,
                Err(e) => {
                    report.problem(
                        "unreadable_ref",
                        StorageKey::RepoRef(name).path().to_string(),
                        e,
                    );
                    continue;
                }
            };
            report.repositories += 1;
            if let Err(e) = self.mark_repo(&mut marks, &name, &r).await {
                report.problem("broken_repository", name.as_str(), e);
            }
        }
        self.check_variants(opts, &mut report).await?;
        let mut present: HashMap<String, u64> = HashMap::new();
        for prefix in PREFIXES {
            for o in self.store().list_objects(prefix).await? {
                present.insert(o.path, o.size);
            }
        }
        report.objects = marks.objects.len();
        let mut missing: Vec<&String> = marks
            .objects
            .iter()
            .filter(|p| !present.contains_key(*p))
            .collect();
        missing.sort();
        for path in missing {
            report.problem(
                "missing_object",
                path.clone(),
                "named by a repository but not stored",
            );
        }
        if opts.read_data {
            let mut blobs: Vec<&String> = marks
                .objects
                .iter()
                .filter(|p| p.starts_with("blobs/") && present.contains_key(*p))
                .collect();
            blobs.sort();
            for path in blobs {
                self.check_blob(path, &mut report).await?;
            }
        }
        Ok(report)
    }

    /// Every signed-variant record names a stored package file and meta
    /// pack; `repair` drops one that does not.
    async fn check_variants(&self, opts: &CheckOptions, report: &mut CheckReport) -> Result<()> {
        for o in self.store().list_objects("signed/").await? {
            let data = self.store().get_path_bytes(&o.path).await?;
            let pref: PackageRef = match serde_json::from_slice(&data) {
                Ok(p) => p,
                Err(e) => {
                    report.problem(
                        "dangling_variant",
                        o.path.clone(),
                        format!("unreadable: {e}"),
                    );
                    continue;
                }
            };
            let blob = StorageKey::Blob(pref.sha256.clone());
            let meta = StorageKey::MetaPack(pref.meta.pack.clone());
            if self.store().exists(&blob).await? && self.store().exists(&meta).await? {
                continue;
            }
            report.problem(
                "dangling_variant",
                o.path.clone(),
                format!(
                    "names {} whose file or metadata is not stored",
                    pref.identity
                ),
            );
            if opts.repair {
                self.store().delete_paths(vec![o.path.clone()]).await?;
                if let Some(p) = report.problems.last_mut() {
                    p.repaired = true;
                }
            }
        }
        Ok(())
    }

    /// Reads one blob and compares its SHA-256 with its name.
    async fn check_blob(&self, path: &str, report: &mut CheckReport) -> Result<()> {
        // `blobs/sha256/ab/cdef...`: the fan-out directory holds the first
        // two digits.
        let hex = path
            .strip_prefix("blobs/sha256/")
            .map(|h| h.replace('/', ""));
        let Some(name) = hex.and_then(|h| Sha256::new(h).ok()) else {
            report.problem("bad_object", path, "not named by a SHA-256");
            return Ok(());
        };
        let mut hasher = sha2::Sha256::new();
        let mut stream = self
            .store()
            .get_stream(&StorageKey::Blob(name.clone()), None)
            .await?;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
            report.verified_bytes += chunk.len() as u64;
            hasher.update(&chunk);
        }
        let got = Sha256::from_digest(&hasher.finalize());
        if got != name {
            report.problem("bad_object", path, format!("its content hashes to {got}"));
        }
        Ok(())
    }
}
