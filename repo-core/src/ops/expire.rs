//! Expiry: deletes test and composite repositories unchanged for longer
//! than their TTL. Their objects go to gc, not here.

use crate::engine::kit::Repokit;
use crate::error::{Error, Result};
use crate::model::Role;
use crate::names::RepoName;

impl Repokit {
    /// Deletes every test or composite repository whose TTL has run out
    /// since its last change; returns their names. Their blobs are left to GC.
    pub async fn expire(&self) -> Result<Vec<RepoName>> {
        let now = self.now_secs();
        let mut gone = Vec::new();
        let mut unaudited = None;
        for r in self.store.list_refs().await? {
            if r.config.role == Role::Stable || r.expires().is_none_or(|t| t > now) {
                continue;
            }
            match self.store.delete_ref(&r.config.name).await {
                Ok(()) | Err(Error::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
            tracing::info!(repo = %r.config.name, "expired");
            // The others still expire; the first unrecorded one is reported.
            if let Err(e) = self
                .record(
                    "expire",
                    Some(&r.config.name),
                    serde_json::json!({"expired_at": r.expires()}),
                )
                .await
            {
                unaudited.get_or_insert(e);
            }
            gone.push(r.config.name);
        }
        match unaudited {
            Some(e) => Err(e),
            None => Ok(gone),
        }
    }
}
