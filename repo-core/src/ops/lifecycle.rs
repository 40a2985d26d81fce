//! Repository lifecycle: create (with its validation of names, roles,
//! members and APT fields), show, list, delete, and a repository's
//! configuration and packages. Does not touch package files.

use crate::engine::kit::{DEFAULT_TEST_TTL, Repokit};
use crate::error::{Error, Result};
use crate::model::{Format, PackageRef, RepoConfig, RepoRef, Role, VendorSignatures};
use crate::names::{KeyName, RepoName};
use crate::rpm::repodata::Compression;
use serde::{Deserialize, Serialize};

/// Parameters of `create_repo`; also the JSON body of `POST /api/v1/repos`
/// and of the C ABI's `repokit_repo_create` (unknown fields are refused;
/// `ttl` may be a duration text such as `"20d"` or seconds).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateRepo {
    pub name: RepoName,
    pub format: Format,
    #[serde(default)]
    pub role: Role,
    #[serde(default)]
    pub sign_with: Option<KeyName>,
    #[serde(default)]
    pub compression: Compression,
    /// RPM, signing repositories: keep or replace the signatures an upload
    /// carries (default `replace`).
    #[serde(default)]
    pub vendor_signatures: VendorSignatures,
    /// APT: the distribution name; required for `deb`.
    #[serde(default)]
    pub codename: Option<String>,
    /// APT: the component (default `main`).
    #[serde(default)]
    pub component: Option<String>,
    /// APT: the architectures (default `amd64`).
    #[serde(default)]
    pub architectures: Vec<String>,
    /// Test and composite repositories: seconds without a change before
    /// the repository expires (test default: 20 days; composite: never).
    #[serde(default, deserialize_with = "ttl_seconds")]
    pub ttl: Option<u64>,
    /// Composite repositories: the members, in order (earlier ones first
    /// in the merged view).
    #[serde(default)]
    pub members: Vec<RepoName>,
}

/// A TTL as seconds or as a duration text (`"20d"`, `"12h"`).
pub(crate) fn ttl_seconds<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<u64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Ttl {
        Seconds(u64),
        Text(String),
    }
    match Option::<Ttl>::deserialize(d)? {
        None => Ok(None),
        Some(Ttl::Seconds(n)) => Ok(Some(n)),
        Some(Ttl::Text(t)) => crate::time::parse_duration(&t)
            .map(Some)
            .map_err(serde::de::Error::custom),
    }
}

/// A distribution, component or architecture name: lowercase letters,
/// digits, `.`, `-`, `_`, `+`; safe in a path segment.
pub(crate) fn check_dist_word(what: &str, s: &str) -> Result<()> {
    let ok = !s.is_empty()
        && s.len() <= 64
        && s.as_bytes()[0].is_ascii_alphanumeric()
        && s.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'_' | b'+')
        });
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidInput(format!("invalid {what} {s:?}")))
    }
}

/// A repository as shown to users.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RepoInfo {
    #[serde(flatten)]
    pub config: RepoConfig,
    pub head: Option<String>,
    pub published: Option<String>,
    pub packages: usize,
    /// Unix seconds of the last change.
    pub updated: u64,
    /// Unix seconds when the repository expires, if it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<u64>,
}

impl Repokit {
    /// The token scope creating `spec` needs (the policy of
    /// [`crate::access::required_scope_to_create`]): whether its key is a
    /// release key is read from the stable repositories of the store.
    pub async fn scope_to_create(&self, spec: &CreateRepo) -> Result<crate::access::Scope> {
        let release_key =
            match &spec.sign_with {
                Some(key) => self.store.list_refs().await?.iter().any(|r| {
                    r.config.role == Role::Stable && r.config.sign_with.as_ref() == Some(key)
                }),
                None => false,
            };
        Ok(crate::access::required_scope_to_create(
            spec.role,
            release_key,
        ))
    }

    /// Creates an empty repository.
    pub async fn create_repo(&self, spec: CreateRepo) -> Result<RepoInfo> {
        let (codename, component, architectures) = apt_fields(&spec)?;
        let ttl = ttl_of(&spec)?;
        self.check_members(&spec, &component).await?;
        if let Some(key) = &spec.sign_with {
            self.keyring.signer(key)?;
        }
        let r = RepoRef {
            config: RepoConfig {
                name: spec.name,
                format: spec.format,
                role: spec.role,
                sign_with: spec.sign_with,
                compression: spec.compression,
                vendor_signatures: spec.vendor_signatures,
                codename,
                component,
                architectures,
                ttl,
                members: spec.members,
                created: self.now_secs(),
            },
            head: None,
            published: None,
            retired: Vec::new(),
            updated: 0,
        };
        self.store.create_ref(&r).await?;
        tracing::info!(repo = %r.config.name, "created repository");
        self.record(
            "create",
            Some(&r.config.name),
            serde_json::to_value(&r.config).unwrap_or_default(),
        )
        .await?;
        Ok(RepoInfo {
            expires: r.expires(),
            updated: r.config.created,
            config: r.config,
            head: None,
            published: None,
            packages: 0,
        })
    }

