//! The tokens of Muster's acknowledgement (`/a/…`) and unsubscribe (`/u/…`) links, computed
//! here from the construction written in docs/providers.md ("Links and codes") with the
//! `hmac` crate directly, so tests compare the links a server sends with an independent
//! computation, never with Muster's own functions.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The master key the server created in its data directory (`master.key`, 64 hex digits).
pub fn master_key(s: &super::TestServer) -> Vec<u8> {
    let text = std::fs::read_to_string(s.data_dir().join("master.key")).expect("master.key");
    hex::decode(text.trim()).expect("master.key is hex")
}

/// `MAC(p1, p2, …)`: HMAC-SHA256 under `K = HMAC-SHA256(master, "muster/codes/v1")` of each
/// part preceded by its length as a big-endian u64.
fn mac(master: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut k = Hmac::<Sha256>::new_from_slice(master).unwrap();
    k.update(b"muster/codes/v1");
    let k = k.finalize().into_bytes();
    let mut m = Hmac::<Sha256>::new_from_slice(&k).unwrap();
    for p in parts {
        m.update(&(p.len() as u64).to_be_bytes());
        m.update(p);
    }
    m.finalize().into_bytes().to_vec()
}

/// `base64url(address) "." base64url(MAC("unsubscribe", address)[..16])`.
pub fn unsubscribe_token(master: &[u8], address: &str) -> String {
    let tag = mac(master, &[b"unsubscribe", address.as_bytes()]);
    format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(address),
        URL_SAFE_NO_PAD.encode(&tag[..16])
    )
}

/// `base64url(page id ‖ expiry ms (big-endian i64) ‖ MAC("ack", page id ‖ expiry)[..16])`.
pub fn ack_token(master: &[u8], page_id: uuid::Uuid, expires_ms: i64) -> String {
    let mut body = page_id.as_bytes().to_vec();
    body.extend_from_slice(&expires_ms.to_be_bytes());
    let tag = mac(master, &[b"ack", &body]);
    body.extend_from_slice(&tag[..16]);
    URL_SAFE_NO_PAD.encode(body)
}

/// The 6-digit accept code of a page: `MAC("accept", page id)[..8]` as a big-endian number,
/// modulo 1,000,000.
pub fn accept_code(master: &[u8], page_id: uuid::Uuid) -> String {
    let tag = mac(master, &[b"accept", page_id.as_bytes()]);
    let n = u64::from_be_bytes(tag[..8].try_into().unwrap());
    format!("{:06}", n % 1_000_000)
}
