//! A fault-injecting object store for crash-in-the-middle tests.
//!
//! Wraps any object store and fails the Nth write (a put, a copy or the
//! start of a multipart upload) after it is armed, as a backend that dies
//! mid-operation would, or every write under a path prefix. Reads, lists
//! and deletes pass through. Every put
//! that succeeded (a multipart upload once completed) is logged with the
//! SHA-256 of what it wrote, so a test can tell that nothing was written
//! twice.

use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, Result,
};

/// See the module documentation.
#[derive(Debug)]
pub struct FailingStore {
    inner: Arc<dyn ObjectStore>,
    /// 0 = disarmed; otherwise the 1-based write number that fails.
    fail_at: AtomicU64,
    /// Every write from `fail_at` on fails (an outage), not just that one.
    outage: std::sync::atomic::AtomicBool,
    writes: AtomicU64,
    puts: Arc<std::sync::Mutex<Vec<(String, crate::names::Sha256)>>>,
    /// Every write to a path under this prefix fails (a part of the store
    /// that is unwritable), whatever the count.
    fail_under: std::sync::Mutex<Option<String>>,
}

impl FailingStore {
    pub fn new(inner: Arc<dyn ObjectStore>) -> Self {
        FailingStore {
            inner,
            fail_at: AtomicU64::new(0),
            outage: Default::default(),
            writes: AtomicU64::new(0),
            puts: Default::default(),
            fail_under: Default::default(),
        }
    }

    /// Fails the `n`th write from now on (1-based); 0 disarms.
    pub fn fail_nth_write(&self, n: u64) {
        self.writes.store(0, Ordering::SeqCst);
        self.outage.store(false, Ordering::SeqCst);
        self.fail_at.store(n, Ordering::SeqCst);
    }

    /// Fails the `n`th write from now on and every write after it.
    pub fn fail_from_nth_write(&self, n: u64) {
        self.fail_nth_write(n);
        self.outage.store(n > 0, Ordering::SeqCst);
    }

    /// Fails every write to a path under `prefix` (`None` disarms).
    pub fn fail_writes_under(&self, prefix: Option<&str>) {
        if let Ok(mut p) = self.fail_under.lock() {
            *p = prefix.map(str::to_string);
        }
    }

    /// Writes seen since the last `fail_nth_write`.
    pub fn writes(&self) -> u64 {
        self.writes.load(Ordering::SeqCst)
    }

    /// Every successful put so far: the path and the SHA-256 of its bytes.
    pub fn puts(&self) -> Vec<(String, crate::names::Sha256)> {
        self.puts.lock().map(|p| p.clone()).unwrap_or_default()
    }

    fn check(&self, location: &Path) -> Result<()> {
        if let Ok(p) = self.fail_under.lock()
            && let Some(prefix) = p.as_deref()
            && location.as_ref().starts_with(prefix)
        {
            return Err(object_store::Error::Generic {
                store: "FailingStore",
                source: format!("injected failure under {prefix} ({location})").into(),
            });
        }
        let n = self.writes.fetch_add(1, Ordering::SeqCst) + 1;
        let at = self.fail_at.load(Ordering::SeqCst);
        if at == n || (at != 0 && n > at && self.outage.load(Ordering::SeqCst)) {
            return Err(object_store::Error::Generic {
                store: "FailingStore",
                source: format!("injected failure on write {n} ({location})").into(),
            });
        }
        Ok(())
    }
}

/// A multipart upload that, once completed, is in the log of puts like a
/// single put (the SHA-256 of its parts in the order they were given).
#[derive(Debug)]
struct LoggedUpload {
    inner: Box<dyn MultipartUpload>,
    location: String,
    hash: sha2::Sha256,
    puts: Arc<std::sync::Mutex<Vec<(String, crate::names::Sha256)>>>,
}

#[async_trait]
impl MultipartUpload for LoggedUpload {
    fn put_part(&mut self, data: PutPayload) -> object_store::UploadPart {
        use sha2::Digest;
        for chunk in &data {
            self.hash.update(chunk);
        }
        self.inner.put_part(data)
    }

    async fn complete(&mut self) -> Result<PutResult> {
        use sha2::Digest;
        let r = self.inner.complete().await?;
        let sha = crate::names::Sha256::from_digest(&std::mem::take(&mut self.hash).finalize());
        if let Ok(mut puts) = self.puts.lock() {
            puts.push((self.location.clone(), sha));
        }
        Ok(r)
    }

    async fn abort(&mut self) -> Result<()> {
        self.inner.abort().await
    }
}

impl std::fmt::Display for FailingStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FailingStore({})", self.inner)
    }
}

#[async_trait]
impl ObjectStore for FailingStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Result<PutResult> {
        self.check(location)?;
        let sha = {
            use sha2::Digest;
            let mut h = sha2::Sha256::new();
            for chunk in &payload {
                h.update(chunk);
            }
            crate::names::Sha256::from_digest(&h.finalize())
        };
        let r = self.inner.put_opts(location, payload, opts).await?;
        if let Ok(mut puts) = self.puts.lock() {
            puts.push((location.to_string(), sha));
        }
        Ok(r)
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        self.check(location)?;
        let inner = self.inner.put_multipart_opts(location, opts).await?;
        Ok(Box::new(LoggedUpload {
            inner,
            location: location.to_string(),
            hash: Default::default(),
            puts: self.puts.clone(),
        }))
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        self.inner.get_opts(location, options).await
    }

    async fn get_ranges(&self, location: &Path, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        self.inner.get_ranges(location, ranges).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        self.check(to)?;
        self.inner.copy_opts(from, to, options).await
    }
}
