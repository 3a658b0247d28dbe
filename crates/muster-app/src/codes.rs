//! Secrets people type or click: device activation codes and one-click unsubscribe tokens.
//!
//! Activation codes are 6 digits drawn uniformly from a CSPRNG. Only a keyed hash is stored
//! (HMAC-SHA256 under a key derived from the master key, bound to the channel), so a copy of
//! the database does not reveal codes, and a 6-digit space cannot be searched offline without
//! the key. Comparisons are constant-time.
//!
//! The exact construction (docs/providers.md, "Links and codes", says the same; the tests
//! check it against values computed with Python's `hmac` and OpenSSL):
//!
//! - `K = HMAC-SHA256(master key (32 bytes), "muster/codes/v1")`;
//! - `MAC(p1, p2, …) = HMAC-SHA256(K, len(p1) ‖ p1 ‖ len(p2) ‖ p2 ‖ …)`, each `len` the part's
//!   byte length as a big-endian u64;
//! - unsubscribe token: `b64url(address) "." b64url(MAC("unsubscribe", address)[..16])`;
//! - acknowledgement token: `b64url(page id (16 bytes) ‖ expiry (ms, big-endian i64) ‖
//!   MAC("ack", page id ‖ expiry)[..16])`;
//! - accept code: `big-endian u64 of MAC("accept", page id)[..8] mod 1000000`, 6 digits;
//! - stored activation code: `hex(MAC("activation", channel id (16 bytes), code))`;
//!
//! where `b64url` is base64url without padding (RFC 4648 §5) and ids are UUID bytes.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use rand::Rng;
use sha2::Sha256;
use subtle::ConstantTimeEq;
use uuid::Uuid;

type HmacSha256 = Hmac<Sha256>;

/// A key for codes and links, derived from the master key for this one purpose.
#[derive(Clone)]
pub struct CodeKey([u8; 32]);

impl std::fmt::Debug for CodeKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CodeKey(<redacted>)")
    }
}

impl CodeKey {
    /// Derives the key from master-key bytes (HMAC with a fixed label, so it differs from
    /// every other use of the master key).
    pub fn derive(master: &[u8]) -> Self {
        let mut mac = HmacSha256::new_from_slice(master).expect("HMAC takes any key length");
        mac.update(b"muster/codes/v1");
        CodeKey(mac.finalize().into_bytes().into())
    }

    fn mac(&self, parts: &[&[u8]]) -> [u8; 32] {
        let mut mac = HmacSha256::new_from_slice(&self.0).expect("HMAC takes any key length");
        for p in parts {
            mac.update(&(p.len() as u64).to_be_bytes());
            mac.update(p);
        }
        mac.finalize().into_bytes().into()
    }

    /// The stored form of an activation code for a channel (hex).
    pub fn activation_hash(&self, channel_id: Uuid, code: &str) -> String {
        hex::encode(self.mac(&[b"activation", channel_id.as_bytes(), code.as_bytes()]))
    }

    /// Whether `code` is the one whose hash is `stored`, in constant time.
    pub fn activation_matches(&self, channel_id: Uuid, code: &str, stored: &str) -> bool {
        let given = self.activation_hash(channel_id, code);
        given.as_bytes().ct_eq(stored.as_bytes()).into()
    }

    /// A token for the one-click unsubscribe link of `address`: the address and a MAC, so
    /// no state is needed and links keep working.
    pub fn unsubscribe_token(&self, address: &str) -> String {
        let tag = self.mac(&[b"unsubscribe", address.as_bytes()]);
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(address.as_bytes()),
            URL_SAFE_NO_PAD.encode(&tag[..16])
        )
    }

    /// The address a token was issued for, if the token is genuine.
    pub fn unsubscribe_address(&self, token: &str) -> Option<String> {
        let (a, t) = token.split_once('.')?;
        let address = String::from_utf8(URL_SAFE_NO_PAD.decode(a).ok()?).ok()?;
        let tag = URL_SAFE_NO_PAD.decode(t).ok()?;
        let want = self.mac(&[b"unsubscribe", address.as_bytes()]);
        (tag.len() == 16 && bool::from(tag.ct_eq(&want[..16]))).then_some(address)
    }

    /// A page's 6-digit accept code: derived from the page id under the key, so it needs no
    /// storage, every re-send of the page carries the same code, and it cannot be guessed
    /// from the page id without the key.
    pub fn accept_code(&self, page_id: Uuid) -> String {
        let tag = self.mac(&[b"accept", page_id.as_bytes()]);
        let n = u64::from_be_bytes(tag[..8].try_into().unwrap_or([0; 8]));
        format!("{:06}", n % 1_000_000)
    }

    /// Whether `code` (spaces around it ignored) is the page's accept code, in constant time.
    pub fn accept_matches(&self, page_id: Uuid, code: &str) -> bool {
        let want = self.accept_code(page_id);
        want.as_bytes().ct_eq(code.trim().as_bytes()).into()
    }

    /// The token of a page's acknowledgement link, valid until `expires_ms`: the page id,
    /// the expiry and a MAC over both.
    pub fn ack_token(&self, page_id: Uuid, expires_ms: i64) -> String {
        let mut body = Vec::with_capacity(24);
        body.extend_from_slice(page_id.as_bytes());
        body.extend_from_slice(&expires_ms.to_be_bytes());
        let tag = self.mac(&[b"ack", &body]);
        body.extend_from_slice(&tag[..16]);
        URL_SAFE_NO_PAD.encode(body)
    }

    /// The page and expiry of a genuine acknowledgement token (the caller checks the expiry).
    pub fn open_ack_token(&self, token: &str) -> Option<(Uuid, i64)> {
        let raw = URL_SAFE_NO_PAD.decode(token).ok()?;
        if raw.len() != 40 {
            return None;
        }
        let (body, tag) = raw.split_at(24);
        let want = self.mac(&[b"ack", body]);
        if !bool::from(tag.ct_eq(&want[..16])) {
            return None;
        }
        let page = Uuid::from_slice(&body[..16]).ok()?;
        let expires = i64::from_be_bytes(body[16..24].try_into().ok()?);
        Some((page, expires))
    }
}

