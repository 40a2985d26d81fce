//! Removing packages from a repository's head by name, name-version or
//! file name. Only the revision changes; files go to gc.

use crate::engine::kit::Repokit;
use crate::error::{Error, Result};
use crate::model::{PackageRef, RepoRef, Role};
use crate::names::RepoName;
use crate::ops::add::changed_packages;
use crate::store::Update;
use serde::{Deserialize, Serialize};

/// What `remove` did.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RemoveReport {
    pub repo: RepoName,
    pub removed: Vec<PackageRef>,
    pub revision: Option<String>,
}

pub(crate) fn spec_matches(spec: &str, p: &PackageRef) -> bool {
    let file = p.location.rsplit('/').next().unwrap_or("");
    if spec == file || spec == p.identity || spec == p.name {
        return true;
    }
    // name-version[-release] without epoch and arch.
    let Some(rest) = p.identity.strip_prefix(&format!("{}-", p.name)) else {
        return false;
    };
    let evr = rest
        .rsplit_once('.')
        .map(|(evr, _arch)| evr)
        .unwrap_or(rest);
    let vr = evr.split_once(':').map(|(_, vr)| vr).unwrap_or(evr);
    let version = vr.split_once('-').map(|(v, _)| v).unwrap_or(vr);
    spec == format!("{}-{vr}", p.name) || spec == format!("{}-{version}", p.name)
}

impl Repokit {
    /// Removes packages matching any of `specs` (a file name, an identity
    /// `name-epoch:version-release.arch`, `name-version[-release]` or a
    /// name). A spec that matches nothing is `NotFound` and nothing changes.
    pub async fn remove(&self, name: &RepoName, specs: &[String]) -> Result<RemoveReport> {
        if specs.is_empty() {
            return Err(Error::InvalidInput("no package given to remove".into()));
        }
        let now = self.now_secs();
        let report = self
            .store
            .update_ref(name, async |mut r: RepoRef| {
                if r.config.role == Role::Composite {
                    return Err(Error::Forbidden(format!(
                        "{name} is a composite repository: remove from one of its members"
                    )));
                }
                let packages = self.head_packages(&r).await?;
                let mut keep = Vec::with_capacity(packages.len());
                let mut removed = Vec::new();
                let mut matched = vec![false; specs.len()];
                for p in packages {
                    let mut hit = false;
                    for (i, s) in specs.iter().enumerate() {
                        if spec_matches(s, &p) {
                            matched[i] = true;
                            hit = true;
                        }
                    }
                    if hit {
                        removed.push(p);
                    } else {
                        keep.push(p);
                    }
                }
                if let Some(i) = matched.iter().position(|m| !m) {
                    return Err(Error::not_found("package", specs[i].clone()));
                }
                let rev = self.write_revision(&r, keep, now).await?;
                r.head = Some(rev.clone());
                r.updated = now;
                Ok(Update::Write(
                    Box::new(r),
                    RemoveReport {
                        repo: name.clone(),
                        removed,
                        revision: Some(rev.revision),
                    },
                ))
            })
            .await?;
        self.record(
            "remove",
            Some(name),
            changed_packages(&report.removed, &report.revision),
        )
        .await?;
        Ok(report)
    }
}
