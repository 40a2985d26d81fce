//! The C ABI of repokit, for in-process callers such as Python tooling.
//!
//! Conventions (those of rustls-ffi):
//! - every exported function body runs inside a panic boundary: a panic
//!   becomes `REPOKIT_PANIC`, never an unwind into C;
//! - fallible functions return a `repokit_status` with stable codes; out
//!   parameters are written only on success;
//! - every pointer is checked for NULL (`REPOKIT_NULL_PARAMETER`);
//! - `repokit_store` is an opaque handle made by `repokit_store_open` and
//!   released by `repokit_store_free` (`free(NULL)` is a no-op); strings the
//!   library returns are released with `repokit_string_free`;
//! - the message of the last failed call on the calling thread is copied
//!   out by `repokit_last_error`.
//!
//! Thread safety: a `repokit_store` may be used from several threads at
//! once; each call blocks its thread until the operation is done. Error
//! messages are per thread.
//!
//! Lists and reports are returned as JSON text (the same shapes as the
//! command line's `--json` output). This crate does no repository work of
//! its own: each function parses its arguments, calls one repo-core or
//! repo-sync operation and maps the result.
#![allow(unsafe_code)] // exporting C symbols and reading C pointers
#![allow(non_camel_case_types)] // C names: repokit_status, repokit_store

use std::ffi::{CStr, CString, c_char};
use std::path::PathBuf;
use std::sync::Arc;

use repo_core::Repokit;
use repo_core::keyring::Keyring;
use repo_core::names::KeyName;
use repo_core::repos::{CreateRepo, NoProgress, Promote, Upload};
use repo_core::store::Store;

/// The outcome of a call. Codes are stable; new ones are only added.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum repokit_status {
    REPOKIT_OK = 0,
    /// A malformed argument (name, path, JSON, UTF-8).
    REPOKIT_INVALID_INPUT = 1,
    /// A package file that cannot be indexed.
    REPOKIT_INVALID_PACKAGE = 2,
    REPOKIT_NOT_FOUND = 3,
    /// The request contradicts what is stored (a name taken, other bytes).
    REPOKIT_CONFLICT = 4,
    /// Not allowed here (e.g. adding to a stable repository).
    REPOKIT_FORBIDDEN = 5,
    REPOKIT_LIMIT_EXCEEDED = 6,
    REPOKIT_SIGNING = 7,
    REPOKIT_STORAGE = 8,
    REPOKIT_IO = 9,
    REPOKIT_CORRUPT = 10,
    /// A required pointer argument was NULL.
    REPOKIT_NULL_PARAMETER = 11,
    /// The library panicked; the handle may be used again, the operation
    /// did not complete.
    REPOKIT_PANIC = 12,
    /// An error without a more specific code.
    REPOKIT_OTHER = 13,
    /// An invariant of repokit's own broke (a bug); the operation did not
    /// complete.
    REPOKIT_INTERNAL = 14,
}

use repokit_status::*;

mod marshal;
use marshal::*;

/// An open store: repository operations on one data directory.
///
/// Thread safety: one handle may be used by several threads at once (each
/// call blocks its thread until the operation is done); it must not be
/// freed while another thread uses it. Error messages
/// (`repokit_last_error`) are kept per thread.
pub struct repokit_store {
    kit: Repokit,
    rt: tokio::runtime::Runtime,
}

/// The library version as a NUL-terminated string with static lifetime;
/// the caller must not free it. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn repokit_version() -> *const c_char {
    static VERSION: &CStr =
        match CStr::from_bytes_with_nul(concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes()) {
            Ok(v) => v,
            Err(_) => c"unknown",
        };
    VERSION.as_ptr()
}

