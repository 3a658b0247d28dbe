//! NextToken: an opaque, versioned cursor. It records where a keyset listing resumes and
//! a fingerprint of the filters it was issued for, so a token used with other filters is
//! refused instead of silently skipping items.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use muster_store::After;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Serialize, Deserialize)]
struct Cursor {
    v: u8,
    /// Which listing and which filters.
    f: String,
    /// Alias keyset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    a: Option<String>,
    /// Created-at keyset (ms, id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    c: Option<(i64, Uuid)>,
}

/// Encodes a cursor that resumes strictly after `after`.
pub fn encode(fingerprint: &str, after: &After) -> String {
    let (a, c) = match after {
        After::Start => (None, None),
        After::Alias(s) => (Some(s.clone()), None),
        After::Created { ms, id } => (None, Some((*ms, *id))),
    };
    let cur = Cursor {
        v: 1,
        f: fingerprint.to_owned(),
        a,
        c,
    };
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(&cur).expect("cursor serialises"))
}

/// Decodes a token issued by [`encode`] with the same fingerprint. `None` (no token) means
/// the start of the listing.
pub fn decode(fingerprint: &str, token: Option<&str>) -> Result<After, &'static str> {
    let Some(token) = token else {
        return Ok(After::Start);
    };
    if token.is_empty() {
        return Ok(After::Start);
    }
    let bytes = URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| "is not a NextToken this server issued")?;
    let cur: Cursor =
        serde_json::from_slice(&bytes).map_err(|_| "is not a NextToken this server issued")?;
    if cur.v != 1 {
        return Err("is not a NextToken this server issued");
    }
    if cur.f != fingerprint {
        return Err("was issued for a different request; repeat the same filters with it");
    }
    Ok(match (cur.a, cur.c) {
        (Some(a), None) => After::Alias(a),
        (None, Some((ms, id))) => After::Created { ms, id },
        (None, None) => After::Start,
        _ => return Err("is not a NextToken this server issued"),
    })
}

/// Cuts `rows` (fetched with a limit of `limit + 1`) to one page and issues the token that
/// resumes after its last row, if more rows exist.
pub fn page<T>(
    mut rows: Vec<T>,
    limit: u32,
    fingerprint: &str,
    key: impl Fn(&T) -> After,
) -> (Vec<T>, Option<String>) {
    if rows.len() <= limit as usize {
        return (rows, None);
    }
    rows.truncate(limit as usize);
    let next = rows.last().map(|last| encode(fingerprint, &key(last)));
    (rows, next)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let id = Uuid::new_v4();
        for after in [
            After::Start,
            After::Alias("akua".into()),
            After::Created { ms: 17, id },
        ] {
            let t = encode("f1", &after);
            assert!(
                t.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            );
            assert_eq!(decode("f1", Some(&t)).unwrap(), after);
            assert!(decode("f2", Some(&t)).is_err());
        }
        assert_eq!(decode("f", None).unwrap(), After::Start);
        assert!(decode("f", Some("garbage!")).is_err());
        assert!(decode("f", Some("eyJ2IjoyfQ")).is_err());
    }
}
