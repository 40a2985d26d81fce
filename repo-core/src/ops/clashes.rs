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
    /// These bytes (an unsigned package, or a signed copy made before).
    Known(Sha256),
    /// A new signed copy of the file with this SHA-256: other bytes than
    /// anything already stored.
    NewSignatureOf(Sha256),
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
            for (location, identity, content) in
                self.claims(rt, r, up, c, fingerprint.as_deref())?
            {
                let taken = head
                    .packages
                    .binary_search_by(|p: &PackageRef| p.location.as_str().cmp(&location))
                    .ok()
                    .map(|i| &head.packages[i].sha256);
                let clash = match (&content, taken) {
                    (Content::Known(sha), Some(have)) => sha != have,
                    (Content::NewSignatureOf(_), Some(_)) => true,
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

    /// The locations a checked package takes, with its identity and the
    /// content it puts there.
    fn claims(
        &self,
        rt: &tokio::runtime::Handle,
        r: &RepoRef,
        up: &Upload,
        c: &Checked,
        fingerprint: Option<&str>,
    ) -> Result<Vec<(String, String, Content)>> {
        let component = &r.config.component;
        Ok(match &c.pkg {
            Parsed::Rpm(pkg) => {
                let content = match fingerprint {
                    None => Content::Known(c.sha.clone()),
                    Some(fpr) => {
                        let variant = StorageKey::SignedVariant {
                            fingerprint: rpm::signature::variant_name(
                                fpr,
                                r.config.vendor_signatures,
                            ),
                            source: c.sha.clone(),
                        };
                        match rt.block_on(self.known_variant(&variant))? {
                            Some(p) => Content::Known(p.sha256),
                            None => Content::NewSignatureOf(c.sha.clone()),
                        }
                    }
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
