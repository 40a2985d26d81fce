//! Who may do what, and the record of what was done: API tokens (stored
//! by the SHA-256 of their secret, never the secret) and the append-only
//! audit log.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::names::{RepoName, Sha256};
use crate::store::{StorageKey, Store};
use crate::time::compact_utc;

/// What a token may do. `admin` implies every other scope; every scope
/// implies `read`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Scope {
    /// Read the API (when reads are not public).
    #[serde(rename = "read")]
    Read,
    /// Create, fill, publish and delete test and composite repositories.
    #[serde(rename = "publish:test")]
    PublishTest,
    /// Promote into, publish, roll back and remove from stable repositories.
    #[serde(rename = "publish:stable")]
    PublishStable,
    /// Everything, including creating and deleting stable repositories.
    #[serde(rename = "admin")]
    Admin,
}

impl Scope {
    pub const ALL: [Scope; 4] = [
        Scope::Read,
        Scope::PublishTest,
        Scope::PublishStable,
        Scope::Admin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::PublishTest => "publish:test",
            Scope::PublishStable => "publish:stable",
            Scope::Admin => "admin",
        }
    }
}

impl std::str::FromStr for Scope {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Scope::ALL
            .into_iter()
            .find(|x| x.as_str() == s)
            .ok_or_else(|| {
                Error::InvalidInput(format!(
                    "unknown scope {s:?} (read, publish:test, publish:stable or admin)"
                ))
            })
    }
}

/// What a caller does to a repository, as the scope policy sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RepoAction {
    Create,
    /// Upload, remove, publish, promote into, roll back, sync.
    Change,
    Delete,
}

/// The scope policy, in one table every front end applies: the scope an
/// `action` on a repository of `role` needs. Test and composite
/// repositories are CI's (`publish:test`); stable ones take changes from
/// `publish:stable` and are created and deleted by `admin` only.
pub fn required_scope(action: RepoAction, role: crate::model::Role) -> Scope {
    use crate::model::Role;
    match (action, role) {
        (RepoAction::Create | RepoAction::Delete, Role::Stable) => Scope::Admin,
        (_, Role::Stable) => Scope::PublishStable,
        (_, Role::Test | Role::Composite) => Scope::PublishTest,
    }
}

/// The scope creating a repository of `role` needs when it signs with a
/// key that a stable repository signs with (`release_key`): a release key
/// signs only what a release manager may, so a test or composite repository
/// signing with it needs `publish:stable`, not `publish:test` (whose
/// packages would otherwise come out signed by the release key).
pub fn required_scope_to_create(role: crate::model::Role, release_key: bool) -> Scope {
    match required_scope(RepoAction::Create, role) {
        Scope::PublishTest if release_key => Scope::PublishStable,
        s => s,
    }
}

/// A stored token: `tokens/<sha256 of the secret>.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Token {
    /// Public id (a prefix of the secret's hash): what provenance and the
    /// audit log record.
    pub id: String,
    pub name: String,
    pub scopes: Vec<Scope>,
    /// Unix seconds.
    pub created: u64,
    /// Unix seconds after which the token is refused; none: until revoked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<u64>,
}

impl Token {
    /// Whether the token is still valid at `now` (unix seconds).
    pub fn is_live(&self, now: u64) -> bool {
        self.expires.is_none_or(|e| now < e)
    }

    /// Whether the token grants `scope`.
    pub fn allows(&self, scope: Scope) -> bool {
        self.scopes
            .iter()
            .any(|&s| s == scope || s == Scope::Admin || scope == Scope::Read)
    }
}

/// Secrets are `rk_` and 64 hex digits; anything else is not a token.
fn check_secret(secret: &str) -> Option<Sha256> {
    let hex = secret.strip_prefix("rk_")?;
    (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| Sha256::of(secret.as_bytes()))
}

