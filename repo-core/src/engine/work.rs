//! Parallel work and deferred frees, shared by the operations: a scoped
//! thread pool over a slice, a blocking section for async callers, and
//! dropping large values on a background thread. Knows no format.

use crate::error::{Error, Result};
use std::sync::Mutex;

/// The number of cores, asked once (the answer reads cgroup files).
pub(crate) fn cores() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    })
}

/// Drops `v` on a background thread: a parsed revision of a large
/// repository is tens of thousands of allocations to free, which a
/// request should not wait for.
pub(crate) fn drop_later<T: Send + 'static>(v: T) {
    type Junk = Box<dyn Send>;
    static BIN: std::sync::OnceLock<Mutex<std::sync::mpsc::Sender<Junk>>> =
        std::sync::OnceLock::new();
    let bin = BIN.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel::<Junk>();
        let spawned = std::thread::Builder::new()
            .name("repokit-drop".into())
            .spawn(move || {
                for junk in rx {
                    drop(junk)
                }
            });
        if spawned.is_err() {
            tracing::warn!("no background thread for freeing memory");
        }
        Mutex::new(tx)
    });
    if let Ok(tx) = bin.lock() {
        // If the thread is gone the value comes back and drops here.
        let _ = tx.send(Box::new(v));
    }
}

/// Runs `f` over `items` on one thread per core; the first error wins and
/// stops the remaining work.
pub(crate) fn parallel_map<T: Sync, R: Send>(
    items: &[T],
    f: impl Fn(&T) -> Result<R> + Sync,
) -> Result<Vec<R>> {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let threads = cores().min(items.len()).max(1);
    if threads == 1 {
        // One item (an upload, a one-chunk change): no thread to start.
        return items.iter().map(f).collect();
    }
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let slots: Vec<Mutex<Option<Result<R>>>> = items.iter().map(|_| Mutex::new(None)).collect();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= items.len() || failed.load(Ordering::Relaxed) {
                        break;
                    }
                    let r = f(&items[i]);
                    if r.is_err() {
                        failed.store(true, Ordering::Relaxed);
                    }
                    if let Ok(mut slot) = slots[i].lock() {
                        *slot = Some(r);
                    }
                }
            });
        }
    });
    let mut out = Vec::with_capacity(items.len());
    let mut first_err = None;
    for slot in slots {
        match slot.into_inner().ok().flatten() {
            Some(Ok(r)) => out.push(r),
            Some(Err(e)) => {
                first_err.get_or_insert(e);
            }
            None => {}
        }
    }
    match first_err {
        Some(e) => Err(e),
        None if out.len() == items.len() => Ok(out),
        None => Err(Error::internal("a worker thread panicked")),
    }
}

pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(Error::internal)?
}
