//! Placing an OpenPGP header signature into an RPM package file.
//!
//! The signature itself is made by [`crate::sign::Signer`] over the main
//! header bytes; this module only writes it into the signature header, in
//! place when the package reserved space for it (rpmbuild and rpm-rs both do),
//! otherwise by streaming the package into a new file with a larger
//! signature header. The payload is copied byte for byte, never parsed.

use std::io::{BufReader, BufWriter, Seek, SeekFrom, Write};
use std::path::Path;
use std::time::SystemTime;

use crate::error::{Error, Result};
use crate::sign::Signer;

/// Signs the package at `path`, which may be rewritten in place. Returns
/// once the file holds the signed package.
pub fn sign_file(path: &Path, name: &str, signer: &mut Signer, when: SystemTime) -> Result<()> {
    let meta = {
        let mut r = BufReader::new(std::fs::File::open(path)?);
        rpm::PackageMetadata::parse(&mut r).map_err(|e| Error::invalid_package(name, e))?
    };
    let header = meta
        .header_bytes()
        .map_err(|e| Error::invalid_package(name, e))?;
    let sig = signer.detached_binary(&header, when)?;
    match rpm::Package::apply_signature_in_place(path, sig.clone()) {
        Ok(()) => Ok(()),
        Err(rpm::Error::InsufficientReservedSpace { .. }) => {
            rewrite_with_signature(path, name, &meta, sig)
        }
        Err(e) => Err(Error::invalid_package(name, e)),
    }
}

fn rewrite_with_signature(
    path: &Path,
    name: &str,
    meta: &rpm::PackageMetadata,
    sig: Vec<u8>,
) -> Result<()> {
    let bad = |e: rpm::Error| Error::invalid_package(name, e);
    let new_sig = rpm::SignatureHeaderBuilder::from_existing(&meta.signature)
        .map_err(bad)?
        .add_openpgp_signature(sig)
        .build()
        .map_err(bad)?;
    let payload_start = meta.get_package_segment_offsets().payload;
    let signed = rpm::PackageMetadata {
        lead: meta.lead.clone(),
        signature: new_sig,
        header: meta.header.clone(),
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = tempfile::NamedTempFile::new_in(dir)?;
    {
        let mut out = BufWriter::new(tmp.as_file());
        signed.write(&mut out).map_err(bad)?;
        let mut src = std::fs::File::open(path)?;
        src.seek(SeekFrom::Start(payload_start))?;
        std::io::copy(&mut src, &mut out)?;
        out.flush()?;
    }
    tmp.persist(path).map_err(|e| Error::Io(e.error))?;
    Ok(())
}