/// Copies the message of the last failed call on this thread (empty after
/// a success) into `buf` (at most `len` bytes including the NUL; truncated
/// if longer) and writes its full length (without NUL) to `out_n`.
///
/// # Safety
/// `buf` points to `len` writable bytes (or is NULL with `len` 0); `out_n`
/// is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn repokit_last_error(buf: *mut c_char, len: usize, out_n: *mut usize) {
    let _ = std::panic::catch_unwind(|| {
        LAST_ERROR.with(|e| {
            let e = e.borrow();
            let bytes = e.as_bytes();
            if !buf.is_null() && len > 0 {
                let n = bytes.len().min(len - 1);
                // SAFETY: `buf` has `len` bytes; we write n + 1 <= len.
                unsafe {
                    std::ptr::copy_nonoverlapping(bytes.as_ptr().cast::<c_char>(), buf, n);
                    *buf.add(n) = 0;
                }
            }
            if !out_n.is_null() {
                // SAFETY: writable per contract.
                unsafe { *out_n = bytes.len() };
            }
        })
    });
}

/// Frees a string the library returned. NULL is a no-op.
///
/// # Safety
/// `s` is NULL or a string from this library, not yet freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn repokit_string_free(s: *mut c_char) {
    if !s.is_null() {
        let _ = std::panic::catch_unwind(|| {
            // SAFETY: made by CString::into_raw in `give`, freed once.
            drop(unsafe { CString::from_raw(s) });
        });
    }
}

/// Opens a store: a local directory (created if needed; its signing keys
/// in `location/keys`), or a bucket, `s3://BUCKET[/PREFIX][?endpoint=URL]`
/// with credentials from the `AWS_*` environment variables, whose keyring
/// and staging area are in `$REPOKIT_DATA` (default `./repokit-data`), as
/// for the command line. On success writes a handle to `out`, to be
/// released with `repokit_store_free`.
///
/// # Safety
/// `location` is a C string; `out` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn repokit_store_open(
    location: *const c_char,
    out: *mut *mut repokit_store,
) -> repokit_status {
    // SAFETY: forwarded contract; a NULL local directory means the default.
    unsafe { repokit_store_open_at(location, std::ptr::null(), out) }
}

/// As `repokit_store_open`, with the local directory of a bucket store
/// (keyring, staged uploads) given: `local_dir` may be NULL (the default);
/// it must be NULL for a local store, whose directory is `location`.
///
/// # Safety
/// `location` is a C string; `local_dir` is NULL or a C string; `out` is
/// writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn repokit_store_open_at(
    location: *const c_char,
    local_dir: *const c_char,
    out: *mut *mut repokit_store,
) -> repokit_status {
    boundary(|| {
        // SAFETY: per the function's contract.
        let (location, local_dir) = unsafe { (text(location)?, opt_text(local_dir)?) };
        if out.is_null() {
            return Err(null());
        }
        let (store, keys) = if location.starts_with("s3://") {
            let local = match local_dir {
                Some(d) => PathBuf::from(d),
                None => std::env::var_os("REPOKIT_DATA")
                    .map(PathBuf::from)
                    .unwrap_or_else(|| PathBuf::from("./repokit-data")),
            };
            let bucket = repo_core::store::BucketUrl::parse(location)?;
            (Store::s3(&bucket, &local.join(".tmp"))?, local.join("keys"))
        } else if location.contains("://") {
            return Err(Failure(
                REPOKIT_INVALID_INPUT,
                format!("{location}: a store is a local directory or s3://BUCKET[/PREFIX]"),
            ));
        } else if local_dir.is_some() {
            return Err(Failure(
                REPOKIT_INVALID_INPUT,
                "a local store keeps everything in its own directory: pass NULL".into(),
            ));
        } else {
            let dir = PathBuf::from(location);
            (Store::local(&dir)?, dir.join("keys"))
        };
        let kit = Repokit::new(store, Keyring::new(keys));
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| Failure(REPOKIT_IO, e.to_string()))?;
        let handle = Box::new(repokit_store { kit, rt });
        // SAFETY: `out` is writable (checked non-NULL).
        unsafe { *out = Box::into_raw(handle) };
        Ok(())
    })
}

