//! Validated names and paths. Untrusted strings become these types at the
//! edge (CLI, HTTP, FFI); everything inside takes the types, not strings.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

fn check_name(kind: &str, s: &str) -> Result<()> {
    let ok = !s.is_empty()
        && s.len() <= 64
        && s.as_bytes()[0].is_ascii_alphanumeric()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidInput(format!(
            "{kind} {s:?} must be 1-64 characters of [A-Za-z0-9._-] starting with a letter or digit"
        )))
    }
}

macro_rules! name_type {
    ($(#[$m:meta])* $ty:ident, $kind:literal) => {
        $(#[$m])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $ty(String);

        impl $ty {
            pub fn new(s: impl Into<String>) -> Result<Self> {
                let s = s.into();
                check_name($kind, &s)?;
                Ok($ty(s))
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
        impl TryFrom<String> for $ty {
            type Error = Error;
            fn try_from(s: String) -> Result<Self> {
                Self::new(s)
            }
        }
        impl From<$ty> for String {
            fn from(n: $ty) -> String {
                n.0
            }
        }
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

name_type!(
    /// A repository name: safe in a URL path segment and a storage key.
    RepoName,
    "repository name"
);
name_type!(
    /// The name of a signing key in the keyring.
    KeyName,
    "key name"
);

/// A relative path inside a publication (`repodata/repomd.xml`): no empty,
/// `.` or `..` segments, not absolute, no control characters or backslashes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RepoPath(String);

impl RepoPath {
    pub fn new(s: impl Into<String>) -> Result<Self> {
        let s = s.into();
        let bad = s.is_empty()
            || s.len() > 1024
            || s.starts_with('/')
            || s.chars().any(|c| c.is_control() || c == '\\')
            || s.split('/')
                .any(|seg| seg.is_empty() || seg == "." || seg == "..");
        if bad {
            return Err(Error::InvalidInput(format!(
                "invalid repository path {s:?}"
            )));
        }
        Ok(RepoPath(s))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
impl TryFrom<String> for RepoPath {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        Self::new(s)
    }
}
impl From<RepoPath> for String {
    fn from(p: RepoPath) -> String {
        p.0
    }
}
impl fmt::Display for RepoPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A file name given by an uploader: one path segment, printable, no
/// separators, so it cannot steer where anything is written.
pub fn check_file_name(s: &str) -> Result<()> {
    let bad = s.is_empty()
        || s.len() > 255
        || s == "."
        || s == ".."
        || s.chars().any(|c| c.is_control() || c == '/' || c == '\\');
    if bad {
        Err(Error::InvalidInput(format!("invalid file name {s:?}")))
    } else {
        Ok(())
    }
}

/// A SHA-256 digest, stored as 64 lowercase hex characters. Shared, not
/// copied, when cloned: package lists repeat the same digests many times.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Sha256(std::sync::Arc<str>);

impl Sha256 {
    pub fn new(s: impl Into<String>) -> Result<Self> {
        let s = s.into();
        if s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            Ok(Sha256(s.into()))
        } else {
            Err(Error::InvalidInput(format!("invalid sha256 {s:?}")))
        }
    }
    pub fn from_digest(d: &[u8]) -> Self {
        Sha256(to_hex(d).into())
    }
    /// The digest of `data`.
    pub fn of(data: &[u8]) -> Self {
        use sha2::Digest;
        Self::from_digest(&sha2::Sha256::digest(data))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
impl TryFrom<String> for Sha256 {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        Self::new(s)
    }
}
impl From<Sha256> for String {
    fn from(h: Sha256) -> String {
        h.0.to_string()
    }
}
impl fmt::Display for Sha256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Lower-case hex of `bytes`, by table lookup (`hex::encode` builds the
/// text one `char` at a time, which shows in an import of 50,000 packages
/// hashed four ways).
pub fn to_hex(bytes: &[u8]) -> String {
    let mut out = vec![0u8; bytes.len() * 2];
    // Cannot fail: the output is exactly twice as long as the input.
    let _ = hex::encode_to_slice(bytes, &mut out);
    String::from_utf8(out).unwrap_or_default()
}

/// `n` random bytes as hex.
pub fn random_hex(n: usize) -> Result<String> {
    let mut buf = vec![0u8; n];
    getrandom::fill(&mut buf).map_err(|e| Error::Io(std::io::Error::other(e.to_string())))?;
    Ok(to_hex(&buf))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_paths_reject_traversal() {
        for bad in [
            "",
            "/etc/passwd",
            "a/../b",
            "a//b",
            "./a",
            "a\\b",
            "a\nb",
            "..",
            "a/",
        ] {
            assert!(RepoPath::new(bad).is_err(), "{bad:?} accepted");
        }
        assert!(RepoPath::new("repodata/repomd.xml").is_ok());
    }

    #[test]
    fn names_are_url_and_key_safe() {
        for bad in ["", "-x", "a/b", "a b", ".hidden", &"x".repeat(65)] {
            assert!(RepoName::new(bad).is_err(), "{bad:?} accepted");
        }
        assert!(RepoName::new("change-1234.el9_x").is_ok());
    }

    #[test]
    fn file_names_are_one_segment() {
        for bad in ["", "..", "../x.rpm", "a/b.rpm", "x\0.rpm"] {
            assert!(check_file_name(bad).is_err(), "{bad:?} accepted");
        }
        assert!(check_file_name("foo-1.0-1.x86_64.rpm").is_ok());
    }
}