/// Creates a token; returns the secret (shown once) and its record.
/// `expires` is the unix second after which it is refused, if any.
pub async fn create_token(
    store: &Store,
    name: &str,
    scopes: Vec<Scope>,
    now: u64,
    expires: Option<u64>,
) -> Result<(String, Token)> {
    if expires.is_some_and(|e| e <= now) {
        return Err(Error::InvalidInput(
            "a token must expire in the future".into(),
        ));
    }
    let secret = format!("rk_{}", crate::names::random_hex(32)?);
    let token = store_token(store, &secret, name, scopes, now, expires).await?;
    Ok((secret, token))
}

/// Stores a token with a given secret (e.g. `REPOKIT_ADMIN_TOKEN`);
/// idempotent.
pub async fn seed_token(
    store: &Store,
    secret: &str,
    name: &str,
    scopes: Vec<Scope>,
    now: u64,
) -> Result<Token> {
    store_token(store, secret, name, scopes, now, None).await
}

async fn store_token(
    store: &Store,
    secret: &str,
    name: &str,
    mut scopes: Vec<Scope>,
    now: u64,
    expires: Option<u64>,
) -> Result<Token> {
    let hash = check_secret(secret).ok_or_else(|| {
        Error::InvalidInput("a token is \"rk_\" followed by 64 hex digits".into())
    })?;
    if scopes.is_empty() {
        return Err(Error::InvalidInput(
            "a token needs at least one scope".into(),
        ));
    }
    scopes.sort();
    scopes.dedup();
    let key = StorageKey::Token(hash.clone());
    if let Some(existing) = store.get_json::<Token>(&key).await? {
        return Ok(existing);
    }
    let token = Token {
        id: hash.as_str()[..12].to_string(),
        name: name.to_string(),
        scopes,
        created: now,
        expires,
    };
    store.put_json_immutable(&key, &token).await?;
    Ok(token)
}

/// Every token (never a secret: the store has none), oldest first.
pub async fn list_tokens(store: &Store) -> Result<Vec<Token>> {
    let mut out = Vec::new();
    for o in store.list_objects("tokens/").await? {
        let data = store.get_path_bytes(&o.path).await?;
        out.push(
            serde_json::from_slice::<Token>(&data).map_err(|e| Error::Corrupt {
                key: o.path.clone(),
                reason: e.to_string(),
            })?,
        );
    }
    out.sort_by(|a, b| (a.created, &a.id).cmp(&(b.created, &b.id)));
    Ok(out)
}

/// Deletes the token with this id; it is refused from then on (by a
/// server that cached it, within [`TOKEN_REVALIDATE`]).
pub async fn revoke_token(store: &Store, id: &str) -> Result<Token> {
    for o in store.list_objects("tokens/").await? {
        let data = store.get_path_bytes(&o.path).await?;
        let Ok(token) = serde_json::from_slice::<Token>(&data) else {
            continue;
        };
        if token.id == id {
            store.delete_paths(vec![o.path]).await?;
            return Ok(token);
        }
    }
    Err(Error::not_found("token", id))
}

/// The token a secret names, if any.
pub async fn authenticate(store: &Store, secret: &str, now: u64) -> Result<Option<Token>> {
    let token: Option<Token> = match check_secret(secret) {
        Some(hash) => store.get_json(&StorageKey::Token(hash)).await?,
        None => None,
    };
    Ok(token.filter(|t| t.is_live(now)))
}

/// Known tokens by the SHA-256 of their secret, each with when it was read:
/// a server looks a token up again once it is older than
/// [`TOKEN_REVALIDATE`], so a revocation reaches every server sharing the
/// store within that bound. Unknown secrets are not remembered (the token
/// may be created later).
#[derive(Debug, Clone, Default)]
pub struct TokenCache(
    std::sync::Arc<
        std::sync::Mutex<std::collections::HashMap<Sha256, (Token, std::time::Instant)>>,
    >,
);

/// How many tokens a [`TokenCache`] holds before it starts over.
const TOKEN_CACHE: usize = 4096;

/// How long a cached token is used before it is read from the store again.
pub const TOKEN_REVALIDATE: std::time::Duration = std::time::Duration::from_secs(30);