/// Releases a store handle. NULL is a no-op.
///
/// # Safety
/// `store` is NULL or a handle from `repokit_store_open` not yet freed, and
/// no other thread is using it.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn repokit_store_free(store: *mut repokit_store) {
    if store.is_null() {
        return;
    }
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        // SAFETY: made by Box::into_raw in repokit_store_open, freed once.
        let s = unsafe { Box::from_raw(store) };
        let repokit_store { kit, rt } = *s;
        drop(kit);
        rt.shutdown_timeout(std::time::Duration::from_secs(10));
    }));
}

/// Generates a signing key `name` (`algo`: "rsa4096" or "ed25519"; NULL
/// means rsa4096) with user ID `uid`; writes its description as JSON
/// (`{"name", "fingerprint", ...}`) to `out_json`.
///
/// # Safety
/// `store` is a live handle; `name`, `uid` are C strings; `algo` is NULL or
/// a C string; `out_json` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn repokit_key_generate(
    store: *const repokit_store,
    name: *const c_char,
    uid: *const c_char,
    algo: *const c_char,
    out_json: *mut *mut c_char,
) -> repokit_status {
    // SAFETY: the pointers are valid per the function's contract.
    unsafe {
        respond(out_json, || {
            let (s, name, uid, algo) = (handle(store)?, text(name)?, text(uid)?, opt_text(algo)?);
            let algo = algo.unwrap_or("rsa4096").parse()?;
            let info = s
                .kit
                .keyring()
                .generate(&KeyName::new(name)?, uid, algo, s.kit.now())?;
            Ok(info)
        })
    }
}

/// Writes the armored public key of `name` to `out`.
///
/// # Safety
/// `store` is a live handle; `name` a C string; `out` writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn repokit_key_export(
    store: *const repokit_store,
    name: *const c_char,
    out: *mut *mut c_char,
) -> repokit_status {
    boundary(|| {
        // SAFETY: per the function's contract.
        let (s, name) = unsafe { (handle(store)?, text(name)?) };
        if out.is_null() {
            return Err(null());
        }
        let armored = s.kit.keyring().export_public(&KeyName::new(name)?)?;
        let armored =
            String::from_utf8(armored).map_err(|e| Failure(REPOKIT_OTHER, e.to_string()))?;
        // SAFETY: checked non-NULL.
        unsafe { give(out, armored) }
    })
}

/// Creates a repository from a JSON spec
/// (`{"name", "format": "rpm"|"deb", "role", "codename", "component",
/// "architectures", "sign_with", "compression", "vendor_signatures", "ttl",
/// "members"}`); writes
/// the repository as JSON to `out_json`.
///
/// # Safety
/// `store` is a live handle; `spec_json` a C string; `out_json` writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn repokit_repo_create(
    store: *const repokit_store,
    spec_json: *const c_char,
    out_json: *mut *mut c_char,
) -> repokit_status {
    // SAFETY: the pointers are valid per the function's contract.
    unsafe {
        respond(out_json, || {
            let (s, spec) = (handle(store)?, text(spec_json)?);
            let create: CreateRepo = serde_json::from_str(spec)
                .map_err(|e| Failure(REPOKIT_INVALID_INPUT, format!("repository spec: {e}")))?;
            let info = s.rt.block_on(s.kit.create_repo(create))?;
            Ok(info)
        })
    }
}

/// Writes every repository as a JSON array to `out_json`.
///
/// # Safety
/// `store` is a live handle; `out_json` writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn repokit_repo_list(
    store: *const repokit_store,
    out_json: *mut *mut c_char,
) -> repokit_status {
    // SAFETY: the pointers are valid per the function's contract.
    unsafe {
        respond(out_json, || {
            let s = handle(store)?;
            let repos = s.rt.block_on(s.kit.repos())?;
            Ok(repos)
        })
    }
}

/// Writes one repository as JSON to `out_json`.
///
/// # Safety
/// `store` is a live handle; `name` a C string; `out_json` writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn repokit_repo_show(
    store: *const repokit_store,
    name: *const c_char,
    out_json: *mut *mut c_char,
) -> repokit_status {
    // SAFETY: the pointers are valid per the function's contract.
    unsafe {
        respond(out_json, || {
            let (s, name) = (handle(store)?, text(name)?);
            let info = s.rt.block_on(s.kit.repo(&repo_name(name)?))?;
            Ok(info)
        })
    }
}

