//! The record format of meta packs (see `model::MetaLocation`): a 4-byte
//! big-endian length, the package's metadata JSON, then its index fragments.

use crate::error::{Error, Result};
use crate::model::PackageMeta;

/// Encodes one package's record; `fragment` is the format's cached index
/// text (RPM: NUL-separated primary/filelists/other; APT: the stanza).
pub fn encode(meta: &PackageMeta, fragment: &[u8]) -> Result<Vec<u8>> {
    let json = serde_json::to_vec(meta).map_err(|e| Error::Corrupt {
        key: format!("meta record of {}", meta.sha256),
        reason: e.to_string(),
    })?;
    let len = u32::try_from(json.len()).map_err(|_| Error::LimitExceeded {
        what: "package metadata".into(),
        actual: json.len() as u64,
        limit: u64::from(u32::MAX),
    })?;
    let frags = fragment;
    let mut out = Vec::with_capacity(4 + json.len() + frags.len());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&json);
    out.extend_from_slice(frags);
    Ok(out)
}

fn split(record: &[u8]) -> Option<(&[u8], &[u8])> {
    let len = u32::from_be_bytes(record.get(..4)?.try_into().ok()?) as usize;
    let json = record.get(4..4usize.checked_add(len)?)?;
    Some((json, &record[4 + len..]))
}

/// The metadata of a record.
pub fn meta(record: &[u8]) -> Option<PackageMeta> {
    serde_json::from_slice(split(record)?.0).ok()
}

/// The index fragment of a record, without decoding its JSON.
pub fn fragment(record: &[u8]) -> Option<&[u8]> {
    Some(split(record)?.1)
}
