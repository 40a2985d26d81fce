//! Refusing a batch that clashes with its repository before anything of it
//! is stored: a location already taken by other bytes, in the head or
//! earlier in the batch. `merge_added` applies the same rule when the
//! revision is written; checking first means a refused request leaves the
//! store as it was. (A clash made by a concurrent writer in between is
//! still refused there; what the batch stored is then garbage for gc.)

use std::collections::HashMap;

use super::ingest::{Checked, Parsed, Upload};
use crate::engine::kit::Repokit;
use crate::error::{Error, Result};
use crate::model::{PackageRef, RepoRef};
use crate::names::Sha256;
use crate::rpm;
use crate::store::StorageKey;

/// The content a batch puts at a location.
#[derive(PartialEq, Eq)]
enum Content {
    /// These bytes (an unsigned package, a `.deb`, a source file).
    Known(Sha256),
    /// The repository's signed copy of the file with this SHA-256: the one
    /// signed before, if its record stands, else a new one (other bytes
    /// than anything stored). Looked up only when the location is taken.
    SignedCopyOf(Sha256),
}

impl Repokit {
    /// `Conflict` when a package of the batch would replace other bytes at
    /// its location (see the module documentation).
    pub(crate) fn refuse_clashes(
        &self,
        rt: &tokio::runtime::Handle,
        r: &RepoRef,
        uploads: &[Upload],
        checked: &[Checked],
    ) -> Result<()> {
        let head = rt.block_on(self.head_revision(r))?;
        let fingerprint = match &r.config.sign_with {
            Some(key) => Some(self.keyring.signer(key)?.fingerprint()),
            None => None,
        };
        let mut batch: HashMap<String, Content> = HashMap::new();
        for (up, c) in uploads.iter().zip(checked) {
            for (location, identity, content) in Self::claims(r, up, c, fingerprint.is_some())? {
                let taken = head
                    .packages
                    .binary_search_by(|p: &PackageRef| p.location.as_str().cmp(&location))
                    .ok()
                    .map(|i| &head.packages[i].sha256);
                let clash = match (&content, taken) {
                    (Content::Known(sha), Some(have)) => sha != have,
                    (Content::SignedCopyOf(source), Some(have)) => {
                        let fpr = fingerprint.as_deref().unwrap_or_default();
                        self.signed_copy(rt, r, fpr, source)?.as_ref() != Some(have)
                    }
                    (_, None) => batch.get(&location).is_some_and(|c| *c != content),
                };
                if clash {
                    return Err(Error::Conflict(format!(
                        "{identity} is already in {} with different content",
                        r.config.name
                    )));
                }
                batch.insert(location, content);
            }
        }
        Ok(())
    }

    /// The SHA-256 of the signed copy of `source` this repository holds a
    /// record of (`None`: a new signature would be made).
    fn signed_copy(
        &self,
        rt: &tokio::runtime::Handle,
        r: &RepoRef,
        fingerprint: &str,
        source: &Sha256,
    ) -> Result<Option<Sha256>> {
        let variant = StorageKey::SignedVariant {
            fingerprint: rpm::signature::variant_name(fingerprint, r.config.vendor_signatures),
            source: source.clone(),
        };
        Ok(rt.block_on(self.known_variant(&variant))?.map(|p| p.sha256))
    }

    /// The locations a checked package takes, with its identity and the
    /// content it puts there.
    fn claims(
        r: &RepoRef,
        up: &Upload,
        c: &Checked,
        signing: bool,
    ) -> Result<Vec<(String, String, Content)>> {
        let component = &r.config.component;
        Ok(match &c.pkg {
            Parsed::Rpm(pkg) => {
                let content = match signing {
                    false => Content::Known(c.sha.clone()),
                    true => Content::SignedCopyOf(c.sha.clone()),
                };
                vec![(pkg.location(), pkg.identity(), content)]
            }
            Parsed::Deb(pkg, _) => vec![(
                pkg.location(component),
                pkg.identity(),
                Content::Known(c.sha.clone()),
            )],
            Parsed::Dsc(src, _, files) => {
                let dir = src.directory(component);
                let mut out = vec![(
                    format!("{dir}/{}", up.file_name),
                    src.identity(),
                    Content::Known(c.sha.clone()),
                )];
                for (path, d) in files {
                    let file = path
                        .file_name()
                        .and_then(|n| n.to_str())
                        .unwrap_or_default();
                    out.push((
                        format!("{dir}/{file}"),
                        file.to_string(),
                        Content::Known(Sha256::new(d.sha256.clone())?),
                    ));
                }
                out
            }
        })
    }
}
