//! Placing an OpenPGP header signature into an RPM package file.
//!
//! The signature is made by [`crate::sign::Signer`] over the main header
//! bytes (and, for a package without a payload digest, over header and
//! payload); [`super::sigheader::resign`] decides the new signature header.
//! This module reads the headers of the one file it is given and writes the
//! new signature header in place when it fits in the old one's length (the
//! reserved space rpmbuild leaves is resized, as rpmsign does), otherwise
//! streams the package into a new file. The payload is copied byte for byte,
//! never parsed.

use std::collections::HashSet;
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::time::SystemTime;

use super::sigheader::{self, HeaderBlob, NewSignatures, SlotAlgo};
use crate::error::{Error, Result};
use crate::model::VendorSignatures;
use crate::sign::{Signer, signature_issuers};

const LEAD_SIZE: u64 = 96;

/// The name a package signed by the key `fingerprint` under `policy` is
/// recorded under (its signed variant). The suffix names the signing rule's
/// version with the policy: a package signed by an earlier rule (which left
/// other keys' signatures in `OPENPGP` and dropped digests) is signed again,
/// not reused.
pub fn variant_name(fingerprint: &str, policy: VendorSignatures) -> String {
    match policy {
        VendorSignatures::Replace => format!("{fingerprint}-r2"),
        VendorSignatures::Keep => format!("{fingerprint}-k2"),
    }
}

/// What signing does with the signatures a package already carries.
#[derive(Debug, Clone, Copy)]
pub enum Existing<'a> {
    /// Every signature is removed; the new key's is the only one.
    Replace,
    /// Signatures by keys other than these (upper-case hex fingerprints and
    /// key IDs: the store's own keys) stay in the `OPENPGP` list beside the
    /// new one; signatures by these keys are removed.
    KeepForeign(&'a HashSet<String>),
}

/// Reads one header blob (intro, index and data store) at the reader's
/// position, refusing one larger than `max` bytes before allocating it.
fn read_blob(r: &mut impl Read, name: &str, max: u64) -> Result<Vec<u8>> {
    let mut intro = [0u8; 16];
    r.read_exact(&mut intro)
        .map_err(|_| Error::invalid_package(name, "truncated header"))?;
    let len = sigheader::blob_len(&intro);
    if len > max {
        return Err(Error::LimitExceeded {
            what: format!("RPM header of {name}"),
            actual: len,
            limit: max,
        });
    }
    let mut blob = intro.to_vec();
    r.take(len - 16).read_to_end(&mut blob)?;
    if blob.len() as u64 != len {
        return Err(Error::invalid_package(name, "truncated header"));
    }
    Ok(blob)
}

/// The signatures of `old` that stay beside the new one.
fn kept_signatures(old: &HeaderBlob, existing: Existing<'_>) -> Vec<Vec<u8>> {
    match existing {
        Existing::Replace => Vec::new(),
        Existing::KeepForeign(own) => old
            .signatures()
            .into_iter()
            .filter(|s| !signature_issuers(s).iter().any(|h| own.contains(h)))
            .collect(),
    }
}

/// Signs the package at `path` with `signer`, which may rewrite the file.
/// `max_header` bounds what is read of each header. Returns once the file
/// holds the signed package.
pub fn sign_file(
    path: &Path,
    name: &str,
    signer: &mut Signer,
    when: SystemTime,
    existing: Existing<'_>,
    max_header: u64,
) -> Result<()> {
    let bad = |reason: String| Error::invalid_package(name, reason);
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)?;
    let mut reader = BufReader::new(&mut file);
    reader.seek(SeekFrom::Start(LEAD_SIZE))?;
    let sig_blob = read_blob(&mut reader, name, max_header)?;
    let sig_len = sig_blob.len().div_ceil(8) * 8;
    let header_start = LEAD_SIZE + sig_len as u64;
    reader.seek(SeekFrom::Start(header_start))?;
    let header = read_blob(&mut reader, name, max_header)?;
    let old = HeaderBlob::parse(&sig_blob).map_err(bad)?;

    let v6 = sigheader::int32(&header, sigheader::TAG_RPMFORMAT).is_some_and(|f| f >= 6);
    let payload_digest = [
        sigheader::TAG_PAYLOADSHA256,
        sigheader::TAG_PAYLOADSHA256ALT,
        sigheader::TAG_PAYLOADSHA512,
        sigheader::TAG_PAYLOADSHA3_256,
    ]
    .iter()
    .any(|t| sigheader::has_tag(&header, *t));
    let header_sig = signer.detached_binary(&header, when)?;
    let header_payload = if v6 || payload_digest {
        None
    } else {
        reader.seek(SeekFrom::Start(header_start))?;
        Some(signer.detached_binary_of(&mut reader, when)?)
    };
    drop(reader);
    let keep = kept_signatures(&old, existing);
    let new = sigheader::resign(
        &old,
        v6,
        &NewSignatures {
            header: header_sig,
            header_payload,
            algo: if signer.is_rsa() {
                SlotAlgo::Rsa
            } else {
                SlotAlgo::Dsa
            },
            keep,
        },
    );
    if new.entries.len() + 2 > sigheader::MAX_SIGNATURE_ENTRIES {
        return Err(Error::Signing(format!(
            "{name}: the signature header would have more than {} entries",
            sigheader::MAX_SIGNATURE_ENTRIES
        )));
    }
    let reserve_tag = if v6 {
        sigheader::TAG_RESERVED
    } else {
        sigheader::TAG_RESERVEDSPACE
    };
    write_signature_header(path, file, &new, reserve_tag, sig_len, header_start)
}

