//! Adding packages: checked files are signed where the repository signs
//! RPMs, their records written into one meta pack, their files moved into
//! the store, and the new revision switched in by compare-and-swap; also
//! adding references (promotion) and the REST upload's idempotent add.

use crate::engine::kit::Repokit;
use crate::engine::rendered::PRERENDER_MIN;
use crate::engine::revisions::{Merged, delta_base, merge_added, merged_list};
use crate::engine::work::{blocking, cores, parallel_map};
use crate::error::{Error, Result};
use crate::model::{
    Format, MetaLocation, PackageInfo, PackageMeta, PackageRef, RepoConfig, RepoRef, Role,
    VendorSignatures,
};
use crate::names::{RepoName, Sha256};
use crate::ops::ingest::{Checked, NoProgress, Parsed, Progress, Upload, check_package};
use crate::rpm;
use crate::store::{StorageKey, Update};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use sha2::Digest;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// What `add` did.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AddReport {
    pub repo: RepoName,
    /// Packages new in this revision.
    pub added: Vec<PackageRef>,
    /// Packages that were already in the repository with the same bytes.
    pub unchanged: Vec<PackageRef>,
    /// The head revision after the add.
    pub revision: Option<String>,
    /// What was wrong with an accepted package and was mended (a control
    /// file's index-only fields, dropped).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// A file to put into the blob store under its SHA-256, once every file of
/// the batch is checked.
pub(crate) struct BlobPut {
    path: PathBuf,
    sha: Sha256,
    size: u64,
    /// The file may be renamed into the store (a finished upload, `add
    /// --move`, a signed copy).
    take: bool,
    /// A signed copy made for the batch: removed when dropped unless it
    /// was renamed into the store.
    copy: Option<tempfile::TempPath>,
}

/// A signed variant's record: its key and the signed package's reference
/// (JSON).
pub(crate) type VariantRecord = (StorageKey, Bytes);

/// A package ready to be added: already known, or stored with its
/// metadata record still to be written.
pub(crate) enum Prepared {
    Known(PackageRef),
    New {
        meta: Box<PackageMeta>,
        record: Vec<u8>,
        variant: Option<StorageKey>,
    },
}

/// Uploads go into test repositories only: stable ones take packages by
/// promotion, composites have none of their own.
pub(crate) fn accepts_uploads(r: &RepoRef) -> Result<()> {
    let name = &r.config.name;
    match r.config.role {
        Role::Stable => Err(Error::Forbidden(format!(
            "{name} is a stable repository: packages enter it only by promotion"
        ))),
        Role::Composite => Err(Error::Forbidden(format!(
            "{name} is a composite repository: add packages to one of its members"
        ))),
        Role::Test => Ok(()),
    }
}

/// Packages named one by one in an audit record; beyond that the record
/// gives their count, and the revision it names has the whole list.
pub(crate) const AUDIT_PACKAGES: usize = 1000;

/// Audit detail of an add or remove: the packages (the first
/// [`AUDIT_PACKAGES`] of a large import) and the new revision.
pub(crate) fn changed_packages(
    packages: &[PackageRef],
    revision: &Option<String>,
) -> serde_json::Value {
    let list: Vec<serde_json::Value> = packages
        .iter()
        .take(AUDIT_PACKAGES)
        .map(|p| serde_json::json!({"identity": p.identity, "sha256": p.sha256}))
        .collect();
    serde_json::json!({"packages": list, "count": packages.len(), "revision": revision})
}

/// What was mended in accepted packages, one line per package (logged,
/// and reported with the add).
fn mended(uploads: &[Upload], checked: &[Checked]) -> Vec<String> {
    uploads
        .iter()
        .zip(checked)
        .filter_map(|(up, c)| match &c.pkg {
            Parsed::Deb(pkg, _) if !pkg.dropped.is_empty() => {
                let line = format!(
                    "{}: control carries index-only fields, dropped: {}",
                    up.file_name,
                    pkg.dropped.join(", ")
                );
                tracing::warn!("{line}");
                Some(line)
            }
            _ => None,
        })
        .collect()
}

