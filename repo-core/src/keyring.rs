//! The keyring: signing keys as files in a local directory.
//!
//! Secret keys are written 0600 in a 0700 directory and never logged. They
//! are kept out of the object store on purpose: a bucket shared by several
//! servers is a poor place for a release key, and a local directory is what
//! an operator can lock down. Publications carry the public key instead.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::names::KeyName;
use crate::sign::{KeyAlgo, Signer, generate_key};

/// A key as listed (no secret material).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyInfo {
    pub name: KeyName,
    pub fingerprint: String,
}

/// See the module documentation.
#[derive(Debug, Clone)]
pub struct Keyring {
    dir: PathBuf,
    /// Keys parsed before, with the (inode, length, mtime) of the file each
    /// came from: every publish of a signed repository signs, and parsing
    /// a key costs more than the signature.
    loaded: std::sync::Arc<std::sync::Mutex<LoadedKeys>>,
    /// The key handles of every key, with the stamps of the key files they
    /// came from (asked once per package when vendor signatures are kept).
    handles: std::sync::Arc<std::sync::Mutex<Option<Handles>>>,
}

/// (inode, length, mtime seconds, mtime nanoseconds) of a key file.
type Stamp = (u64, u64, i64, i64);

type LoadedKeys = std::collections::HashMap<KeyName, (Stamp, Signer)>;

type Handles = (Vec<(KeyName, Stamp)>, std::collections::HashSet<String>);

impl Keyring {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Keyring {
            dir: dir.into(),
            loaded: Default::default(),
            handles: Default::default(),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, name: &KeyName) -> PathBuf {
        self.dir.join(format!("{name}.key.asc"))
    }

    /// Generates and stores a new key; `Conflict` if the name is taken.
    pub fn generate(
        &self,
        name: &KeyName,
        uid: &str,
        algo: KeyAlgo,
        now: SystemTime,
    ) -> Result<KeyInfo> {
        if uid.trim().is_empty() || uid.chars().any(char::is_control) {
            return Err(Error::InvalidInput(format!("invalid user id {uid:?}")));
        }
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)?;
        let path = self.path(name);
        if path.exists() {
            return Err(Error::Conflict(format!("key {name} exists")));
        }
        let tsk = generate_key(uid, algo, now)?;
        let signer = Signer::from_tsk(&tsk)?;
        // Write to a private temp file, then link it into place: the key
        // appears whole or not at all, and never with looser permissions.
        let tmp = self.dir.join(format!(".{name}.{}.tmp", std::process::id()));
        {
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)?;
            f.write_all(&tsk)?;
            f.sync_all()?;
        }
        let linked = std::fs::hard_link(&tmp, &path);
        let _ = std::fs::remove_file(&tmp);
        match linked {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(Error::Conflict(format!("key {name} exists")));
            }
            Err(e) => return Err(e.into()),
        }
        tracing::info!(key = %name, fingerprint = %signer.fingerprint(), "generated signing key");
        Ok(KeyInfo {
            name: name.clone(),
            fingerprint: signer.fingerprint(),
        })
    }

    /// Loads a key for signing (parsed once while its file is unchanged).
    pub fn signer(&self, name: &KeyName) -> Result<Signer> {
        use std::os::unix::fs::MetadataExt;
        let not_found = |e: std::io::Error| match e.kind() {
            std::io::ErrorKind::NotFound => Error::not_found("key", name.as_str()),
            _ => e.into(),
        };
        let path = self.path(name);
        let meta = std::fs::metadata(&path).map_err(not_found)?;
        let stamp = (meta.ino(), meta.len(), meta.mtime(), meta.mtime_nsec());
        if let Ok(loaded) = self.loaded.lock()
            && let Some((s, signer)) = loaded.get(name)
            && *s == stamp
        {
            return Ok(signer.clone());
        }
        let signer = Signer::from_tsk(&std::fs::read(&path).map_err(not_found)?)?;
        if let Ok(mut loaded) = self.loaded.lock() {
            loaded.insert(name.clone(), (stamp, signer.clone()));
        }
        Ok(signer)
    }

    /// The armored public key.
    pub fn export_public(&self, name: &KeyName) -> Result<Vec<u8>> {
        self.signer(name)?.public_armored()
    }

    /// Upper-case hex of every fingerprint and key ID of every key in the
    /// keyring: what tells this store's own signatures from a vendor's.
    pub fn key_handles(&self) -> Result<std::collections::HashSet<String>> {
        use std::os::unix::fs::MetadataExt;
        let mut stamps = Vec::new();
        for name in self.names()? {
            let meta = std::fs::metadata(self.path(&name))?;
            stamps.push((
                name,
                (meta.ino(), meta.len(), meta.mtime(), meta.mtime_nsec()),
            ));
        }
        if let Ok(cached) = self.handles.lock()
            && let Some((s, handles)) = &*cached
            && *s == stamps
        {
            return Ok(handles.clone());
        }
        let mut out = std::collections::HashSet::new();
        for (name, _) in &stamps {
            out.extend(self.signer(name)?.key_handles());
        }
        if let Ok(mut cached) = self.handles.lock() {
            *cached = Some((stamps, out.clone()));
        }
        Ok(out)
    }

    /// The name of every key file, sorted.
    fn names(&self) -> Result<Vec<KeyName>> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        };
        let mut out = Vec::new();
        for entry in entries {
            let file = entry?.file_name();
            if let Some(name) = file.to_str().and_then(|f| f.strip_suffix(".key.asc"))
                && let Ok(name) = KeyName::new(name)
            {
                out.push(name);
            }
        }
        out.sort();
        Ok(out)
    }

    /// Every key, sorted by name.
    pub fn list(&self) -> Result<Vec<KeyInfo>> {
        self.names()?
            .into_iter()
            .map(|name| {
                let fingerprint = self.signer(&name)?.fingerprint();
                Ok(KeyInfo { name, fingerprint })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn secret_keys_are_private_and_names_unique() {
        let dir = tempfile::tempdir().expect("tmp");
        let ring = Keyring::new(dir.path().join("keys"));
        let name = KeyName::new("k").expect("name");
        let info = ring
            .generate(
                &name,
                "Test <t@example.org>",
                KeyAlgo::Ed25519,
                SystemTime::now(),
            )
            .expect("generate");
        let mode = std::fs::metadata(ring.path(&name))
            .expect("stat")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let dmode = std::fs::metadata(ring.dir())
            .expect("stat")
            .permissions()
            .mode();
        assert_eq!(dmode & 0o777, 0o700);
        assert!(matches!(
            ring.generate(
                &name,
                "Other <o@example.org>",
                KeyAlgo::Ed25519,
                SystemTime::now()
            ),
            Err(Error::Conflict(_))
        ));
        assert_eq!(ring.list().expect("list"), vec![info]);
        assert!(matches!(
            ring.signer(&KeyName::new("missing").expect("name")),
            Err(Error::NotFound { .. })
        ));
    }
}