/// Writes the new signature header `new` into the package: in place when
/// it fits in the old one's `old_len` bytes (with the reserved space
/// resized), otherwise by streaming the package into a new file with a
/// fresh reserved space.
fn write_signature_header(
    path: &Path,
    mut file: std::fs::File,
    new: &HeaderBlob,
    reserve_tag: u32,
    old_len: usize,
    header_start: u64,
) -> Result<()> {
    if let Some(bytes) = sigheader::fit(new, reserve_tag, old_len) {
        let mut padded = bytes;
        padded.resize(old_len, 0);
        file.seek(SeekFrom::Start(LEAD_SIZE))?;
        file.write_all(&padded)?;
        return Ok(());
    }
    let mut bytes = sigheader::with_reserve(new, reserve_tag);
    bytes.resize(bytes.len().div_ceil(8) * 8, 0);
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = tempfile::NamedTempFile::new_in(dir)?;
    {
        let mut out = BufWriter::new(tmp.as_file());
        let mut lead = [0u8; LEAD_SIZE as usize];
        file.seek(SeekFrom::Start(0))?;
        file.read_exact(&mut lead)?;
        out.write_all(&lead)?;
        out.write_all(&bytes)?;
        file.seek(SeekFrom::Start(header_start))?;
        std::io::copy(&mut file, &mut out)?;
        out.flush()?;
    }
    tmp.persist(path).map_err(|e| Error::Io(e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sign::{KeyAlgo, generate_key};

    fn signer(uid: &str) -> Signer {
        let tsk = generate_key(uid, KeyAlgo::Ed25519, SystemTime::now()).expect("key");
        Signer::from_tsk(&tsk).expect("signer")
    }

    /// (signature header, everything after it) of a package file.
    fn split(path: &Path) -> (HeaderBlob, Vec<u8>) {
        let data = std::fs::read(path).expect("read");
        let mut r = &data[LEAD_SIZE as usize..];
        let blob = read_blob(&mut r, "p", u64::MAX).expect("signature header");
        let start = LEAD_SIZE as usize + blob.len().div_ceil(8) * 8;
        (
            HeaderBlob::parse(&blob).expect("parse"),
            data[start..].to_vec(),
        )
    }

    fn issuers(h: &HeaderBlob) -> Vec<Vec<String>> {
        h.signatures()
            .iter()
            .map(|s| signature_issuers(s))
            .collect()
    }

    /// A package signed by a test key and then by a release key carries the
    /// release key's signature only, in both the slot rpm 4 reads and the
    /// list rpm 6 reads, with the original's digests, header and payload.
    #[test]
    fn resigning_leaves_only_the_new_keys_signature_and_every_digest() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("p.rpm");
        ::rpm::PackageBuilder::new("p", "1.0", "MIT", "noarch", "p")
            .with_file_contents(b"x".to_vec(), ::rpm::FileOptions::new("/usr/bin/p"))
            .and_then(|b| b.build())
            .expect("build")
            .write_file(&path)
            .expect("write");
        let (original, body) = split(&path);
        let (mut test, mut release) = (signer("Test <t@x>"), signer("Release <r@x>"));
        let when = SystemTime::now();
        sign_file(&path, "p", &mut test, when, Existing::Replace, 1 << 20).expect("sign");
        sign_file(&path, "p", &mut release, when, Existing::Replace, 1 << 20).expect("re-sign");
        let (signed, signed_body) = split(&path);
        assert_eq!(signed_body, body, "main header and payload as built");
        assert_eq!(issuers(&signed).len(), 1, "one signature");
        assert!(
            issuers(&signed)[0].contains(&release.fingerprint()),
            "by the release key"
        );
        assert!(
            signed.get(sigheader::TAG_DSAHEADER).is_some(),
            "rpm 4's slot"
        );
        assert!(signed.get(sigheader::TAG_OPENPGP).is_some(), "rpm 6's list");
        for e in &original.entries {
            if !sigheader::SIGNATURE_TAGS.contains(&e.tag) && e.tag != sigheader::TAG_RESERVEDSPACE
            {
                assert_eq!(signed.get(e.tag), Some(e), "tag {} kept", e.tag);
            }
        }

        // Keeping foreign signatures: the release key's own earlier one is
        // replaced, a vendor's stays.
        let mut vendor = signer("Vendor <v@x>");
        sign_file(&path, "p", &mut vendor, when, Existing::Replace, 1 << 20).expect("vendor");
        let own: HashSet<String> = test
            .key_handles()
            .into_iter()
            .chain(release.key_handles())
            .collect();
        sign_file(
            &path,
            "p",
            &mut release,
            when,
            Existing::KeepForeign(&own),
            1 << 20,
        )
        .expect("keep");
        let (kept, _) = split(&path);
        let by: Vec<String> = issuers(&kept).concat();
        assert!(by.contains(&vendor.fingerprint()) && by.contains(&release.fingerprint()));
        assert_eq!(issuers(&kept).len(), 2);
    }
}