impl Repokit {
    /// Everything for one checked package short of storing its file: the
    /// signed copy (RPM with a key), the metadata record and the blob puts
    /// that must land before the revision names the package. Runs on a
    /// blocking thread.
    pub(crate) fn prepare_checked(
        &self,
        rt: &tokio::runtime::Handle,
        config: &RepoConfig,
        up: &Upload,
        c: Checked,
    ) -> Result<(Vec<BlobPut>, Vec<Prepared>)> {
        // Debian packages are not signed one by one; their Release is.
        let key = match (&config.sign_with, &c.pkg) {
            (Some(key), Parsed::Rpm(_)) => key,
            _ => {
                let put = BlobPut {
                    path: up.path.clone(),
                    sha: c.sha.clone(),
                    size: c.size,
                    take: up.take,
                    copy: None,
                };
                return self.prepare_package(config, c, put, up, None, None);
            }
        };
        let mut signer = self.keyring.signer(key)?;
        let fingerprint = signer.fingerprint();
        let variant = StorageKey::SignedVariant {
            fingerprint: rpm::signature::variant_name(&fingerprint, config.vendor_signatures),
            source: c.sha.clone(),
        };
        if let Some(pref) = rt.block_on(self.known_variant(&variant))? {
            return Ok((Vec::new(), vec![Prepared::Known(pref)]));
        }
        let tmp = tempfile::NamedTempFile::new_in(self.store.tmp_dir())?.into_temp_path();
        std::fs::copy(&up.path, &tmp)?;
        let own;
        let existing = match config.vendor_signatures {
            VendorSignatures::Replace => rpm::signature::Existing::Replace,
            VendorSignatures::Keep => {
                own = self.keyring.key_handles()?;
                rpm::signature::Existing::KeepForeign(&own)
            }
        };
        rpm::signature::sign_file(
            &tmp,
            &up.file_name,
            &mut signer,
            self.now(),
            existing,
            self.limits.max_rpm_header_bytes,
        )?;
        let signed = check_package(&tmp, &up.file_name, &self.limits, config.format)?;
        let put = BlobPut {
            path: tmp.to_path_buf(),
            sha: signed.sha.clone(),
            size: signed.size,
            take: true,
            copy: Some(tmp),
        };
        self.prepare_package(
            config,
            signed,
            put,
            up,
            Some((fingerprint, c.sha)),
            Some(variant),
        )
    }

    /// The signed copy a variant record names, when its file and metadata
    /// are stored. A record whose objects are gone (an interrupted gc of an
    /// older store deleted them first) is deleted, so the package is signed
    /// and stored again instead of being named without its file.
    pub(crate) async fn known_variant(&self, key: &StorageKey) -> Result<Option<PackageRef>> {
        let Some(pref) = self.store.get_json::<PackageRef>(key).await? else {
            return Ok(None);
        };
        let blob = StorageKey::Blob(pref.sha256.clone());
        let meta = StorageKey::MetaPack(pref.meta.pack.clone());
        if self.store.exists(&blob).await? && self.store.exists(&meta).await? {
            return Ok(Some(pref));
        }
        tracing::warn!(record = %key.path(), "signed-variant record without its objects: dropped");
        self.store
            .delete_paths(vec![key.path().to_string()])
            .await?;
        Ok(None)
    }

    /// Puts a package file into the blob store (a signed copy that was not
    /// renamed there is removed when `put` drops).
    pub(crate) fn put_blob(&self, rt: &tokio::runtime::Handle, put: BlobPut) -> Result<()> {
        let BlobPut {
            path,
            sha,
            size,
            take,
            copy,
        } = put;
        let stored = self
            .store
            .put_blob_file_blocking(rt, &path, &sha, size, take);
        drop(copy);
        stored
    }

