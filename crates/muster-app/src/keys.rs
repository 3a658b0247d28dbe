//! Access keys and the master key that seals their secrets at rest.
//!
//! SigV4 verification needs the secret itself (the signing key is derived from it per day,
//! region and service), so a one-way hash cannot be stored. Secrets are sealed with
//! ChaCha20-Poly1305 under a 256-bit master key kept outside the database (a file in the
//! data directory, or `MUSTER_MASTER_KEY`), with the access key id as associated data so a
//! sealed secret cannot be moved to another key's row.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use rand::RngCore;
use std::fmt;

const SEAL_VERSION: u8 = 1;
const NONCE_LEN: usize = 12;

/// The key that seals access-key secrets. Its `Debug` never shows the bytes.
#[derive(Clone)]
pub struct MasterKey([u8; 32]);

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(<redacted>)")
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SecretError {
    #[error("the master key must be 64 hexadecimal characters (32 bytes)")]
    BadMasterKey,
    #[error("a sealed secret could not be opened: wrong master key, or the row was altered")]
    Unseal,
}

impl MasterKey {
    pub fn generate() -> Self {
        let mut k = [0u8; 32];
        rand::rng().fill_bytes(&mut k);
        MasterKey(k)
    }

    pub fn from_hex(s: &str) -> Result<Self, SecretError> {
        let bytes = hex::decode(s.trim()).map_err(|_| SecretError::BadMasterKey)?;
        let arr: [u8; 32] = bytes.try_into().map_err(|_| SecretError::BadMasterKey)?;
        Ok(MasterKey(arr))
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// The key for activation codes and links, derived from this one.
    pub fn code_key(&self) -> crate::codes::CodeKey {
        crate::codes::CodeKey::derive(&self.0)
    }

    fn cipher(&self) -> ChaCha20Poly1305 {
        ChaCha20Poly1305::new(Key::from_slice(&self.0))
    }

    /// Seals `secret`, bound to `access_key_id`.
    pub fn seal(&self, access_key_id: &str, secret: &str) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let ct = self
            .cipher()
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: secret.as_bytes(),
                    aad: access_key_id.as_bytes(),
                },
            )
            .expect("ChaCha20-Poly1305 encryption of a short message cannot fail");
        let mut out = Vec::with_capacity(1 + NONCE_LEN + ct.len());
        out.push(SEAL_VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        out
    }

    /// Opens what [`MasterKey::seal`] produced for the same access key id.
    pub fn open(&self, access_key_id: &str, sealed: &[u8]) -> Result<String, SecretError> {
        if sealed.len() < 1 + NONCE_LEN || sealed[0] != SEAL_VERSION {
            return Err(SecretError::Unseal);
        }
        let (nonce, ct) = sealed[1..].split_at(NONCE_LEN);
        let pt = self
            .cipher()
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ct,
                    aad: access_key_id.as_bytes(),
                },
            )
            .map_err(|_| SecretError::Unseal)?;
        String::from_utf8(pt).map_err(|_| SecretError::Unseal)
    }
}

/// A new access key pair. `Debug` hides the secret.
pub struct NewAccessKey {
    pub access_key_id: String,
    pub secret_access_key: String,
}

impl fmt::Debug for NewAccessKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewAccessKey")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .finish()
    }
}

/// Generates a key pair shaped like AWS's: a 20-character id starting `AKIA` (upper-case
/// letters and digits 2-7) and a 40-character secret, both from a CSPRNG.
pub fn generate_access_key() -> NewAccessKey {
    const ID_CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    const SECRET_CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut rng = rand::rng();
    let mut pick = |alphabet: &[u8], n: usize| -> String {
        // Both alphabets have a power-of-two length, so masking is unbiased.
        debug_assert!(alphabet.len().is_power_of_two());
        let mut buf = vec![0u8; n];
        rng.fill_bytes(&mut buf);
        buf.iter()
            .map(|b| alphabet[(*b as usize) & (alphabet.len() - 1)] as char)
            .collect()
    };
    NewAccessKey {
        access_key_id: format!("AKIA{}", pick(ID_CHARS, 16)),
        secret_access_key: pick(SECRET_CHARS, 40),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_round_trip_and_binding() {
        let mk = MasterKey::generate();
        let sealed = mk.seal("AKIAAAAA", "s3cret");
        assert!(!sealed.windows(6).any(|w| w == b"s3cret"));
        assert_eq!(mk.open("AKIAAAAA", &sealed).unwrap(), "s3cret");
        assert_eq!(mk.open("AKIABBBB", &sealed), Err(SecretError::Unseal));
        assert_eq!(
            MasterKey::generate().open("AKIAAAAA", &sealed),
            Err(SecretError::Unseal)
        );
        let mut tampered = sealed.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert_eq!(mk.open("AKIAAAAA", &tampered), Err(SecretError::Unseal));
    }

    #[test]
    fn master_key_hex() {
        let mk = MasterKey::generate();
        let again = MasterKey::from_hex(&mk.to_hex()).unwrap();
        assert_eq!(again.0, mk.0);
        assert!(MasterKey::from_hex("abcd").is_err());
        assert!(format!("{mk:?}").contains("redacted"));
    }

    #[test]
    fn access_key_shape() {
        let k = generate_access_key();
        assert_eq!(k.access_key_id.len(), 20);
        assert!(k.access_key_id.starts_with("AKIA"));
        assert_eq!(k.secret_access_key.len(), 40);
        assert_ne!(generate_access_key().access_key_id, k.access_key_id);
        assert!(!format!("{k:?}").contains(&k.secret_access_key));
    }
}
