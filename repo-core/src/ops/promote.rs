//! Promotion: the packages of the source's live publication — what was
//! tested — go into the target by reference, RPMs re-signed for the
//! target's key, each with its origin.

use crate::engine::kit::Repokit;
use crate::engine::work::{blocking, parallel_map};
use crate::error::{Error, Result};
use crate::model::{Format, Origin, PackageRef, RepoConfig, Role};
use crate::names::RepoName;
use crate::ops::add::{Prepared, changed_packages};
use crate::ops::ingest::{Upload, check_package};
use crate::ops::remove::spec_matches;
use crate::store::StorageKey;
use serde::{Deserialize, Serialize};

/// Parameters of `promote`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Promote {
    /// The repository whose published packages are promoted.
    pub from: RepoName,
    /// Package specs (as for `remove`); empty means all.
    #[serde(default)]
    pub packages: Vec<String>,
    /// The change the packages belong to (default: the source repository's
    /// name); recorded as provenance.
    #[serde(default)]
    pub change: Option<String>,
}

/// What `promote` did.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PromoteReport {
    pub repo: RepoName,
    pub from: RepoName,
    /// The source revision the packages were taken from (its live one).
    pub source_revision: String,
    /// Packages new in the target, as stored there (re-signed RPMs are new
    /// blobs with the same payload).
    pub promoted: Vec<PackageRef>,
    /// Packages the target already had with the same bytes.
    pub unchanged: Vec<PackageRef>,
    pub revision: Option<String>,
}

impl Repokit {
    /// Promotes packages of `req.from`'s live publication (what was tested)
    /// into `to`, by reference: the same blobs, except RPMs for a signing
    /// target, which are re-signed with its key (a new blob; the payload is
    /// unchanged). Every promoted package records its origin.
    pub async fn promote(&self, to: &RepoName, req: Promote) -> Result<PromoteReport> {
        let lease = self.store.lease().await?;
        let result = self.promote_leased(to, req).await;
        lease.release().await;
        result
    }

    pub(crate) async fn promote_leased(
        &self,
        to: &RepoName,
        req: Promote,
    ) -> Result<PromoteReport> {
        if req.from == *to {
            return Err(Error::InvalidInput(
                "a repository cannot be promoted into itself".into(),
            ));
        }
        let change = change_id(&req)?;
        let src = self.repo_ref(&req.from).await?;
        let dst = self.repo_ref(to).await?;
        check_promotable(&req.from, &src.config, to, &dst.config)?;
        let source_revision = src
            .published
            .as_ref()
            .map(|l| l.revision.clone())
            .ok_or_else(|| {
                Error::Conflict(format!(
                    "{} has no publication: promote what was published and tested",
                    req.from
                ))
            })?;
        let packages = if source_revision.is_empty() {
            Vec::new()
        } else {
            self.revision(&req.from, &source_revision)
                .await?
                .packages
                .clone()
        };
        let selected = select(packages, &req)?;
        if dst.config.format == Format::Deb {
            for p in &selected {
                let arch = p.identity.rsplit('_').next().unwrap_or("");
                if !p.identity.contains("_source/") && arch != "source" && !dst.config.carries(arch)
                {
                    return Err(dst.config.foreign_arch(&p.identity, arch));
                }
            }
        }
        let mut refs = self.signed_for(&dst.config, selected).await?;
        let origin = Origin {
            from: req.from.clone(),
            change,
            token: self.actor.token.clone(),
            at: self.now_secs(),
        };
        for r in &mut refs {
            r.origin = Some(origin.clone());
        }
        let added = self.add_refs(to, &refs).await?;
        let report = PromoteReport {
            repo: to.clone(),
            from: req.from.clone(),
            source_revision,
            promoted: added.added,
            unchanged: added.unchanged,
            revision: added.revision,
        };
        if !report.promoted.is_empty() {
            let mut detail = changed_packages(&report.promoted, &report.revision);
            detail["from"] = serde_json::json!(report.from);
            detail["change"] = serde_json::json!(origin.change);
            self.record("promote", Some(to), detail).await?;
        }
        Ok(report)
    }