/// Deletes a repository (its blobs are collected later).
///
/// # Safety
/// `store` is a live handle; `name` a C string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn repokit_repo_delete(
    store: *const repokit_store,
    name: *const c_char,
) -> repokit_status {
    boundary(|| {
        // SAFETY: per the function's contract.
        let (s, name) = unsafe { (handle(store)?, text(name)?) };
        Ok(s.rt.block_on(s.kit.delete_repo(&repo_name(name)?))?)
    })
}

/// Adds the package files at `paths` (`n` of them; copied into the store)
/// to repository `name` as one new revision; writes the add report as
/// JSON to `out_json`. A bad file stores nothing.
///
/// # Safety
/// `store` is a live handle; `name` a C string; `paths` points to `n` C
/// strings; `out_json` writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn repokit_add(
    store: *const repokit_store,
    name: *const c_char,
    paths: *const *const c_char,
    n: usize,
    out_json: *mut *mut c_char,
) -> repokit_status {
    // SAFETY: the pointers are valid per the function's contract.
    unsafe {
        respond(out_json, || {
            let (s, name, paths) = (handle(store)?, text(name)?, texts(paths, n)?);
            let uploads = paths
                .iter()
                .map(|p| Upload::from_path(std::path::Path::new(p)))
                .collect::<repo_core::Result<Vec<_>>>()?;
            let report =
                s.rt.block_on(s.kit.add(&repo_name(name)?, &uploads, Arc::new(NoProgress)))?;
            Ok(report)
        })
    }
}

/// Removes the packages matching `specs` (file name, name,
/// name-version[-release] or identity); writes the report as JSON.
///
/// # Safety
/// `store` is a live handle; `name` a C string; `specs` points to `n` C
/// strings; `out_json` writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn repokit_remove(
    store: *const repokit_store,
    name: *const c_char,
    specs: *const *const c_char,
    n: usize,
    out_json: *mut *mut c_char,
) -> repokit_status {
    // SAFETY: the pointers are valid per the function's contract.
    unsafe {
        respond(out_json, || {
            let (s, name, specs) = (handle(store)?, text(name)?, texts(specs, n)?);
            let specs: Vec<String> = specs.iter().map(|s| s.to_string()).collect();
            let report = s.rt.block_on(s.kit.remove(&repo_name(name)?, &specs))?;
            Ok(report)
        })
    }
}

/// Publishes repository `name` (render, sign, atomic switch); writes the
/// publish report as JSON.
///
/// # Safety
/// `store` is a live handle; `name` a C string; `out_json` writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn repokit_publish(
    store: *const repokit_store,
    name: *const c_char,
    out_json: *mut *mut c_char,
) -> repokit_status {
    // SAFETY: the pointers are valid per the function's contract.
    unsafe {
        respond(out_json, || {
            let (s, name) = (handle(store)?, text(name)?);
            let report = s.rt.block_on(s.kit.publish(&repo_name(name)?))?;
            Ok(report)
        })
    }
}

/// Promotes the published packages of `from` (all when `n` is 0, else
/// those matching `specs`) into `to` by reference, re-signing RPMs for
/// `to`'s key; `change` (NULL: `from`'s name) is recorded as provenance.
/// Writes the promote report as JSON.
///
/// # Safety
/// `store` is a live handle; `from`, `to` C strings; `specs` points to `n`
/// C strings; `change` NULL or a C string; `out_json` writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn repokit_promote(
    store: *const repokit_store,
    from: *const c_char,
    to: *const c_char,
    specs: *const *const c_char,
    n: usize,
    change: *const c_char,
    out_json: *mut *mut c_char,
) -> repokit_status {
    // SAFETY: the pointers are valid per the function's contract.
    unsafe {
        respond(out_json, || {
            let (s, from, to, specs, change) = (
                handle(store)?,
                text(from)?,
                text(to)?,
                texts(specs, n)?,
                opt_text(change)?,
            );
            let req = Promote {
                from: repo_name(from)?,
                packages: specs.iter().map(|s| s.to_string()).collect(),
                change: change.map(str::to_string),
            };
            let report = s.rt.block_on(s.kit.promote(&repo_name(to)?, req))?;
            Ok(report)
        })
    }
}