/// A new 6-digit activation code, uniform over 000000..=999999.
pub fn new_activation_code() -> String {
    format!("{:06}", rand::rng().random_range(0..1_000_000u32))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fixed vector: master key bytes 00 01 … 1f. The expected values were computed
    /// outside Muster with Python 3's `hmac`/`hashlib`/`base64` following the construction in
    /// the module docs (`K` also with `openssl dgst -sha256 -mac HMAC -macopt
    /// hexkey:000102…1f` over "muster/codes/v1": 2c4a1528…0bc2).
    #[test]
    fn link_and_code_macs_match_the_published_vector() {
        let master: Vec<u8> = (0u8..32).collect();
        let k = CodeKey::derive(&master);
        assert_eq!(
            hex::encode(k.0),
            "2c4a1528607b6acfbdbf3fe402a9bc7393619f1e45f6a0bfc5fc63bacd430bc2"
        );
        assert_eq!(
            k.unsubscribe_token("akua@example.com"),
            "YWt1YUBleGFtcGxlLmNvbQ.0yu8W7Sbe5VDtTMbdyW2zQ"
        );
        let page = Uuid::parse_str("0190c5a8-1234-7abc-8def-0123456789ab").unwrap();
        // 2026-01-01T00:00:00Z in milliseconds.
        let expires = 1_767_225_600_000;
        let ack = "AZDFqBI0eryN7wEjRWeJqwAAAZt22qgAuQ6Jq8NY7tB_vsg-2ikawA";
        assert_eq!(k.ack_token(page, expires), ack);
        assert_eq!(k.open_ack_token(ack), Some((page, expires)));
        assert_eq!(k.accept_code(page), "232503");
        let channel = Uuid::parse_str("0190c5a8-0000-7000-8000-00000000c4a1").unwrap();
        assert_eq!(
            k.activation_hash(channel, "123456"),
            "bf22b7d649798e7bd01ee000696277dd3559df37a10687ad2574b773ed51d8b3"
        );
    }

    #[test]
    fn codes_are_six_digits_and_vary() {
        let codes: std::collections::HashSet<String> =
            (0..200).map(|_| new_activation_code()).collect();
        assert!(codes.len() > 190);
        assert!(
            codes
                .iter()
                .all(|c| c.len() == 6 && c.bytes().all(|b| b.is_ascii_digit()))
        );
    }

    #[test]
    fn activation_hash_is_keyed_and_bound_to_the_channel() {
        let k = CodeKey::derive(b"master");
        let ch = Uuid::new_v4();
        let h = k.activation_hash(ch, "123456");
        assert!(k.activation_matches(ch, "123456", &h));
        assert!(!k.activation_matches(ch, "123457", &h));
        assert!(!k.activation_matches(Uuid::new_v4(), "123456", &h));
        assert!(!CodeKey::derive(b"other").activation_matches(ch, "123456", &h));
        assert!(!h.contains("123456"));
    }

    #[test]
    fn unsubscribe_tokens() {
        let k = CodeKey::derive(b"master");
        let t = k.unsubscribe_token("akua@example.com");
        assert_eq!(
            k.unsubscribe_address(&t).as_deref(),
            Some("akua@example.com")
        );
        let other = k.unsubscribe_token("bob@example.com");
        let forged = format!(
            "{}.{}",
            t.split('.').next().unwrap(),
            other.split('.').nth(1).unwrap()
        );
        assert_eq!(k.unsubscribe_address(&forged), None);
        assert_eq!(k.unsubscribe_address("garbage"), None);
        assert_eq!(CodeKey::derive(b"x").unsubscribe_address(&t), None);
    }

    #[test]
    fn accept_codes_and_ack_tokens() {
        let k = CodeKey::derive(b"master");
        let p = Uuid::new_v4();
        let code = k.accept_code(p);
        assert_eq!(code.len(), 6);
        assert_eq!(code, k.accept_code(p), "stable across re-sends");
        assert!(k.accept_matches(p, &format!(" {code} ")));
        assert!(!k.accept_matches(p, "1234567"));
        assert_ne!(CodeKey::derive(b"other").accept_code(p), code);
        let t = k.ack_token(p, 1_000);
        assert_eq!(k.open_ack_token(&t), Some((p, 1_000)));
        let mut forged = URL_SAFE_NO_PAD.decode(&t).unwrap();
        forged[20] ^= 1; // a later expiry
        assert_eq!(k.open_ack_token(&URL_SAFE_NO_PAD.encode(forged)), None);
        assert_eq!(CodeKey::derive(b"x").open_ack_token(&t), None);
        assert_eq!(k.open_ack_token("garbage"), None);
    }
}