    /// The metadata record of a checked package, with `put` (its file)
    /// and, for a `.dsc`, the files it lists before it in the returned
    /// puts.
    pub(crate) fn prepare_package(
        &self,
        config: &RepoConfig,
        c: Checked,
        put: BlobPut,
        up: &Upload,
        signed: Option<(String, Sha256)>,
        variant: Option<StorageKey>,
    ) -> Result<(Vec<BlobPut>, Vec<Prepared>)> {
        let (signed_by, signed_from) = match signed {
            Some((f, s)) => (Some(f), Some(s)),
            None => (None, None),
        };
        let Checked {
            pkg,
            sha,
            size,
            mtime: file_mtime,
        } = c;
        let mtime = up.mtime.unwrap_or(file_mtime);
        let mut puts = Vec::with_capacity(1);
        let mut extra = Vec::new();
        let (fragment, location, info) = match pkg {
            Parsed::Rpm(pkg) => {
                let fragments = rpm::xml::fragments(
                    &pkg,
                    rpm::xml::FileFacts {
                        sha256: sha.as_str(),
                        size,
                        mtime,
                    },
                );
                let info = PackageInfo::Rpm {
                    package: Box::new(pkg.summary()),
                };
                (fragments.to_bytes(), pkg.location(), info)
            }
            Parsed::Deb(pkg, digests) => {
                let location = pkg.location(&config.component);
                let stanza = crate::deb::index::stanza(&pkg, &location, &digests);
                (
                    stanza.into_bytes(),
                    location,
                    PackageInfo::Deb { package: pkg },
                )
            }
            Parsed::Dsc(src, digests, files) => {
                let dir = src.directory(&config.component);
                // The listed files first; the .dsc (which names them) last.
                for (path, d) in files {
                    let (put, prepared) = source_file(&src, &dir, path, &d, mtime)?;
                    puts.push(put);
                    extra.push(prepared);
                }
                let stanza = crate::deb::source::stanza(&src, &dir, &up.file_name, &digests);
                let location = format!("{dir}/{}", up.file_name);
                (
                    stanza.into_bytes(),
                    location,
                    PackageInfo::Dsc { package: src },
                )
            }
        };
        puts.push(put);
        let meta = PackageMeta {
            sha256: sha,
            size,
            mtime,
            uploaded_as: up.file_name.clone(),
            signed_by,
            signed_from,
            location,
            info,
        };
        let record = crate::metapack::encode(&meta, &fragment)?;
        extra.push(Prepared::New {
            meta: Box::new(meta),
            record,
            variant,
        });
        Ok((puts, extra))
    }

    /// Writes the records of newly stored packages as one meta pack and
    /// returns every package's reference, with the signed-variant records
    /// to write once the packages' files are stored (see
    /// [`Repokit::record_variants`]). Runs on a blocking thread.
    pub(crate) fn write_pack(
        &self,
        rt: &tokio::runtime::Handle,
        prepared: Vec<Prepared>,
    ) -> Result<(Vec<PackageRef>, Vec<VariantRecord>)> {
        // The pack is hashed and written record by record, never copied
        // into one buffer.
        let mut parts: Vec<&[u8]> = Vec::with_capacity(prepared.len());
        let mut spans = Vec::with_capacity(prepared.len());
        let mut hasher = sha2::Sha256::new();
        let mut offset = 0u64;
        for p in &prepared {
            if let Prepared::New { record, .. } = p {
                spans.push((offset, record.len() as u64));
                offset += record.len() as u64;
                hasher.update(record);
                parts.push(record);
            }
        }
        let pack_sha = Sha256::from_digest(&hasher.finalize());
        if !parts.is_empty() {
            self.store.put_immutable_parts_blocking(
                rt,
                &StorageKey::MetaPack(pack_sha.clone()),
                &parts,
            )?;
        }
        let mut spans = spans.into_iter();
        let mut out = Vec::with_capacity(prepared.len());
        let mut variants = Vec::new();
        for p in prepared {
            match p {
                Prepared::Known(r) => out.push(r),
                Prepared::New { meta, variant, .. } => {
                    let (offset, len) = spans
                        .next()
                        .ok_or_else(|| Error::internal("meta pack spans out of step"))?;
                    let r = meta.package_ref(MetaLocation {
                        pack: pack_sha.clone(),
                        offset,
                        len,
                    });
                    if let Some(v) = variant {
                        let body = serde_json::to_vec(&r).unwrap_or_default();
                        variants.push((v, Bytes::from(body)));
                    }
                    out.push(r);
                }
            }
        }
        Ok((out, variants))
    }