impl TokenCache {
    /// The token of `secret` if it was read less than [`TOKEN_REVALIDATE`]
    /// ago and is live at `now`.
    pub fn cached(&self, secret: &str, now: u64) -> Option<Token> {
        let hash = check_secret(secret)?;
        let m = self.0.lock().ok()?;
        let (t, read) = m.get(&hash)?;
        (read.elapsed() < TOKEN_REVALIDATE && t.is_live(now)).then(|| t.clone())
    }

    /// Drops the token with this id (revoked here: refused at once).
    pub fn forget(&self, id: &str) {
        if let Ok(mut m) = self.0.lock() {
            m.retain(|_, (t, _)| t.id != id);
        }
    }

    /// [`authenticate`], from memory for a token read recently.
    pub async fn authenticate(
        &self,
        store: &Store,
        secret: &str,
        now: u64,
    ) -> Result<Option<Token>> {
        if let Some(t) = self.cached(secret, now) {
            return Ok(Some(t));
        }
        let Some(hash) = check_secret(secret) else {
            return Ok(None);
        };
        let token = authenticate(store, secret, now).await?;
        if let Ok(mut m) = self.0.lock() {
            match &token {
                Some(t) => {
                    if m.len() >= TOKEN_CACHE {
                        m.clear();
                    }
                    m.insert(hash, (t.clone(), std::time::Instant::now()));
                }
                None => {
                    m.remove(&hash);
                }
            }
        }
        Ok(token)
    }
}

/// Who performs an operation: recorded in provenance and the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// Token id, or `-` for the command line.
    pub token: String,
    /// Token name, or `cli`.
    pub name: String,
}

impl Default for Actor {
    fn default() -> Self {
        Actor {
            token: "-".into(),
            name: "cli".into(),
        }
    }
}

impl From<&Token> for Actor {
    fn from(t: &Token) -> Self {
        Actor {
            token: t.id.clone(),
            name: t.name.clone(),
        }
    }
}

/// One audit record: `audit/<day>/<id>.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// `<compact UTC time>-<random>`: sorts by time.
    pub id: String,
    /// Unix seconds.
    pub at: u64,
    pub actor: Actor,
    /// `create`, `delete`, `add`, `remove`, `publish`, `promote`,
    /// `rollback`, `expire`, `token`.
    pub action: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repo: Option<RepoName>,
    /// What changed (packages, revision, publication).
    pub detail: serde_json::Value,
}

/// Appends a record to the audit log.
pub async fn audit(
    store: &Store,
    at: u64,
    actor: &Actor,
    action: &str,
    repo: Option<&RepoName>,
    detail: serde_json::Value,
) -> Result<()> {
    let stamp = compact_utc(at);
    let id = format!("{stamp}-{}", crate::names::random_hex(6)?);
    let record = AuditRecord {
        id: id.clone(),
        at,
        actor: actor.clone(),
        action: action.to_string(),
        repo: repo.cloned(),
        detail,
    };
    let key = StorageKey::Audit {
        day: stamp[..8].to_string(),
        id,
    };
    store.put_json_immutable(&key, &record).await
}