/// A merge: `{"from", "to", "packages": [...], "change", "publish": true,
/// "sync": ["file:///DIR", "s3://BUCKET/PREFIX"]}`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct MergeSpec {
    from: String,
    to: String,
    #[serde(default)]
    packages: Vec<String>,
    change: Option<String>,
    #[serde(default)]
    publish: bool,
    #[serde(default)]
    sync: Vec<String>,
}

/// The merge step as one call: promotes the published packages of `from`
/// into `to` (as `repokit_promote`), then publishes `to` when `"publish"` is
/// true, then pushes the new publication to the `"sync"` targets (which
/// needs `"publish"`), with the default retention. `spec_json` is a
/// `MergeSpec` object. Writes the promote report as JSON, with `"publish"`
/// and `"sync"` reports when they ran.
///
/// # Safety
/// `store` is a live handle; `spec_json` a C string; `out_json` writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn repokit_promote_publish_sync(
    store: *const repokit_store,
    spec_json: *const c_char,
    out_json: *mut *mut c_char,
) -> repokit_status {
    // SAFETY: the pointers are valid per the function's contract.
    unsafe {
        respond(out_json, || {
            let (s, spec) = (handle(store)?, text(spec_json)?);
            let spec: MergeSpec = serde_json::from_str(spec)
                .map_err(|e| Failure(REPOKIT_INVALID_INPUT, format!("merge spec: {e}")))?;
            repo_sync::merge::check(spec.publish, !spec.sync.is_empty())?;
            let targets = repo_sync::Target::open_all(&spec.sync)?;
            let req = Promote {
                from: repo_name(&spec.from)?,
                packages: spec.packages,
                change: spec.change,
            };
            let report = s.rt.block_on(repo_sync::promote_publish_sync(
                &s.kit,
                &repo_name(&spec.to)?,
                req,
                spec.publish,
                &targets,
                &repo_sync::Retention::default(),
            ))?;
            Ok(report)
        })
    }
}

/// Writes the live publication of `name` into directory `dir` (a symlink
/// swapped atomically); writes the export report as JSON.
///
/// # Safety
/// `store` is a live handle; `name`, `dir` C strings; `out_json` writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn repokit_export(
    store: *const repokit_store,
    name: *const c_char,
    dir: *const c_char,
    out_json: *mut *mut c_char,
) -> repokit_status {
    // SAFETY: the pointers are valid per the function's contract.
    unsafe {
        respond(out_json, || {
            let (s, name, dir) = (handle(store)?, text(name)?, text(dir)?);
            let report = s.rt.block_on(repo_sync::export::export(
                &s.kit,
                &repo_name(name)?,
                std::path::Path::new(dir),
            ))?;
            Ok(report)
        })
    }
}