    /// Records signed variants (upload -> signed package). Called only once
    /// the signed files and their metadata are stored: an add that failed
    /// before that signs again on retry instead of naming a file the store
    /// never got.
    pub(crate) fn record_variants(
        &self,
        rt: &tokio::runtime::Handle,
        variants: Vec<VariantRecord>,
    ) -> Result<()> {
        for (key, body) in variants {
            self.store.put_immutable_blocking(rt, &key, body)?;
        }
        Ok(())
    }

    /// Adds package files to a repository as one new revision. Every file is
    /// read and checked before any is stored (a bad file stores nothing); a
    /// package whose identity or location is already taken by different
    /// bytes is a `Conflict`.
    pub async fn add(
        &self,
        name: &RepoName,
        uploads: &[Upload],
        progress: Arc<dyn Progress>,
    ) -> Result<AddReport> {
        let lease = self.store.lease().await?;
        let result = self.add_leased(name, uploads, progress).await;
        lease.release().await;
        result
    }

    pub(crate) async fn add_leased(
        &self,
        name: &RepoName,
        uploads: &[Upload],
        progress: Arc<dyn Progress>,
    ) -> Result<AddReport> {
        let t0 = std::time::Instant::now();
        let r = self.repo_ref(name).await?;
        accepts_uploads(&r)?;
        if uploads.is_empty() {
            return Err(Error::InvalidInput("no package files given".into()));
        }
        let this = self.clone();
        let uploads = uploads.to_vec();
        let rt = tokio::runtime::Handle::current();
        progress.start(2 * uploads.len() as u64);
        let bar = progress.clone();
        let report = blocking(move || {
            let checked = this.check_uploads(&r.config, &uploads, &*bar)?;
            this.refuse_clashes(&rt, &r, &uploads, &checked)?;
            let warnings = mended(&uploads, &checked);
            let mut report = this.store_checked(&rt, &r, uploads, checked, &*bar)?;
            report.warnings = warnings;
            Ok(report)
        })
        .await?;
        progress.finish();
        tracing::debug!(elapsed = ?t0.elapsed(), "added");
        if !report.added.is_empty() {
            self.record(
                "add",
                Some(name),
                changed_packages(&report.added, &report.revision),
            )
            .await?;
        }
        Ok(report)
    }

    /// Checks every upload, on every core, before anything is stored.
    fn check_uploads(
        &self,
        config: &RepoConfig,
        uploads: &[Upload],
        bar: &dyn Progress,
    ) -> Result<Vec<Checked>> {
        let started = std::time::Instant::now();
        let checked = parallel_map(uploads, |up| {
            let c = check_package(&up.path, &up.file_name, &self.limits, config.format)?;
            if let Parsed::Deb(pkg, _) = &c.pkg
                && !config.carries(&pkg.architecture)
            {
                return Err(config.foreign_arch(&up.file_name, &pkg.architecture));
            }
            bar.advance(1);
            Ok(c)
        })?;
        tracing::debug!(packages = checked.len(), elapsed = ?started.elapsed(), "checked");
        Ok(checked)
    }