/// The newest `limit` audit records (newest first), optionally of one
/// repository.
pub async fn audit_log(
    store: &Store,
    repo: Option<&RepoName>,
    limit: usize,
) -> Result<Vec<AuditRecord>> {
    let paths = store.list_paths(&StorageKey::audit_prefix()).await?;
    let mut out = Vec::new();
    for path in paths.iter().rev() {
        if out.len() >= limit {
            break;
        }
        let data = store.get_path_bytes(path).await?;
        let record: AuditRecord = serde_json::from_slice(&data).map_err(|e| Error::Corrupt {
            key: path.clone(),
            reason: e.to_string(),
        })?;
        if repo.is_none_or(|r| record.repo.as_ref() == Some(r)) {
            out.push(record);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An expired token is refused; a revoked one is gone; the list shows
    /// ids, names and scopes, never a secret.
    #[tokio::test]
    async fn tokens_expire_and_are_revoked() -> Result<()> {
        let store = Store::memory();
        let (s1, t1) = create_token(&store, "short", vec![Scope::Read], 10, Some(20)).await?;
        let (s2, t2) = create_token(&store, "long", vec![Scope::Admin], 11, None).await?;
        assert!(
            create_token(&store, "past", vec![Scope::Read], 10, Some(10))
                .await
                .is_err()
        );
        assert_eq!(authenticate(&store, &s1, 19).await?, Some(t1.clone()));
        assert_eq!(authenticate(&store, &s1, 20).await?, None, "expired");
        let cache = TokenCache::default();
        assert_eq!(cache.authenticate(&store, &s2, 12).await?, Some(t2.clone()));
        let listed = list_tokens(&store).await?;
        assert_eq!(listed, vec![t1.clone(), t2.clone()]);
        assert_eq!(revoke_token(&store, &t2.id).await?, t2);
        assert_eq!(authenticate(&store, &s2, 12).await?, None, "revoked");
        assert!(revoke_token(&store, &t2.id).await.is_err());
        assert_eq!(list_tokens(&store).await?, vec![t1]);
        Ok(())
    }

    #[tokio::test]
    async fn tokens_are_found_by_secret_only() -> Result<()> {
        let store = Store::memory();
        let (secret, token) = create_token(&store, "ci", vec![Scope::PublishTest], 5, None).await?;
        assert_eq!(authenticate(&store, &secret, 6).await?, Some(token.clone()));
        assert!(token.allows(Scope::Read) && token.allows(Scope::PublishTest));
        assert!(!token.allows(Scope::PublishStable) && !token.allows(Scope::Admin));
        let other = format!("rk_{}", "0".repeat(64));
        assert_eq!(authenticate(&store, &other, 6).await?, None);
        assert_eq!(authenticate(&store, "not a token", 6).await?, None);
        // The secret is not stored anywhere.
        for path in store
            .list_paths(&object_store::path::Path::from(""))
            .await?
        {
            let data = store.get_path_bytes(&path).await?;
            assert!(!String::from_utf8_lossy(&data).contains(&secret[3..]));
        }
        Ok(())
    }

    #[tokio::test]
    async fn audit_log_is_newest_first_and_filters_by_repo() -> Result<()> {
        let store = Store::memory();
        let a = RepoName::new("a")?;
        let b = RepoName::new("b")?;
        let actor = Actor::default();
        for (at, repo) in [(100, &a), (200, &b), (300, &a)] {
            audit(&store, at, &actor, "add", Some(repo), serde_json::json!({})).await?;
        }
        let all = audit_log(&store, None, 10).await?;
        assert_eq!(
            all.iter().map(|r| r.at).collect::<Vec<_>>(),
            [300, 200, 100]
        );
        let only_a = audit_log(&store, Some(&a), 10).await?;
        assert_eq!(only_a.iter().map(|r| r.at).collect::<Vec<_>>(), [300, 100]);
        assert_eq!(audit_log(&store, None, 1).await?.len(), 1);
        Ok(())
    }
}

#[cfg(test)]
mod policy_tests {
    use super::*;
    use crate::model::Role;

    /// The policy table as ARCHITECTURE.md and docs/API.md state it.
    #[test]
    fn required_scopes_are_the_documented_table() {
        use RepoAction::*;
        for (action, role, scope) in [
            (Create, Role::Test, Scope::PublishTest),
            (Change, Role::Test, Scope::PublishTest),
            (Delete, Role::Test, Scope::PublishTest),
            (Create, Role::Composite, Scope::PublishTest),
            (Change, Role::Composite, Scope::PublishTest),
            (Delete, Role::Composite, Scope::PublishTest),
            (Create, Role::Stable, Scope::Admin),
            (Change, Role::Stable, Scope::PublishStable),
            (Delete, Role::Stable, Scope::Admin),
        ] {
            assert_eq!(required_scope(action, role), scope, "{action:?} {role:?}");
        }
    }
}