    /// A composite's members exist, each once, none composite, all of its
    /// format and component; other repositories have none.
    async fn check_members(&self, spec: &CreateRepo, component: &str) -> Result<()> {
        if spec.role != Role::Composite {
            if !spec.members.is_empty() {
                return Err(Error::InvalidInput(
                    "only composite repositories have members".into(),
                ));
            }
            return Ok(());
        }
        if spec.members.is_empty() {
            return Err(Error::InvalidInput(
                "a composite repository needs members".into(),
            ));
        }
        let mut seen = std::collections::HashSet::new();
        for m in &spec.members {
            if !seen.insert(m) || *m == spec.name {
                return Err(Error::InvalidInput(format!("member {m} listed twice")));
            }
            let mr = self.repo_ref(m).await?;
            if mr.config.role == Role::Composite {
                return Err(Error::InvalidInput(format!(
                    "member {m} is composite; members are test or stable repositories"
                )));
            }
            if mr.config.format != spec.format || mr.config.component != component {
                return Err(Error::InvalidInput(format!(
                    "member {m} is a {:?} repository with component {}",
                    mr.config.format, mr.config.component
                )));
            }
        }
        Ok(())
    }

    pub async fn repo(&self, name: &RepoName) -> Result<RepoInfo> {
        let r = self.repo_ref(name).await?;
        self.info(r).await
    }

    pub(crate) async fn info(&self, r: RepoRef) -> Result<RepoInfo> {
        let packages = self.head_revision(&r).await?.packages.len();
        Ok(RepoInfo {
            expires: r.expires(),
            updated: r.updated.max(r.config.created),
            head: r.head.map(|h| h.revision),
            published: r.published.map(|p| p.publication),
            packages,
            config: r.config,
        })
    }

    pub async fn repos(&self) -> Result<Vec<RepoInfo>> {
        let mut out = Vec::new();
        for r in self.store.list_refs().await? {
            out.push(self.info(r).await?);
        }
        Ok(out)
    }

    /// Deletes a repository; its files are collected later as garbage.
    pub async fn delete_repo(&self, name: &RepoName) -> Result<()> {
        self.store.delete_ref(name).await?;
        self.record("delete", Some(name), serde_json::json!({}))
            .await?;
        Ok(())
    }

    /// The role of a repository (what the server checks scopes against).
    /// A repository's configuration, without reading its package list.
    pub async fn config(&self, name: &RepoName) -> Result<RepoConfig> {
        Ok(self.repo_ref(name).await?.config)
    }

    /// The packages of the head revision.
    pub async fn packages(&self, name: &RepoName) -> Result<Vec<PackageRef>> {
        let r = self.repo_ref(name).await?;
        self.head_packages(&r).await
    }
}

/// The APT fields of a new repository, checked, with their defaults:
/// (codename, component, architectures). An RPM repository takes none.
fn apt_fields(spec: &CreateRepo) -> Result<(Option<String>, String, Vec<String>)> {
    match spec.format {
        Format::Deb => {
            let codename = spec
                .codename
                .clone()
                .ok_or_else(|| Error::InvalidInput("a deb repository needs a codename".into()))?;
            check_dist_word("codename", &codename)?;
            let component = spec
                .component
                .clone()
                .unwrap_or_else(crate::model::default_component);
            check_dist_word("component", &component)?;
            let mut archs = if spec.architectures.is_empty() {
                crate::model::default_architectures()
            } else {
                spec.architectures.clone()
            };
            for a in &archs {
                check_dist_word("architecture", a)?;
            }
            archs.sort();
            archs.dedup();
            Ok((Some(codename), component, archs))
        }
        Format::Rpm => {
            if spec.codename.is_some() || spec.component.is_some() || !spec.architectures.is_empty()
            {
                return Err(Error::InvalidInput(
                    "codename, component and architectures apply to deb repositories".into(),
                ));
            }
            Ok((
                None,
                crate::model::default_component(),
                crate::model::default_architectures(),
            ))
        }
    }
}

/// A new repository's TTL: test repositories default to 20 days, stable
/// ones never expire, none is zero.
fn ttl_of(spec: &CreateRepo) -> Result<Option<u64>> {
    let ttl = match (spec.role, spec.ttl) {
        (Role::Stable, Some(_)) => {
            return Err(Error::InvalidInput(
                "stable repositories do not expire (no ttl)".into(),
            ));
        }
        (Role::Test, None) => Some(DEFAULT_TEST_TTL),
        (_, t) => t,
    };
    if ttl == Some(0) {
        return Err(Error::InvalidInput("ttl must be positive".into()));
    }
    Ok(ttl)
}
