//! History and rollback: the chain of revisions behind a head, and a new
//! revision whose list is an earlier one's.

use crate::engine::kit::Repokit;
use crate::error::{Error, Result};
use crate::model::{RepoRef, Revision, Role};
use crate::names::RepoName;
use crate::store::{StorageKey, Update};
use serde::{Deserialize, Serialize};

/// One entry of a repository's history.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RevisionSummary {
    pub id: String,
    pub parent: Option<String>,
    pub seq: u64,
    pub created: u64,
    pub packages: usize,
}

/// What `rollback` did.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RollbackReport {
    pub repo: RepoName,
    /// The revision whose package list was restored.
    pub restored: String,
    /// The new head revision (same packages, a new place in the history).
    pub revision: String,
    pub packages: usize,
}

impl Repokit {
    /// A repository's history, newest first: the head and its ancestors.
    pub async fn revisions(&self, name: &RepoName, limit: usize) -> Result<Vec<RevisionSummary>> {
        let r = self.repo_ref(name).await?;
        let mut out = Vec::new();
        let mut next = r.head.map(|h| h.revision);
        while let Some(id) = next {
            if out.len() >= limit {
                break;
            }
            let key = StorageKey::Revision {
                repo: name.clone(),
                id: id.clone(),
            };
            let data = self.store.get_bytes(&key).await?;
            let text = std::str::from_utf8(&data).unwrap_or_default();
            let summary = Revision::summary_from_text(text).ok_or_else(|| Error::Corrupt {
                key: key.path().to_string(),
                reason: "unreadable revision".into(),
            })?;
            next = summary.0.clone();
            out.push(RevisionSummary {
                id,
                parent: summary.0,
                seq: summary.1,
                created: summary.2,
                packages: summary.3,
            });
        }
        Ok(out)
    }

    /// Makes an earlier revision's package list the head again (as a new
    /// revision, so the history keeps what happened). Publish to make it live.
    pub async fn rollback(&self, name: &RepoName, revision: &str) -> Result<RollbackReport> {
        if revision.is_empty() || !revision.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::InvalidInput(format!(
                "invalid revision {revision:?}"
            )));
        }
        let old = self.revision(name, revision).await?;
        let now = self.now_secs();
        let report = self
            .store
            .update_ref(name, async |mut r: RepoRef| {
                if r.config.role == Role::Composite {
                    return Err(Error::Forbidden(format!(
                        "{name} is a composite repository: it follows its members"
                    )));
                }
                let rev = self.write_revision(&r, old.packages.clone(), now).await?;
                r.head = Some(rev.clone());
                r.updated = now;
                Ok(Update::Write(
                    Box::new(r),
                    RollbackReport {
                        repo: name.clone(),
                        restored: revision.to_string(),
                        revision: rev.revision,
                        packages: old.packages.len(),
                    },
                ))
            })
            .await?;
        self.record(
            "rollback",
            Some(name),
            serde_json::json!({"restored": report.restored, "revision": report.revision}),
        )
        .await?;
        Ok(report)
    }
}
