//! OpenPGP keys and signatures (sequoia-openpgp on nettle).
//!
//! Pure: key material and an explicit timestamp in, bytes out. No file IO
//! (the keyring module stores keys) and no clock. Everything is made with the
//! RFC 4880 (v4) profile, which apt 2.6, gpgv, sqv and rpm 4.18 all accept.

use std::time::SystemTime;

use openpgp::cert::Cert;
use openpgp::crypto::KeyPair;
use openpgp::packet::key::{Key4, PrimaryRole, SecretParts};
use openpgp::packet::signature::SignatureBuilder;
use openpgp::packet::{Key, UserID};
use openpgp::parse::Parse;
use openpgp::policy::StandardPolicy;
use openpgp::serialize::stream::{Armorer, Message, Signer as StreamSigner};
use openpgp::serialize::{Serialize, SerializeInto};
use openpgp::types::{Curve, Features, HashAlgorithm, KeyFlags, SignatureType, SymmetricAlgorithm};
use sequoia_openpgp as openpgp;
use serde::{Deserialize, Serialize as SerdeSerialize};

use crate::error::{Error, Result};

/// Public-key algorithm of a generated repository key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, SerdeSerialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum KeyAlgo {
    /// RSA-4096: the default, accepted by every client including old ones.
    #[default]
    Rsa4096,
    /// Ed25519 (EdDSA, v4): small and fast; rpm >= 4.16 and apt accept it.
    Ed25519,
}

impl std::str::FromStr for KeyAlgo {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "rsa4096" => Ok(KeyAlgo::Rsa4096),
            "ed25519" => Ok(KeyAlgo::Ed25519),
            _ => Err(Error::InvalidInput(format!(
                "unknown key algorithm {s:?} (rsa4096 or ed25519)"
            ))),
        }
    }
}

fn sig_err(e: impl std::fmt::Display) -> Error {
    Error::Signing(e.to_string())
}

/// Generates a repository signing key and returns it as an armored
/// transferable secret key.
///
/// The primary key certifies and signs; there is no subkey. The user-ID
/// binding is built by hand, without the critical "primary user ID"
/// subpacket that a plain `CertBuilder` adds: rpm 4.18 refuses to import keys
/// that carry it, and it also refuses keys with a separate signing subkey.
pub fn generate_key(uid: &str, algo: KeyAlgo, now: SystemTime) -> Result<Vec<u8>> {
    let mut key: Key<SecretParts, PrimaryRole> = match algo {
        KeyAlgo::Rsa4096 => Key4::generate_rsa(4096).map_err(sig_err)?.into(),
        KeyAlgo::Ed25519 => Key4::generate_ecc(true, Curve::Ed25519)
            .map_err(sig_err)?
            .into(),
    };
    key.set_creation_time(now).map_err(sig_err)?;
    let mut keypair = key.clone().into_keypair().map_err(sig_err)?;
    let userid = UserID::from(uid);
    let binding = SignatureBuilder::new(SignatureType::PositiveCertification)
        .set_signature_creation_time(now)
        .and_then(|b| b.set_key_flags(KeyFlags::empty().set_certification().set_signing()))
        .and_then(|b| {
            b.set_preferred_hash_algorithms(vec![HashAlgorithm::SHA512, HashAlgorithm::SHA256])
        })
        .and_then(|b| {
            b.set_preferred_symmetric_algorithms(vec![
                SymmetricAlgorithm::AES256,
                SymmetricAlgorithm::AES128,
            ])
        })
        .and_then(|b| b.set_features(Features::empty().set_seipdv1()))
        .map_err(sig_err)?
        .set_hash_algo(HashAlgorithm::SHA512)
        .sign_userid_binding(&mut keypair, key.parts_as_public(), &userid)
        .map_err(sig_err)?;
    let cert = Cert::from_packets(
        vec![openpgp::Packet::from(key), userid.into(), binding.into()].into_iter(),
    )
    .map_err(sig_err)?;
    cert.as_tsk().armored().to_vec().map_err(sig_err)
}

/// A loaded secret key, able to sign. Its `Debug` shows only the fingerprint.
#[derive(Clone)]
pub struct Signer {
    cert: Cert,
    keypair: KeyPair,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("fingerprint", &self.fingerprint())
            .finish_non_exhaustive()
    }
}

