//! Every object path in the store is built here, and only here.

use object_store::path::Path;

use crate::model::{Part, PartSource};
use crate::names::{RepoName, Sha256};

/// How long a client or cache may keep an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CachePolicy {
    /// Content-addressed: never changes under its name.
    Immutable,
    /// A moving pointer: always revalidate.
    Mutable,
}

/// A typed storage key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum StorageKey {
    /// A package or metadata file, named by its SHA-256.
    Blob(Sha256),
    /// Parsed metadata and index fragments of the packages of one add, in
    /// one object (see `MetaLocation`); named by its SHA-256.
    MetaPack(Sha256),
    /// Rendered index chunks (compressed index output for runs of
    /// packages) of one render, reused by publishes whose package list
    /// contains the same runs; named by its SHA-256.
    ChunkPack(Sha256),
    /// The small pack of one publish (see `PartSource::Small`); named by
    /// its SHA-256.
    SmallPack(Sha256),
    /// Where the chunks of one package list lie (`chunks::ChunkSet`), by
    /// `chunks::set_key`: stored by an import that renders ahead.
    ChunkSet(String),
    /// The signed variant of an unsigned package for one signing key:
    /// makes re-adding the same upload to a signing repo idempotent.
    SignedVariant { fingerprint: String, source: Sha256 },
    /// An immutable package list.
    Revision { repo: RepoName, id: String },
    /// An immutable path -> blob manifest.
    Publication { repo: RepoName, id: String },
    /// A repository's config and pointers, changed only by compare-and-swap.
    RepoRef(RepoName),
    /// An API token's record, named by the SHA-256 of the secret (the
    /// secret itself is never stored).
    Token(Sha256),
    /// One audit record; ids sort by time.
    Audit { day: String, id: String },
    /// What a mirror target serves (see `MirrorRef::id`).
    MirrorRef(String),
    /// An operation in flight that garbage collection must wait for.
    Lease(String),
    /// Held while garbage collection deletes; operations wait for it.
    SweepLock,
    /// Changed by every garbage collection sweep.
    GcGeneration,
}

fn fan(kind: &str, sha: &Sha256, suffix: &str) -> String {
    let s = sha.as_str();
    format!("{kind}/sha256/{}/{}{suffix}", &s[..2], &s[2..])
}

impl StorageKey {
    /// The object path inside the store.
    pub fn path(&self) -> Path {
        let s = match self {
            StorageKey::Blob(sha) => fan("blobs", sha, ""),
            StorageKey::MetaPack(sha) => fan("metapacks", sha, ""),
            // Flat: a few per publish, gone with gc; a fan-out directory
            // made on the way would cost a publish more than its writes.
            StorageKey::ChunkPack(sha) => format!("chunkpacks/{sha}"),
            StorageKey::SmallPack(sha) => format!("smallpacks/{sha}"),
            StorageKey::ChunkSet(id) => format!("chunksets/{id}"),
            StorageKey::SignedVariant {
                fingerprint,
                source,
            } => format!("signed/{fingerprint}/{source}.json"),
            StorageKey::Revision { repo, id } => format!("revisions/{repo}/{id}"),
            StorageKey::Publication { repo, id } => format!("publications/{repo}/{id}.json"),
            StorageKey::RepoRef(repo) => format!("refs/repos/{repo}.json"),
            StorageKey::Token(sha) => format!("tokens/{sha}.json"),
            StorageKey::Audit { day, id } => format!("audit/{day}/{id}.json"),
            StorageKey::MirrorRef(id) => format!("refs/mirrors/{id}.json"),
            StorageKey::Lease(id) => format!("leases/{id}.json"),
            StorageKey::SweepLock => "gc/sweep.json".to_string(),
            StorageKey::GcGeneration => "gc/generation".to_string(),
        };
        Path::from(s)
    }

    pub fn cache_policy(&self) -> CachePolicy {
        match self {
            StorageKey::RepoRef(_)
            | StorageKey::MirrorRef(_)
            | StorageKey::Lease(_)
            | StorageKey::SweepLock
            | StorageKey::GcGeneration => CachePolicy::Mutable,
            _ => CachePolicy::Immutable,
        }
    }

    /// The prefix under which all repository refs live.
    pub fn repo_refs_prefix() -> Path {
        Path::from("refs/repos")
    }

    /// The prefix under which leases live.
    pub fn leases_prefix() -> Path {
        Path::from("leases")
    }

    /// The prefix under which the audit log lives.
    pub fn audit_prefix() -> Path {
        Path::from("audit")
    }
}

impl Part {
    /// The object the part's bytes are in.
    pub fn key(&self) -> StorageKey {
        match &self.source {
            PartSource::Blob(sha) => StorageKey::Blob(sha.clone()),
            PartSource::Pack(sha) => StorageKey::ChunkPack(sha.clone()),
            PartSource::Small(sha) => StorageKey::SmallPack(sha.clone()),
        }
    }
}
