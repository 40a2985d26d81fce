//! Client configuration for a repository: gathers what `clientconf`
//! renders (the repository's signing, a composite's members' keys, whether
//! sources are published) for a server reached at a base URL.

use crate::clientconf::{self, AptSource, DnfRepo};
use crate::engine::kit::Repokit;
use crate::error::{Error, Result};
use crate::model::Format;
use crate::names::RepoName;

/// Which client's configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientKind {
    /// A dnf `.repo` file.
    Dnf,
    /// An APT deb822 `.sources` file.
    Apt,
}

impl Repokit {
    /// The configuration file for `kind` of the repository `name`, served
    /// under `base` (`http://host:port`). `NotFound` when the repository is
    /// of the other format.
    pub async fn client_config(
        &self,
        name: &RepoName,
        base: &str,
        kind: ClientKind,
    ) -> Result<String> {
        let c = self.config(name).await?;
        let url = format!("{base}/repos/{name}/");
        let wanted = match kind {
            ClientKind::Dnf => Format::Rpm,
            ClientKind::Apt => Format::Deb,
        };
        if c.format != wanted {
            return Err(Error::not_found(
                "file",
                format!(
                    "{name}/{name}.{} ({name} is a {:?} repository)",
                    if kind == ClientKind::Dnf {
                        "repo"
                    } else {
                        "sources"
                    },
                    c.format
                ),
            ));
        }
        if kind == ClientKind::Dnf {
            // A composite's packages carry their members' signatures: every
            // member's key is listed, and package checks are on only when
            // every member signs.
            let mut keys = Vec::new();
            let mut all_signed = c.sign_with.is_some();
            if c.sign_with.is_some() {
                keys.push(format!("{url}repo-key.asc"));
            }
            for m in &c.members {
                if self.config(m).await?.sign_with.is_some() {
                    keys.push(format!("{base}/repos/{m}/repo-key.asc"));
                } else {
                    all_signed = false;
                }
            }
            return Ok(clientconf::dnf_repo(&DnfRepo {
                name: name.as_str(),
                url: &url,
                keys,
                packages_signed: all_signed,
                metadata_signed: c.sign_with.is_some(),
            }));
        }
        let live = match self.live_publication(name).await {
            Ok(p) => Some(p),
            Err(Error::NotFound { .. }) => None,
            Err(e) => return Err(e),
        };
        let codename = c.codename.as_deref().unwrap_or_default();
        let sources = live.as_ref().is_some_and(|p| {
            p.files
                .contains_key(&format!("dists/{codename}/{}/source/Sources", c.component))
        });
        let key = c
            .sign_with
            .as_ref()
            .map(|k| self.keyring.export_public(k))
            .transpose()?;
        Ok(clientconf::apt_sources(&AptSource {
            url: &url,
            codename,
            component: &c.component,
            architectures: &c.architectures,
            sources,
            key: key.as_deref(),
        }))
    }
}
