//! The C ABI of repokit, for in-process callers such as Python tooling.
//!
//! This crate is the only one allowed `unsafe` (exported symbols need
//! `#[unsafe(no_mangle)]`). It starts with the version query; the store and
//! repository operations follow the rustls-ffi conventions described in
//! ARCHITECTURE.md as they are added.
#![allow(unsafe_code)] // exporting C symbols is an unsafe attribute

use std::ffi::{CStr, c_char};

static VERSION: &CStr =
    match CStr::from_bytes_with_nul(concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes()) {
        Ok(v) => v,
        Err(_) => c"unknown",
    };

/// The library version as a NUL-terminated string with static lifetime;
/// the caller must not free it. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn repokit_version() -> *const c_char {
    VERSION.as_ptr()
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
}