    /// Stores checked packages: their files on a mover thread (one per
    /// core for a bucket) while the records are made on every core and the
    /// meta pack written; then the revision (see `finish_batch`).
    fn store_checked(
        &self,
        rt: &tokio::runtime::Handle,
        repo: &RepoRef,
        uploads: Vec<Upload>,
        checked: Vec<Checked>,
        bar: &dyn Progress,
    ) -> Result<AddReport> {
        let started = std::time::Instant::now();
        let config = &repo.config;
        let work: Vec<(Upload, Mutex<Option<Checked>>)> = uploads
            .into_iter()
            .zip(checked)
            .map(|(u, c)| (u, Mutex::new(Some(c))))
            .collect();
        // Files go into the store on their own thread while the records
        // are made and the meta pack written: on a local store each is a
        // cross-directory rename, which the kernel serialises on one
        // lock, so a second renaming thread would only spin. A bucket
        // gets one uploader per core.
        let (tx, rx) = std::sync::mpsc::channel::<BlobPut>();
        let rx = Mutex::new(rx);
        let movers = if self.store.is_direct() { 1 } else { cores() };
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..movers)
                .map(|_| {
                    s.spawn(|| -> Result<()> {
                        while let Some(put) = rx.lock().ok().and_then(|r| r.recv().ok()) {
                            self.put_blob(rt, put)?;
                        }
                        Ok(())
                    })
                })
                .collect();
            let prepared = parallel_map(&work, |(up, c)| {
                let c = c
                    .lock()
                    .ok()
                    .and_then(|mut c| c.take())
                    .ok_or_else(|| Error::internal("package taken twice"))?;
                let (puts, prepared) = self.prepare_checked(rt, config, up, c)?;
                for put in puts {
                    // A closed channel means a mover failed; its error
                    // is reported below.
                    let _ = tx.send(put);
                }
                bar.advance(1);
                Ok(prepared)
            });
            drop(tx);
            let refs = prepared.and_then(|prepared| {
                let prepared: Vec<Prepared> = prepared.into_iter().flatten().collect();
                tracing::debug!(elapsed = ?started.elapsed(), "records made");
                self.write_pack(rt, prepared)
            });
            let stored = || {
                let moved = handles.into_iter().try_for_each(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(Error::internal("a store thread panicked")))
                });
                tracing::debug!(elapsed = ?started.elapsed(), "stored");
                moved
            };
            match refs {
                Ok((refs, variants)) => self.finish_batch(rt, repo, &refs, variants, stored),
                Err(e) => {
                    let _ = stored();
                    Err(e)
                }
            }
        })
    }

    /// Once every file of a batch is stored (`stored` waits for the
    /// movers), writes its signed-variant records and the new revision; the
    /// chunks of the next publish are rendered meanwhile for a large batch.
    fn finish_batch(
        &self,
        rt: &tokio::runtime::Handle,
        repo: &RepoRef,
        refs: &[PackageRef],
        variants: Vec<VariantRecord>,
        stored: impl FnOnce() -> Result<()>,
    ) -> Result<AddReport> {
        std::thread::scope(|ahead_scope| {
            let ahead = (refs.len() >= PRERENDER_MIN).then(|| {
                ahead_scope.spawn(|| {
                    // Best effort: the publish renders what is missing.
                    if let Err(e) = self.prerender(rt, repo, refs) {
                        tracing::debug!(error = %e, "chunks not rendered ahead");
                    }
                })
            });
            // Every file is in the store before a signed-variant record or
            // the revision names it.
            let report = stored()
                .and_then(|()| self.record_variants(rt, variants))
                .and_then(|()| rt.block_on(self.add_refs(&repo.config.name, refs)));
            if let Some(h) = ahead {
                let _ = h.join();
            }
            report
        })
    }

    /// Adds already stored packages to a repository as one new revision.
    pub(crate) async fn add_refs(&self, name: &RepoName, refs: &[PackageRef]) -> Result<AddReport> {
        let now = self.now_secs();
        self.store
            .update_ref(name, async |mut r: RepoRef| {
                let head = self.head_revision(&r).await?;
                let Merged { added, unchanged } = merge_added(name, &head.packages, refs)?;
                if added.is_empty() {
                    let revision = r.head.as_ref().map(|h| h.revision.clone());
                    return Ok(Update::Keep(AddReport {
                        repo: name.clone(),
                        added,
                        unchanged,
                        revision,
                        warnings: Vec::new(),
                    }));
                }
                let base = delta_base(&r, &head);
                let packages = merged_list(self.take_packages(&r, head), &added);
                let rev = self.write_revision_on(&r, base, packages, now).await?;
                r.head = Some(rev.clone());
                r.updated = now;
                Ok(Update::Write(
                    Box::new(r),
                    AddReport {
                        repo: name.clone(),
                        added,
                        unchanged,
                        revision: Some(rev.revision),
                        warnings: Vec::new(),
                    },
                ))
            })
            .await
    }

    /// Adds one uploaded file whose SHA-256 the caller computed while
    /// receiving it. When the head already holds those bytes (or their
    /// signed variant) nothing is parsed or stored and the stored package is
    /// returned; otherwise it is an `add`. Returns the package as stored,
    /// whether it is new, and the head revision.
    pub async fn add_upload(
        &self,
        name: &RepoName,
        upload: Upload,
        sha: &Sha256,
    ) -> Result<(PackageRef, bool, Option<String>)> {
        let r = self.repo_ref(name).await?;
        accepts_uploads(&r)?;
        let mut wanted = Some(sha.clone());
        if let (Some(key), Format::Rpm) = (&r.config.sign_with, r.config.format) {
            let variant = StorageKey::SignedVariant {
                fingerprint: rpm::signature::variant_name(
                    &self.keyring.signer(key)?.fingerprint(),
                    r.config.vendor_signatures,
                ),
                source: sha.clone(),
            };
            wanted = self
                .store
                .get_json::<PackageRef>(&variant)
                .await?
                .map(|v| v.sha256);
        }
        if let Some(wanted) = wanted
            && let Some(p) = self
                .head_revision(&r)
                .await?
                .packages
                .iter()
                .find(|p| p.sha256 == wanted)
        {
            return Ok((p.clone(), false, r.head.map(|h| h.revision)));
        }
        let report = self.add(name, &[upload], Arc::new(NoProgress)).await?;
        let created = !report.added.is_empty();
        let p = report
            .added
            .into_iter()
            .chain(report.unchanged)
            .next()
            .ok_or_else(|| Error::internal("add reported nothing"))?;
        Ok((p, created, report.revision))
    }
}

/// The blob put and the record of one file a `.dsc` lists, in the pool
/// directory `dir` of its source package.
fn source_file(
    src: &crate::model::SourcePackage,
    dir: &str,
    path: PathBuf,
    d: &crate::deb::index::Digests,
    mtime: u64,
) -> Result<(BlobPut, Prepared)> {
    let file = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_string();
    let file_sha = Sha256::new(d.sha256.clone())?;
    let put = BlobPut {
        path,
        sha: file_sha.clone(),
        size: d.size,
        take: false,
        copy: None,
    };
    let meta = PackageMeta {
        sha256: file_sha,
        size: d.size,
        mtime,
        uploaded_as: file.clone(),
        signed_by: None,
        signed_from: None,
        location: format!("{dir}/{file}"),
        info: PackageInfo::SourceFile {
            source: src.source.clone(),
            version: src.version.clone(),
            file,
        },
    };
    let prepared = Prepared::New {
        record: crate::metapack::encode(&meta, b"")?,
        meta: Box::new(meta),
        variant: None,
    };
    Ok((put, prepared))
}
