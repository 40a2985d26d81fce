//! `Repokit`: the store, keyring, limits, clock, grace period and caches
//! the operations share, construction, `acting_as`, and the audit record
//! every mutation appends. The operations are `impl Repokit` blocks in
//! `ops/` (and the shared steps in the other `engine` modules).

use crate::access::{Actor, audit};
use crate::engine::caches::{Cache, ChunkMemo, RevisionCache};
use crate::error::{Error, Result};
use crate::keyring::Keyring;
use crate::limits::Limits;
use crate::model::{FileRef, Publication, RepoRef};
use crate::names::RepoName;
use crate::rpm;
use crate::store::Store;
use crate::time::unix;
use bytes::Bytes;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// Where "now" comes from; injectable so tests can move time.
pub type Clock = Arc<dyn Fn() -> SystemTime + Send + Sync>;

/// How long replaced publications stay reachable at their old paths: longer
/// than dnf's default metadata cache (48 h).
pub const DEFAULT_GRACE: Duration = Duration::from_secs(48 * 3600);

/// How long a test repository lives without a change, unless told.
pub const DEFAULT_TEST_TTL: u64 = 20 * 86_400;

/// How many publication manifests are kept parsed in memory.
pub(crate) const PUBLICATION_CACHE: usize = 64;

/// The repository service. Cheap to clone: clones share the store and caches.
#[derive(Clone)]
pub struct Repokit {
    pub(crate) store: Store,
    pub(crate) keyring: Keyring,
    pub(crate) limits: Limits,
    pub(crate) clock: Clock,
    pub(crate) grace: Duration,
    pub(crate) actor: Actor,
    pub(crate) publications: Cache<Publication>,
    pub(crate) package_files: Cache<HashMap<String, FileRef>>,
    pub(crate) revisions: Arc<Mutex<RevisionCache>>,
    pub(crate) deb_chunks: Arc<Mutex<ChunkMemo<crate::deb::chunk::DebChunk>>>,
    pub(crate) rpm_chunks: Arc<Mutex<ChunkMemo<rpm::repodata::Chunk>>>,
    /// Hash states of index prefixes (see `deb::index::HashMemo`).
    pub(crate) hash_memo: Arc<crate::deb::index::HashMemo>,
    /// The store's gc generation when the chunk memos were last known to
    /// name only stored chunks.
    pub(crate) gc_generation: Arc<Mutex<Option<Bytes>>>,
    /// Per repository, the files of its retired publications by path.
    pub(crate) retired: Arc<Mutex<HashMap<RepoName, Arc<super::retired::RetiredIndex>>>>,
}

impl std::fmt::Debug for Repokit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Repokit")
            .field("store", &self.store)
            .field("keyring", &self.keyring)
            .finish_non_exhaustive()
    }
}

impl Repokit {
    pub fn new(store: Store, keyring: Keyring) -> Self {
        Repokit {
            store,
            keyring,
            limits: Limits::default(),
            clock: Arc::new(SystemTime::now),
            grace: DEFAULT_GRACE,
            actor: Actor::default(),
            publications: Arc::new(Mutex::new(HashMap::new())),
            package_files: Arc::new(Mutex::new(HashMap::new())),
            revisions: Default::default(),
            deb_chunks: Default::default(),
            rpm_chunks: Default::default(),
            hash_memo: Default::default(),
            gc_generation: Default::default(),
            retired: Default::default(),
        }
    }

    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    pub fn with_grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// A handle whose operations are recorded as done by `actor`
    /// (provenance, audit log); shares the store and caches.
    pub fn acting_as(&self, actor: Actor) -> Self {
        Repokit {
            actor,
            ..self.clone()
        }
    }

    pub fn actor(&self) -> &Actor {
        &self.actor
    }

    /// Appends to the audit log, trying three times. The operation has
    /// already happened, so a failure is [`Error::Unaudited`]: the caller
    /// learns that the change stands but is unrecorded.
    pub(crate) async fn record(
        &self,
        action: &str,
        repo: Option<&RepoName>,
        detail: serde_json::Value,
    ) -> Result<()> {
        let mut last = None;
        for pause_ms in [0, 50, 250] {
            if pause_ms > 0 {
                tokio::time::sleep(std::time::Duration::from_millis(pause_ms)).await;
            }
            match audit(
                &self.store,
                self.now_secs(),
                &self.actor,
                action,
                repo,
                detail.clone(),
            )
            .await
            {
                Ok(()) => return Ok(()),
                Err(e) => last = Some(e),
            }
        }
        let source = last.unwrap_or_else(|| Error::Internal("no audit attempt ran".into()));
        tracing::error!(error = %source, ?repo, action, "audit record not written");
        let action = match repo {
            Some(r) => format!("{action} of {r}"),
            None => action.to_string(),
        };
        Err(Error::Unaudited {
            action,
            source: Box::new(source),
        })
    }

    /// Creates an API token (recorded in the audit log), valid for
    /// `lifetime` seconds when given; returns the secret, shown only here,
    /// and the stored record.
    pub async fn create_token(
        &self,
        name: &str,
        scopes: Vec<crate::access::Scope>,
        lifetime: Option<u64>,
    ) -> Result<(String, crate::access::Token)> {
        let now = self.now_secs();
        let expires = lifetime.map(|l| now.saturating_add(l));
        let (secret, token) =
            crate::access::create_token(&self.store, name, scopes, now, expires).await?;
        self.record(
            "token",
            None,
            serde_json::json!({"id": token.id, "name": token.name, "scopes": token.scopes, "expires": token.expires}),
        )
        .await?;
        Ok((secret, token))
    }

    /// Every API token (ids, names, scopes, times; never a secret).
    pub async fn tokens(&self) -> Result<Vec<crate::access::Token>> {
        crate::access::list_tokens(&self.store).await
    }

    /// Revokes the token with this id (recorded in the audit log).
    pub async fn revoke_token(&self, id: &str) -> Result<crate::access::Token> {
        let token = crate::access::revoke_token(&self.store, id).await?;
        self.record(
            "token-revoke",
            None,
            serde_json::json!({"id": token.id, "name": token.name}),
        )
        .await?;
        Ok(token)
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn keyring(&self) -> &Keyring {
        &self.keyring
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    pub fn now(&self) -> SystemTime {
        (self.clock)()
    }

    /// How long replaced publications stay reachable at their live paths.
    pub fn grace(&self) -> Duration {
        self.grace
    }

    pub(crate) fn now_secs(&self) -> u64 {
        unix(self.now())
    }

    pub(crate) async fn repo_ref(&self, name: &RepoName) -> Result<RepoRef> {
        self.store
            .get_ref(name)
            .await?
            .ok_or_else(|| Error::not_found("repository", name.as_str()))
    }
}