impl Signer {
    /// Reads an (armored or binary) transferable secret key.
    pub fn from_tsk(bytes: &[u8]) -> Result<Self> {
        let cert = Cert::from_bytes(bytes).map_err(sig_err)?;
        let policy = StandardPolicy::new();
        let key = cert
            .keys()
            .with_policy(&policy, None)
            .secret()
            .for_signing()
            .next()
            .ok_or_else(|| Error::Signing("the key has no usable secret signing key".into()))?;
        let keypair = key.key().clone().into_keypair().map_err(sig_err)?;
        Ok(Signer { cert, keypair })
    }

    /// Hex fingerprint of the certificate, upper case as gpg prints it.
    pub fn fingerprint(&self) -> String {
        self.cert.fingerprint().to_hex()
    }

    /// The public certificate, ASCII-armored.
    pub fn public_armored(&self) -> Result<Vec<u8>> {
        self.cert.armored().to_vec().map_err(sig_err)
    }

    /// The public certificate, binary (for `signed-by` keyrings and `gpgv --keyring`).
    pub fn public_binary(&self) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        self.cert.serialize(&mut out).map_err(sig_err)?;
        Ok(out)
    }

    fn sign_stream(
        &mut self,
        data: &mut dyn std::io::Read,
        capacity: usize,
        when: SystemTime,
        mode: Mode,
    ) -> Result<Vec<u8>> {
        let mut sink = Vec::with_capacity(1024 + capacity);
        {
            let message = Message::new(&mut sink);
            let message = if mode == Mode::DetachedArmored {
                Armorer::new(message)
                    .kind(openpgp::armor::Kind::Signature)
                    .build()
                    .map_err(sig_err)?
            } else {
                message
            };
            let builder = StreamSigner::new(message, self.keypair.clone())
                .map_err(sig_err)?
                .hash_algo(HashAlgorithm::SHA256)
                .map_err(sig_err)?
                .creation_time(when);
            let builder = match mode {
                Mode::Clear => builder.cleartext(),
                Mode::DetachedArmored | Mode::DetachedBinary => builder.detached(),
            };
            let mut writer = builder.build().map_err(sig_err)?;
            std::io::copy(data, &mut writer)?;
            writer.finalize().map_err(sig_err)?;
        }
        Ok(sink)
    }

    /// An armored detached signature (`Release.gpg`, `repomd.xml.asc`).
    pub fn detached_armored(&mut self, data: &[u8], when: SystemTime) -> Result<Vec<u8>> {
        self.sign_stream(&mut &data[..], 0, when, Mode::DetachedArmored)
    }

    /// A binary detached signature (an RPM header signature).
    pub fn detached_binary(&mut self, data: &[u8], when: SystemTime) -> Result<Vec<u8>> {
        self.sign_stream(&mut &data[..], 0, when, Mode::DetachedBinary)
    }

    /// A binary detached signature over everything `data` reads (an RPM's
    /// header and payload), streamed.
    pub fn detached_binary_of(
        &mut self,
        data: &mut dyn std::io::Read,
        when: SystemTime,
    ) -> Result<Vec<u8>> {
        self.sign_stream(data, 0, when, Mode::DetachedBinary)
    }

    /// Whether the signing key is RSA (its RPM header signatures go into
    /// the RSA slots) rather than DSA, ECDSA or EdDSA.
    pub fn is_rsa(&self) -> bool {
        #[allow(deprecated)] // RSAEncrypt and RSASign are still RSA keys.
        let rsa = matches!(
            self.keypair.public().pk_algo(),
            openpgp::types::PublicKeyAlgorithm::RSAEncryptSign
                | openpgp::types::PublicKeyAlgorithm::RSASign
                | openpgp::types::PublicKeyAlgorithm::RSAEncrypt
        );
        rsa
    }

    /// Upper-case hex of every handle that names this certificate's keys:
    /// fingerprints and key IDs of the primary key and its subkeys.
    pub fn key_handles(&self) -> Vec<String> {
        self.cert
            .keys()
            .flat_map(|k| [k.key().fingerprint().to_hex(), k.key().keyid().to_hex()])
            .collect()
    }

    /// A cleartext-signed message (`InRelease`).
    pub fn clearsign(&mut self, data: &[u8], when: SystemTime) -> Result<Vec<u8>> {
        self.sign_stream(&mut &data[..], data.len(), when, Mode::Clear)
    }
}

