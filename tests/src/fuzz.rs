//! Fuzz targets: every parser that reads untrusted bytes, with seeds made
//! from real inputs (rpm-built and rpm-crate RPMs, dpkg-built .debs, a
//! dpkg-source .dsc, a generated key, REST bodies), and a mutator. Used by
//! the `fuzz` program (a time- or count-bounded run per target, on the
//! stable toolchain) and by the regression test that replays every input
//! it ever saved (`tests/fuzz/<target>/`).
//!
//! The mutator is not coverage-guided: it mutates seeds and the inputs it
//! kept because they reached a new error message (a cheap stand-in for new
//! code), with bit flips, random and boundary bytes and 32-bit values,
//! insertions, deletions, duplications, truncation and splices.

use std::path::Path;

use anyhow::Result;
use repo_core::limits::Limits;

/// The targets, by name.
pub const TARGETS: [&str; 7] = [
    "rpm",
    "rpm-sigheader",
    "deb",
    "dsc",
    "control",
    "key",
    "json",
];

/// Runs one input through a target. `Err` holds the parser's message (an
/// input refused cleanly); a panic escapes to the caller.
pub fn run(target: &str, data: &[u8]) -> std::result::Result<(), String> {
    let limits = Limits::default();
    let text = || String::from_utf8_lossy(data).into_owned();
    let e = |e: repo_core::Error| e.to_string();
    match target {
        "rpm" => repo_core::rpm::package::read_bytes(data, "f.rpm", &limits)
            .map(|_| ())
            .map_err(e),
        "rpm-sigheader" => repo_core::rpm::sigheader::HeaderBlob::parse(data).map(|_| ()),
        "deb" => repo_core::deb::package::read_bytes(data, "f.deb", &limits)
            .map(|_| ())
            .map_err(e),
        "dsc" => repo_core::deb::source::read_dsc(&text(), "f.dsc")
            .map(|_| ())
            .map_err(e),
        "control" => repo_core::deb::package::parse_paragraph(&text(), "control")
            .map(|_| ())
            .map_err(e),
        "key" => {
            let _ = repo_core::sign::signature_issuers(data);
            repo_core::sign::Signer::from_tsk(data)
                .map(|_| ())
                .map_err(e)
        }
        "json" => serde_json::from_slice::<repo_core::repos::CreateRepo>(data)
            .map(|_| ())
            .map_err(|e| e.to_string()),
        other => Err(format!("unknown target {other}")),
    }
}

/// Seed inputs of every target, made in `dir`.
pub fn seeds(dir: &Path) -> Result<Vec<(&'static str, Vec<u8>)>> {
    let mut out = Vec::new();
    let rpms = crate::fixtures::varied_rpms(&dir.join("rpm"))?;
    for f in rpms.iter().take(6) {
        let data = std::fs::read(f)?;
        let intro: [u8; 16] = data[96..112].try_into()?;
        let len = repo_core::rpm::sigheader::blob_len(&intro) as usize;
        out.push((
            "rpm-sigheader",
            data[96..(96 + len).min(data.len())].to_vec(),
        ));
        out.push(("rpm", data));
    }
    for f in [
        "RPMS/v4/rpm-basic-2.3.4-5.el9.noarch.rpm",
        "SRPMS/v4/rpm-empty-0-0.src.rpm",
    ] {
        out.push((
            "rpm",
            std::fs::read(crate::fixtures::rpm_crate_fixture(f)?)?,
        ));
    }
    for f in crate::debs::generated_debs(&dir.join("deb"))?
        .iter()
        .take(4)
    {
        out.push(("deb", std::fs::read(f)?));
    }
    let dsc = crate::debs::build_source(&dir.join("src"), "rk-fuzz", "1.0")?;
    out.push(("dsc", std::fs::read(&dsc)?));
    out.push((
        "control",
        b"Package: rk\nVersion: 1:2.0~rc1-3\nArchitecture: amd64\nDepends: a (>= 1) | b, c\nDescription: x\n more\n .\n end\n"
            .to_vec(),
    ));
    out.push((
        "key",
        repo_core::sign::generate_key(
            "fuzz <fuzz@example.org>",
            repo_core::sign::KeyAlgo::Ed25519,
            std::time::SystemTime::now(),
        )?,
    ));
    for body in [
        r#"{"name":"r","format":"rpm","role":"test","sign_with":"k","ttl":"20d"}"#,
        r#"{"name":"g","format":"deb","role":"composite","members":["a","b"],"codename":"bookworm","architectures":["amd64","all"]}"#,
    ] {
        out.push(("json", body.as_bytes().to_vec()));
    }
    Ok(out)
}

/// A reproducible source of choices (xorshift64*).
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
}

const INTERESTING: [u32; 8] = [
    0,
    1,
    0x7f,
    0xff,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_ffff,
    0x0010_0000,
];

/// One to eight mutations of `input` (`other` is spliced in at times).
pub fn mutate(rng: &mut Rng, input: &[u8], other: &[u8]) -> Vec<u8> {
    let mut d = input.to_vec();
    for _ in 0..=rng.below(8) {
        let len = d.len();
        match rng.below(9) {
            0 if len > 0 => {
                let i = rng.below(len);
                d[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                d[i] = rng.next_u64() as u8;
            }
            2 if len >= 4 => {
                let i = rng.below(len - 3);
                let v = INTERESTING[rng.below(INTERESTING.len())];
                let bytes = if rng.below(2) == 0 {
                    v.to_be_bytes()
                } else {
                    v.to_le_bytes()
                };
                d[i..i + 4].copy_from_slice(&bytes);
            }
            3 => {
                let i = rng.below(len + 1);
                let n = 1 + rng.below(16);
                let fill: Vec<u8> = (0..n).map(|_| rng.next_u64() as u8).collect();
                d.splice(i..i, fill);
            }
            4 if len > 1 => {
                let i = rng.below(len);
                let n = 1 + rng.below((len - i).min(64));
                d.drain(i..i + n);
            }
            5 if len > 1 => {
                let i = rng.below(len);
                let n = 1 + rng.below((len - i).min(64));
                let copy = d[i..i + n].to_vec();
                let at = rng.below(d.len() + 1);
                d.splice(at..at, copy);
            }
            6 if len > 0 => d.truncate(rng.below(len)),
            7 if !other.is_empty() => {
                let at = rng.below(len + 1);
                let from = rng.below(other.len());
                let n = 1 + rng.below((other.len() - from).min(256));
                d.splice(at..at.min(d.len()), other[from..from + n].iter().copied());
            }
            _ if len > 0 => {
                let i = rng.below(len);
                d[i] = [0u8, 0xff, b'\n', b':', b' ', b'/', b'\0'][rng.below(7)];
            }
            _ => d.push(rng.next_u64() as u8),
        }
    }
    d
}
