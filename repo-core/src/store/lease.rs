//! Leases: how operations that may reuse stored objects keep garbage
//! collection's sweep away while they run, and how the sweep waits for them.
//!
//! On a local directory both are `flock`s on `.locks/gc.lock`: operations
//! take it shared, the sweep exclusive. On a bucket (shared by several
//! servers) an operation writes `leases/<random>.json` and then looks for
//! `gc/sweep.json`; if the sweep holds the store it withdraws and waits. The
//! sweep writes `gc/sweep.json` first (create-if-absent) and then waits
//! until no lease is left. Either an operation's lease is listed by the
//! sweep (which then waits for it), or the operation sees the sweep's marker
//! (and waits for the sweep): they never overlap. Leases and markers of
//! crashed processes expire.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::StreamExt;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, UpdateVersion};

use super::{CasMode, StorageKey, Store};
use crate::error::{Error, Result};

/// A lease older than this belongs to a process that died.
const LEASE_TTL: Duration = Duration::from_secs(3600);
/// A sweep marker older than this belongs to a collector that died.
const SWEEP_TTL: Duration = Duration::from_secs(900);
/// How often a waiting side looks again.
const POLL: Duration = Duration::from_millis(200);

/// Held by an operation while it runs (see the module docs).
#[derive(Debug)]
pub struct Lease(Hold);

/// Held by garbage collection while it deletes.
#[derive(Debug)]
pub struct SweepLock(Hold);

#[derive(Debug)]
enum Hold {
    /// The open, locked lock file.
    File(
        #[expect(
            dead_code,
            reason = "never read: held so the lock lasts until the drop"
        )]
        std::fs::File,
    ),
    Object(Option<(Arc<dyn ObjectStore>, object_store::path::Path)>),
}

impl Hold {
    async fn release(mut self) {
        if let Hold::Object(held) = &mut self
            && let Some((os, path)) = held.take()
        {
            let _ = os.delete(&path).await;
        }
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        // Dropped without `release` (an early return): delete in the
        // background; an object left behind expires anyway.
        if let Hold::Object(held) = self
            && let Some((os, path)) = held.take()
            && let Ok(rt) = tokio::runtime::Handle::try_current()
        {
            rt.spawn(async move {
                let _ = os.delete(&path).await;
            });
        }
    }
}

impl Lease {
    pub async fn release(self) {
        self.0.release().await
    }
}

impl SweepLock {
    pub async fn release(self) {
        self.0.release().await
    }
}

/// How long ago an object was written.
fn age(modified: SystemTime) -> Duration {
    SystemTime::now()
        .duration_since(modified)
        .unwrap_or_default()
}

fn flock(dir: &std::path::Path, exclusive: bool) -> std::io::Result<std::fs::File> {
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join("gc.lock"))?;
    if exclusive {
        f.lock()?;
    } else {
        f.lock_shared()?;
    }
    Ok(f)
}

impl Store {
    /// Takes a lease for an operation that may reuse stored objects.
    pub async fn lease(&self) -> Result<Lease> {
        if let CasMode::LockDir(dir) = &self.cas {
            let dir = dir.clone();
            return Ok(Lease(Hold::File(blocking_lock(dir, false).await?)));
        }
        let waited_since = SystemTime::now();
        loop {
            let id = crate::names::random_hex(12)?;
            let path = StorageKey::Lease(id).path();
            self.os.put(&path, PutPayload::from_static(b"{}")).await?;
            let held = Hold::Object(Some((self.os.clone(), path)));
            if !self.sweeping().await? {
                return Ok(Lease(held));
            }
            held.release().await;
            if waited_since.elapsed().unwrap_or_default() > SWEEP_TTL {
                return Err(Error::Conflict(
                    "garbage collection has held the store too long".into(),
                ));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Whether garbage collection is sweeping (its marker is there and
    /// not expired).
    async fn sweeping(&self) -> Result<bool> {
        match self.os.head(&StorageKey::SweepLock.path()).await {
            Ok(meta) => Ok(age(meta.last_modified.into()) < SWEEP_TTL),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Takes the sweep lock: waits until no operation holds a lease, and
    /// holds new ones back until released. `Conflict` if another
    /// collector holds it.
    pub async fn sweep_lock(&self) -> Result<SweepLock> {
        if let CasMode::LockDir(dir) = &self.cas {
            let dir = dir.clone();
            return Ok(SweepLock(Hold::File(blocking_lock(dir, true).await?)));
        }
        let path = StorageKey::SweepLock.path();
        let mode = match self.os.head(&path).await {
            Ok(meta) if age(meta.last_modified.into()) < SWEEP_TTL => {
                return Err(Error::Conflict(
                    "another garbage collection is sweeping".into(),
                ));
            }
            Ok(meta) => PutMode::Update(UpdateVersion {
                e_tag: meta.e_tag,
                version: meta.version,
            }),
            Err(object_store::Error::NotFound { .. }) => PutMode::Create,
            Err(e) => return Err(e.into()),
        };
        let opts = PutOptions {
            mode,
            ..Default::default()
        };
        match self
            .os
            .put_opts(&path, PutPayload::from_static(b"{}"), opts)
            .await
        {
            Ok(_) => {}
            Err(
                object_store::Error::AlreadyExists { .. }
                | object_store::Error::Precondition { .. },
            ) => {
                return Err(Error::Conflict(
                    "another garbage collection is sweeping".into(),
                ));
            }
            Err(e) => return Err(e.into()),
        }
        let held = SweepLock(Hold::Object(Some((self.os.clone(), path))));
        let since = SystemTime::now();
        loop {
            let mut live = 0;
            let mut listing = self.os.list(Some(&StorageKey::leases_prefix()));
            while let Some(meta) = listing.next().await {
                let meta = meta?;
                if age(meta.last_modified.into()) < LEASE_TTL {
                    live += 1;
                }
            }
            if live == 0 {
                return Ok(held);
            }
            if since.elapsed().unwrap_or_default() > LEASE_TTL {
                held.release().await;
                return Err(Error::Conflict(
                    "operations kept their leases too long".into(),
                ));
            }
            tokio::time::sleep(POLL).await;
        }
    }
}

async fn blocking_lock(dir: std::path::PathBuf, exclusive: bool) -> Result<std::fs::File> {
    tokio::task::spawn_blocking(move || flock(&dir, exclusive))
        .await
        .map_err(Error::internal)?
        .map_err(Error::from)
}