    /// The packages as the target holds them: RPMs re-signed with the
    /// target's key where it signs (on every core, reusing earlier
    /// signatures of the same bytes), everything else as it is.
    async fn signed_for(
        &self,
        config: &RepoConfig,
        selected: Vec<PackageRef>,
    ) -> Result<Vec<PackageRef>> {
        let (Some(key), Format::Rpm) = (&config.sign_with, config.format) else {
            return Ok(selected);
        };
        let fingerprint = self.keyring.signer(key)?.fingerprint();
        let this = self.clone();
        let config = config.clone();
        let rt = tokio::runtime::Handle::current();
        blocking(move || {
            let prepared = parallel_map(&selected, |p| this.resign(&rt, &config, &fingerprint, p))?;
            let (refs, variants) =
                this.write_pack(&rt, prepared.into_iter().flatten().collect())?;
            this.record_variants(&rt, variants)?;
            Ok(refs)
        })
        .await
    }

    /// One RPM of a promotion, signed for `config`'s key (reusing an
    /// earlier signature of the same bytes). Runs on a blocking thread.
    pub(crate) fn resign(
        &self,
        rt: &tokio::runtime::Handle,
        config: &RepoConfig,
        fingerprint: &str,
        p: &PackageRef,
    ) -> Result<Vec<Prepared>> {
        let record = self.store.get_ranges_blocking(
            rt,
            &StorageKey::MetaPack(p.meta.pack.clone()),
            std::slice::from_ref(&(p.meta.offset..p.meta.offset + p.meta.len)),
        )?;
        let meta = record
            .first()
            .and_then(|r| crate::metapack::meta(r))
            .ok_or_else(|| Error::Corrupt {
                key: p.meta.pack.to_string(),
                reason: format!("unreadable record for {}", p.identity),
            })?;
        if meta.signed_by.as_deref() == Some(fingerprint) {
            return Ok(vec![Prepared::Known(p.clone())]);
        }
        let blob = StorageKey::Blob(p.sha256.clone());
        let tmp;
        let path = match self.store.local_path(&blob) {
            Some(path) => path,
            None => {
                tmp = tempfile::NamedTempFile::new_in(self.store.tmp_dir())?;
                let data = rt.block_on(self.store.get_bytes(&blob))?;
                std::fs::write(tmp.path(), &data)?;
                tmp.path().to_path_buf()
            }
        };
        let up = Upload {
            path,
            file_name: meta.uploaded_as.clone(),
            mtime: Some(meta.mtime),
            take: false,
        };
        let checked = check_package(&up.path, &up.file_name, &self.limits, config.format)?;
        let (puts, prepared) = self.prepare_checked(rt, config, &up, checked)?;
        for put in puts {
            self.put_blob(rt, put)?;
        }
        Ok(prepared)
    }
}

/// The change a promotion records (default: the source repository's
/// name), checked: 1 to 128 characters of a commit or review id.
fn change_id(req: &Promote) -> Result<String> {
    let change = req.change.clone().unwrap_or_else(|| req.from.to_string());
    if change.is_empty()
        || change.len() > 128
        || !change
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._:/+-@#".contains(&b))
    {
        return Err(Error::InvalidInput(format!("invalid change id {change:?}")));
    }
    Ok(change)
}

/// Refuses a promotion into a composite, or between repositories of
/// another format or component.
fn check_promotable(
    from: &RepoName,
    src: &RepoConfig,
    to: &RepoName,
    dst: &RepoConfig,
) -> Result<()> {
    if dst.role == Role::Composite {
        return Err(Error::Forbidden(format!(
            "{to} is a composite repository: promote into one of its members"
        )));
    }
    if src.format != dst.format || src.component != dst.component {
        return Err(Error::InvalidInput(format!(
            "{from} ({:?}, component {}) and {to} ({:?}, component {}) do not match",
            src.format, src.component, dst.format, dst.component
        )));
    }
    Ok(())
}

/// The packages `req` names (all when it names none); `NotFound` for a
/// spec that matches nothing, `InvalidInput` when nothing is left.
fn select(packages: Vec<PackageRef>, req: &Promote) -> Result<Vec<PackageRef>> {
    let selected: Vec<PackageRef> = if req.packages.is_empty() {
        packages
    } else {
        let mut matched = vec![false; req.packages.len()];
        let out = packages
            .into_iter()
            .filter(|p| {
                let mut hit = false;
                for (i, s) in req.packages.iter().enumerate() {
                    if spec_matches(s, p) {
                        matched[i] = true;
                        hit = true;
                    }
                }
                hit
            })
            .collect();
        if let Some(i) = matched.iter().position(|m| !m) {
            return Err(Error::not_found("package", req.packages[i].clone()));
        }
        out
    };
    if selected.is_empty() {
        return Err(Error::InvalidInput(format!(
            "{} has no packages to promote",
            req.from
        )));
    }
    Ok(selected)
}