/// Upper-case hex of the issuers a binary signature packet names (issuer
/// fingerprint and key ID subpackets); empty if it is not a signature.
pub fn signature_issuers(packet: &[u8]) -> Vec<String> {
    use openpgp::Packet;
    match Packet::from_bytes(packet) {
        Ok(Packet::Signature(sig)) => sig.get_issuers().iter().map(|h| h.to_hex()).collect(),
        _ => Vec::new(),
    }
}

/// One armored detached signature holding the signatures of `old` and
/// `new` (armored or binary detached signatures), old ones first.
///
/// A mirror that switches a signed file and its signature with two writes
/// publishes this first: whichever of the two data files a client reads,
/// one signature in the file is good for it.
pub fn join_detached(old: &[u8], new: &[u8]) -> Result<Vec<u8>> {
    use openpgp::Packet;
    use openpgp::parse::PacketParser;
    let mut out = Vec::with_capacity(old.len() + new.len() + 64);
    {
        let mut w = openpgp::armor::Writer::new(&mut out, openpgp::armor::Kind::Signature)
            .map_err(sig_err)?;
        for part in [old, new] {
            let mut signatures = 0;
            for packet in openpgp::PacketPile::from_bytes(part)
                .map_err(sig_err)?
                .into_children()
            {
                let Packet::Signature(sig) = packet else {
                    return Err(Error::Signing(
                        "a detached signature holds something else".into(),
                    ));
                };
                Packet::Signature(sig).serialize(&mut w).map_err(sig_err)?;
                signatures += 1;
            }
            if signatures == 0 {
                return Err(Error::Signing("an empty detached signature".into()));
            }
        }
        w.finalize().map_err(sig_err)?;
    }
    let _ = PacketParser::from_bytes(&out).map_err(sig_err)?;
    Ok(out)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    DetachedArmored,
    DetachedBinary,
    Clear,
}

#[cfg(test)]
mod tests {
    use super::*;
    use openpgp::parse::stream::{
        DetachedVerifierBuilder, MessageLayer, MessageStructure, VerificationHelper,
    };

    struct Helper(Cert);
    impl VerificationHelper for Helper {
        fn get_certs(&mut self, _: &[openpgp::KeyHandle]) -> openpgp::Result<Vec<Cert>> {
            Ok(vec![self.0.clone()])
        }
        fn check(&mut self, structure: MessageStructure) -> openpgp::Result<()> {
            for layer in structure {
                if let MessageLayer::SignatureGroup { results } = layer
                    && results.iter().any(|r| r.is_ok())
                {
                    return Ok(());
                }
            }
            Err(anyhow_err("no valid signature"))
        }
    }
    fn anyhow_err(s: &str) -> openpgp::anyhow::Error {
        openpgp::anyhow::anyhow!(s.to_string())
    }

    #[test]
    fn detached_signature_verifies_and_tampering_fails() {
        let now = SystemTime::now();
        let tsk = generate_key("Test <test@example.org>", KeyAlgo::Ed25519, now).expect("key");
        let mut signer = Signer::from_tsk(&tsk).expect("load");
        let sig = signer.detached_binary(b"hello", now).expect("sign");
        let cert = Cert::from_bytes(&signer.public_binary().expect("pub")).expect("cert");
        let policy = StandardPolicy::new();
        let verify = |data: &[u8]| {
            let mut v = DetachedVerifierBuilder::from_bytes(&sig)
                .and_then(|b| b.with_policy(&policy, None, Helper(cert.clone())))
                .expect("verifier");
            v.verify_bytes(data).is_ok()
        };
        assert!(verify(b"hello"));
        assert!(!verify(b"hellO"));
        // The public export carries no secret material.
        let public = String::from_utf8(signer.public_armored().expect("pub")).expect("utf8");
        assert!(public.contains("BEGIN PGP PUBLIC KEY BLOCK"));
        assert!(format!("{signer:?}").contains(&signer.fingerprint()));
        // Joined with another signature, both data verify.
        let other = signer.detached_armored(b"world", now).expect("sign");
        let both = join_detached(&sig, &other).expect("join");
        for data in [&b"hello"[..], b"world"] {
            let mut v = DetachedVerifierBuilder::from_bytes(&both)
                .and_then(|b| b.with_policy(&policy, None, Helper(cert.clone())))
                .expect("verifier");
            assert!(v.verify_bytes(data).is_ok());
        }
        assert!(join_detached(b"not a signature", &other).is_err());
    }
}