/// What `repokit_sync` takes: the targets, or the targets and the
/// retention.
#[derive(serde::Deserialize)]
#[serde(untagged)]
enum SyncSpec {
    Targets(Vec<String>),
    Full(SyncOptions),
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct SyncOptions {
    targets: Vec<String>,
    keep: Option<usize>,
    keep_days: Option<u64>,
    /// A duration text such as `"48h"`.
    grace: Option<String>,
}

/// Pushes the live publication of `name` to mirror targets as one
/// transaction (every target prepared, then each switched). `spec_json` is
/// a JSON array of target URLs (`file:///DIR`, `s3://BUCKET[/PREFIX]`) or an
/// object `{"targets": [...], "keep": 5, "keep_days": 20, "grace": "48h"}`.
/// Writes the sync manifest as JSON.
///
/// # Safety
/// `store` is a live handle; `name`, `spec_json` C strings; `out_json`
/// writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn repokit_sync(
    store: *const repokit_store,
    name: *const c_char,
    spec_json: *const c_char,
    out_json: *mut *mut c_char,
) -> repokit_status {
    // SAFETY: the pointers are valid per the function's contract.
    unsafe {
        respond(out_json, || {
            let (s, name, spec) = (handle(store)?, text(name)?, text(spec_json)?);
            let spec: SyncSpec = serde_json::from_str(spec)
                .map_err(|e| Failure(REPOKIT_INVALID_INPUT, format!("sync spec: {e}")))?;
            let opts = match spec {
                SyncSpec::Targets(targets) => SyncOptions {
                    targets,
                    keep: None,
                    keep_days: None,
                    grace: None,
                },
                SyncSpec::Full(o) => o,
            };
            let mut retention = repo_sync::Retention::default();
            if let Some(k) = opts.keep {
                retention.keep = k.max(1);
            }
            if let Some(d) = opts.keep_days {
                retention.keep_days = d;
            }
            if let Some(g) = &opts.grace {
                retention.grace =
                    std::time::Duration::from_secs(repo_core::time::parse_duration(g)?);
            }
            let targets = repo_sync::Target::open_all(&opts.targets)?;
            let name = repo_name(name)?;
            let report =
                s.rt.block_on(repo_sync::sync(&s.kit, &name, &targets, &retention))?;
            Ok(report)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_is_the_crate_version() {
        // SAFETY: repokit_version returns a pointer to a static C string.
        let v = unsafe { CStr::from_ptr(repokit_version()) };
        assert_eq!(v.to_str().ok(), Some(env!("CARGO_PKG_VERSION")));
    }

    fn last_error() -> String {
        let mut buf = vec![0 as c_char; 512];
        let mut n = 0usize;
        // SAFETY: buf has 512 bytes; n is writable.
        unsafe { repokit_last_error(buf.as_mut_ptr(), buf.len(), &mut n) };
        // SAFETY: repokit_last_error NUL-terminates within buf.
        unsafe { CStr::from_ptr(buf.as_ptr()) }
            .to_string_lossy()
            .into_owned()
    }

    #[test]
    fn a_panic_inside_becomes_a_status() {
        let status = boundary(|| -> Result<(), Failure> { panic!("boom") });
        assert_eq!(status, REPOKIT_PANIC);
        assert!(last_error().contains("boom"), "{}", last_error());
        // The boundary works again afterwards.
        assert_eq!(boundary(|| Ok(())), REPOKIT_OK);
        assert_eq!(last_error(), "");
    }

    #[test]
    fn null_arguments_and_missing_repositories_are_statuses() {
        let dir = std::env::temp_dir().join(format!("repokit-ffi-{}", std::process::id()));
        let path = CString::new(dir.display().to_string()).expect("path");
        let mut store: *mut repokit_store = std::ptr::null_mut();
        // SAFETY: valid arguments.
        assert_eq!(
            unsafe { repokit_store_open(path.as_ptr(), &mut store) },
            REPOKIT_OK
        );
        let mut out: *mut c_char = std::ptr::null_mut();
        // SAFETY: a NULL name is checked.
        let status = unsafe { repokit_repo_show(store, std::ptr::null(), &mut out) };
        assert_eq!(status, REPOKIT_NULL_PARAMETER);
        assert!(out.is_null(), "out parameters are written only on success");
        let name = CString::new("nope").expect("name");
        // SAFETY: valid arguments.
        let status = unsafe { repokit_repo_show(store, name.as_ptr(), &mut out) };
        assert_eq!(status, REPOKIT_NOT_FOUND);
        assert!(last_error().contains("nope"));
        // SAFETY: the handle is freed once; NULL frees are no-ops.
        unsafe {
            repokit_store_free(store);
            repokit_store_free(std::ptr::null_mut());
            repokit_string_free(std::ptr::null_mut());
        }
        let _ = std::fs::remove_dir_all(dir);
    }
}
