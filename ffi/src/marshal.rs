//! Between C and Rust: the panic boundary, error codes and the last error
//! message, C strings in, JSON strings out.

use std::cell::RefCell;
use std::ffi::{CStr, CString, c_char};

use repo_core::names::RepoName;
use repo_core::{Error, ErrorKind};

use crate::repokit_status::{self, *};
use crate::repokit_store;

thread_local! {
    pub(crate) static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

/// A failed call: its status and message.
pub(crate) struct Failure(pub(crate) repokit_status, pub(crate) String);

/// The C status of an error kind: the one place kinds become codes here.
pub(crate) fn status_of(kind: ErrorKind) -> repokit_status {
    match kind {
        ErrorKind::InvalidInput => REPOKIT_INVALID_INPUT,
        ErrorKind::InvalidPackage => REPOKIT_INVALID_PACKAGE,
        ErrorKind::NotFound => REPOKIT_NOT_FOUND,
        ErrorKind::Conflict => REPOKIT_CONFLICT,
        ErrorKind::Forbidden | ErrorKind::Unauthorized => REPOKIT_FORBIDDEN,
        ErrorKind::LimitExceeded => REPOKIT_LIMIT_EXCEEDED,
        ErrorKind::Signing => REPOKIT_SIGNING,
        ErrorKind::Storage => REPOKIT_STORAGE,
        ErrorKind::Io => REPOKIT_IO,
        ErrorKind::Corrupt => REPOKIT_CORRUPT,
        ErrorKind::Internal => REPOKIT_INTERNAL,
        _ => REPOKIT_OTHER,
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure(status_of(e.kind()), e.to_string())
    }
}

impl From<repo_sync::Error> for Failure {
    fn from(e: repo_sync::Error) -> Self {
        Failure(status_of(e.kind()), e.to_string())
    }
}

pub(crate) fn set_last_error(message: &str) {
    let c = CString::new(message.replace('\0', " ")).unwrap_or_default();
    LAST_ERROR.with(|e| *e.borrow_mut() = c);
}

/// Runs `f` inside the panic boundary and records the error message of a
/// failure for `repokit_last_error`.
pub(crate) fn boundary(f: impl FnOnce() -> Result<(), Failure>) -> repokit_status {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(Ok(())) => {
            set_last_error("");
            REPOKIT_OK
        }
        Ok(Err(Failure(status, message))) => {
            set_last_error(&message);
            status
        }
        Err(payload) => {
            let what = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            set_last_error(&format!("internal error (panic): {what}"));
            REPOKIT_PANIC
        }
    }
}

pub(crate) fn null() -> Failure {
    Failure(REPOKIT_NULL_PARAMETER, "a required argument is NULL".into())
}

/// A borrowed C string as UTF-8.
///
/// # Safety
/// `p` is NULL or points to a NUL-terminated string valid for the call.
pub(crate) unsafe fn text<'a>(p: *const c_char) -> Result<&'a str, Failure> {
    if p.is_null() {
        return Err(null());
    }
    // SAFETY: non-NULL and NUL-terminated per the caller's contract.
    unsafe { CStr::from_ptr(p) }
        .to_str()
        .map_err(|_| Failure(REPOKIT_INVALID_INPUT, "argument is not UTF-8".into()))
}

/// An optional C string: NULL is `None`.
///
/// # Safety
/// As for [`text`].
pub(crate) unsafe fn opt_text<'a>(p: *const c_char) -> Result<Option<&'a str>, Failure> {
    if p.is_null() {
        Ok(None)
    } else {
        // SAFETY: forwarded contract.
        unsafe { text(p) }.map(Some)
    }
}

/// An array of `n` C strings.
///
/// # Safety
/// `p` is NULL only when `n` is 0; otherwise it points to `n` valid C
/// string pointers.
pub(crate) unsafe fn texts<'a>(p: *const *const c_char, n: usize) -> Result<Vec<&'a str>, Failure> {
    if n == 0 {
        return Ok(Vec::new());
    }
    if p.is_null() {
        return Err(null());
    }
    // SAFETY: `p` points to `n` pointers per the caller's contract.
    let items = unsafe { std::slice::from_raw_parts(p, n) };
    // SAFETY: each item is a C string per the contract.
    items.iter().map(|&s| unsafe { text(s) }).collect()
}

/// The store behind a handle.
///
/// # Safety
/// `p` is NULL or a handle from `repokit_store_open` not yet freed.
pub(crate) unsafe fn handle<'a>(p: *const repokit_store) -> Result<&'a repokit_store, Failure> {
    // SAFETY: per the caller's contract.
    unsafe { p.as_ref() }.ok_or_else(null)
}

/// Hands a Rust string to C through `out`.
///
/// # Safety
/// `out` is a valid, writable pointer.
pub(crate) unsafe fn give(out: *mut *mut c_char, s: String) -> Result<(), Failure> {
    let c =
        CString::new(s).map_err(|_| Failure(REPOKIT_OTHER, "result contains a NUL byte".into()))?;
    // SAFETY: `out` is writable per the caller's contract.
    unsafe { *out = c.into_raw() };
    Ok(())
}

pub(crate) fn json<T: serde::Serialize>(v: &T) -> Result<String, Failure> {
    serde_json::to_string(v).map_err(|e| Failure(REPOKIT_OTHER, e.to_string()))
}

/// Runs `f` inside the panic boundary and hands its result to C as JSON
/// through `out`, which is checked first: nothing runs for a NULL `out`,
/// and `out` is written only on success.
///
/// # Safety
/// `out` is NULL or writable; `f` upholds the contracts of the pointers it
/// reads.
pub(crate) unsafe fn respond<T: serde::Serialize>(
    out: *mut *mut c_char,
    f: impl FnOnce() -> Result<T, Failure>,
) -> repokit_status {
    boundary(|| {
        if out.is_null() {
            return Err(null());
        }
        let v = f()?;
        // SAFETY: `out` is non-NULL and writable per the contract.
        unsafe { give(out, json(&v)?) }
    })
}

pub(crate) fn repo_name(s: &str) -> Result<RepoName, Failure> {
    Ok(RepoName::new(s)?)
}
