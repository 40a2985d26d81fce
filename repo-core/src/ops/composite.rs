//! Composite resolution: a composite's package list is the union of its
//! members' live packages, in member order; a conflict fails it and never
//! gets resolved silently.

use crate::engine::kit::Repokit;
use crate::error::{Error, Result};
use crate::model::{PackageRef, RepoConfig, RepoRef};
use crate::names::{RepoName, Sha256};
use crate::store::Update;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// A composite republished because one of its members was published.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CompositeResult {
    pub repo: RepoName,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publication: Option<String>,
    /// `{"code", "message"}` when the composite could not be published
    /// (e.g. a conflict between members); its old publication stays live.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<serde_json::Value>,
}

impl Repokit {
    /// The merged package list of a composite: its members' live packages,
    /// in member order. The same identity or location with different bytes
    /// in two members is a `Conflict` naming both.
    pub(crate) async fn composite_packages(&self, config: &RepoConfig) -> Result<Vec<PackageRef>> {
        let mut by_location: HashMap<String, (PackageRef, RepoName)> = HashMap::new();
        let mut by_identity: HashMap<String, (Sha256, RepoName)> = HashMap::new();
        let mut conflicts = Vec::new();
        for m in &config.members {
            let r = self.repo_ref(m).await?;
            let live = r.published.ok_or_else(|| {
                Error::Conflict(format!("member {m} of {} has no publication", config.name))
            })?;
            let packages = if live.revision.is_empty() {
                Vec::new()
            } else {
                self.revision(m, &live.revision).await?.packages.clone()
            };
            for p in packages {
                if let Some((sha, other)) = by_identity.get(&p.identity)
                    && *sha != p.sha256
                {
                    conflicts.push(format!(
                        "{} differs between {other} ({}) and {m} ({})",
                        p.identity,
                        &sha.as_str()[..12],
                        &p.sha256.as_str()[..12]
                    ));
                    continue;
                }
                if let Some((q, other)) = by_location.get(&p.location) {
                    if q.sha256 != p.sha256 {
                        conflicts.push(format!("{} differs between {other} and {m}", p.location));
                    }
                    continue;
                }
                by_identity.insert(p.identity.clone(), (p.sha256.clone(), m.clone()));
                by_location.insert(p.location.clone(), (p, m.clone()));
            }
        }
        if !conflicts.is_empty() {
            conflicts.sort();
            return Err(Error::Conflict(format!(
                "members of {} disagree: {}",
                config.name,
                conflicts.join("; ")
            )));
        }
        let mut out: Vec<PackageRef> = by_location.into_values().map(|(p, _)| p).collect();
        out.sort_by(|a, b| a.location.cmp(&b.location));
        Ok(out)
    }

    /// Moves a composite's head to its members' current live packages.
    pub(crate) async fn refresh_composite(&self, r: &RepoRef) -> Result<()> {
        let merged = self.composite_packages(&r.config).await?;
        let now = self.now_secs();
        self.store
            .update_ref(&r.config.name, async |mut cur: RepoRef| {
                let current = self.head_packages(&cur).await?;
                let same = cur.head.is_some()
                    && current.len() == merged.len()
                    && current
                        .iter()
                        .zip(&merged)
                        .all(|(a, b)| a.location == b.location && a.sha256 == b.sha256);
                if same {
                    return Ok(Update::Keep(()));
                }
                let rev = self.write_revision(&cur, merged.clone(), now).await?;
                cur.head = Some(rev);
                cur.updated = now;
                Ok(Update::Write(Box::new(cur), ()))
            })
            .await
    }
}
