//! Sessions and CSRF.
//!
//! - A session is a random 256-bit token in an HttpOnly, SameSite=Lax cookie (Secure, and
//!   named with the `__Host-` prefix, when the public URL is https). The store keeps only its
//!   SHA-256, so a database leak gives no usable cookie. It expires after
//!   [`ConsoleLimits::session_idle_ms`](crate::ConsoleLimits) without use, and
//!   [`ConsoleLimits::session_max_ms`](crate::ConsoleLimits) after sign-in whatever the use.
//! - Every session has a random CSRF token, rendered into a hidden `csrf_token` field of every
//!   form and into an `X-CSRF-Token` header of every htmx request (`hx-headers` on `<body>`).
//!   `require_session` checks it, in constant time, on every request that is not GET or
//!   HEAD: a missing or wrong token is 403 before any handler runs, so nothing changes.
//! - The sign-in form, which has no session yet, carries a token that must match a
//!   `muster_login` cookie (double submit), so another site cannot sign a browser in to an
//!   account of its choosing.

use crate::Console;
use crate::pages;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use muster_store::{SessionRecord, UserRecord};
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::net::IpAddr;
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// The form field and the header that carry the CSRF token.
pub const CSRF_FIELD: &str = "csrf_token";
pub const CSRF_HEADER: &str = "x-csrf-token";
/// Largest form body the CSRF check reads (larger urlencoded posts are refused).
const MAX_FORM_BYTES: usize = 256 * 1024;

/// 32 random bytes (256 bits) from the operating system's CSPRNG (through `rand`'s
/// thread-local generator, seeded from it), base64url without padding (43 characters).
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Lower-case hex SHA-256 of a session token: what the store keeps.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Compares two secrets in constant time (for equal lengths; the length is not secret).
pub fn same_secret(a: &str, b: &str) -> bool {
    !a.is_empty() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// Whether `s` looks like one of our tokens (so a cookie value is worth a database lookup).
fn well_formed(s: &str) -> bool {
    s.len() == 43
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The value of cookie `name` in the request's `Cookie` headers, if it is a well-formed token.
pub(crate) fn cookie_token<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim_matches('"'))
        .filter(|v| well_formed(v))
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Lax, Path=/, Secure when `secure`. `None` as
/// the value deletes the cookie. Without Max-Age it lasts until the browser closes (the
/// server-side expiry is what counts).
pub(crate) fn set_cookie(name: &str, value: Option<&str>, secure: bool) -> HeaderValue {
    let mut c = match value {
        Some(v) => format!("{name}={v}; Path=/; HttpOnly; SameSite=Lax"),
        None => format!("{name}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0"),
    };
    if secure {
        c.push_str("; Secure");
    }
    HeaderValue::from_str(&c).expect("cookie names and tokens are ASCII")
}

/// The reverse proxies whose `X-Forwarded-For` is believed (the `trusted_proxies` setting):
/// addresses and CIDR blocks. Empty (the default): the header is ignored, and the sign-in
/// limits count the connection's address.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<(IpAddr, u8)>);

impl TrustedProxies {
    /// Parses `10.0.0.0/8`, `192.0.2.7`, `::1`, `fd00::/8`… one per item.
    pub fn parse<'a>(items: impl IntoIterator<Item = &'a str>) -> Result<TrustedProxies, String> {
        let mut out = Vec::new();
        for item in items.into_iter().map(str::trim).filter(|s| !s.is_empty()) {
            let (addr, bits) = match item.split_once('/') {
                Some((a, b)) => (a, Some(b)),
                None => (item, None),
            };
            let ip: IpAddr = addr
                .parse()
                .map_err(|_| format!("{item:?} is not an IP address or CIDR block"))?;
            let max = if ip.is_ipv4() { 32 } else { 128 };
            let bits = match bits {
                None => max,
                Some(b) => b
                    .parse::<u8>()
                    .ok()
                    .filter(|b| *b <= max)
                    .ok_or_else(|| format!("{item:?}: the prefix length must be 0 to {max}"))?,
            };
            out.push((ip, bits));
        }
        Ok(TrustedProxies(out))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `ip` is one of the proxies (an IPv4-mapped IPv6 address counts as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.0
            .iter()
            .any(|&(net, bits)| match (canonical(net), ip) {
                (IpAddr::V4(n), IpAddr::V4(a)) => {
                    let mask = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
                    u32::from(n) & mask == u32::from(a) & mask
                }
                (IpAddr::V6(n), IpAddr::V6(a)) => {
                    let mask = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
                    u128::from(n) & mask == u128::from(a) & mask
                }
                _ => false,
            })
    }

    /// The client's address: the connection's, unless it comes from a trusted proxy; then
    /// the nearest address of `X-Forwarded-For` (read from the right, as each proxy appends
    /// the address it was reached from) that is not a trusted proxy itself. An unparsable
    /// entry stops the walk at the last address believed.
    pub fn client_ip(&self, peer: IpAddr, forwarded_for: &[&str]) -> IpAddr {
        if !self.contains(peer) {
            return peer;
        }
        let mut client = peer;
        let hops = forwarded_for
            .iter()
            .flat_map(|h| h.split(','))
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>();
        for hop in hops.iter().rev() {
            match hop.parse::<IpAddr>() {
                Ok(ip) => {
                    client = ip;
                    if !self.contains(ip) {
                        break;
                    }
                }
                Err(_) => break,
            }
        }
        client
    }
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The key the per-address sign-in limit counts by: the IPv4 address, or the /64 prefix of
/// an IPv6 address (one client usually has a whole /64).
pub fn client_key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

/// The signed-in user of a request that passed `require_session` (a request extension).
#[derive(Debug, Clone)]
pub struct CurrentUser {
    pub user: UserRecord,
    pub session: SessionRecord,
}

impl CurrentUser {
    pub fn csrf_token(&self) -> &str {
        &self.session.csrf_token
    }
}

/// Whether the request came from htmx (it then gets `HX-Redirect` rather than a redirect
/// that htmx would follow and swap into the page).
pub(crate) fn is_htmx(headers: &HeaderMap) -> bool {
    headers.get("hx-request").is_some_and(|v| v == "true")
}

/// Looks up the live session of the request's cookie, touching it when it was last seen more
/// than [`ConsoleLimits::touch_every_ms`](crate::ConsoleLimits) ago.
pub(crate) async fn current_session(
    console: &Console,
    headers: &HeaderMap,
) -> Result<Option<CurrentUser>, muster_store::StoreError> {
    let Some(token) = cookie_token(headers, console.session_cookie()) else {
        return Ok(None);
    };
    let now = console.clock.now_ms();
    let hash = token_hash(token);
    let Some((mut session, user)) = console.store.get_session(&hash, now).await? else {
        return Ok(None);
    };
    let limits = &console.limits;
    if now - session.last_seen_ms >= limits.touch_every_ms {
        let expires =
            (now + limits.session_idle_ms).min(session.created_ms + limits.session_max_ms);
        if console.store.touch_session(&hash, now, expires).await? {
            session.last_seen_ms = now;
            session.expires_ms = expires;
        }
    }
    Ok(Some(CurrentUser { user, session }))
}

/// Middleware of every page behind sign-in. Without a live session: GET and HEAD go to the
/// sign-in page (which brings them back after), anything else is 403. With one: any method
/// other than GET and HEAD must carry the session's CSRF token (the `X-CSRF-Token` header,
/// or the `csrf_token` field of an urlencoded form), else 403 and the handler does not run.
/// The handler finds the [`CurrentUser`] in the request's extensions.
pub(crate) async fn require_session(
    State(console): State<Arc<Console>>,
    req: Request,
    next: Next,
) -> Response {
    let safe = matches!(*req.method(), Method::GET | Method::HEAD);
    let current = match current_session(&console, req.headers()).await {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "console: session lookup failed");
            return pages::error_page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Try again",
                "The console cannot reach its database right now. Try again in a moment.",
            );
        }
    };
    let Some(current) = current else {
        if !safe {
            return pages::error_page(
                StatusCode::FORBIDDEN,
                "Signed out",
                "You are not signed in, or your session has ended. Sign in again, then repeat \
                 what you were doing.",
            );
        }
        let here = req
            .uri()
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/contacts");
        let to = format!(
            "/login?{}",
            serde_urlencoded::to_string([("next", here)]).unwrap_or_default()
        );
        return if is_htmx(req.headers()) {
            let mut r = StatusCode::OK.into_response();
            r.headers_mut().insert(
                "hx-redirect",
                HeaderValue::from_str(&to).unwrap_or(HeaderValue::from_static("/login")),
            );
            r
        } else {
            pages::see_other(&to)
        };
    };
    let mut req = req;
    if !safe {
        let (checked, ok) = csrf_ok(req, current.csrf_token()).await;
        if !ok {
            tracing::warn!(path = %checked.uri().path(), "console: POST without a valid CSRF token refused");
            return pages::error_page(
                StatusCode::FORBIDDEN,
                "Form expired",
                "This form could not be checked: its security token is missing or out of \
                 date. Reload the page and try again.",
            );
        }
        req = checked;
    }
    req.extensions_mut().insert(current);
    next.run(req).await
}

/// Checks the request's CSRF token against `expected`; gives the request back (its body
/// restored if it was read) and the verdict.
async fn csrf_ok(req: Request, expected: &str) -> (Request, bool) {
    if let Some(v) = req.headers().get(CSRF_HEADER) {
        let ok = v.to_str().is_ok_and(|v| same_secret(v, expected));
        return (req, ok);
    }
    let is_form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return (req, false);
    }
    let (parts, body) = req.into_parts();
    let bytes = match axum::body::to_bytes(body, MAX_FORM_BYTES).await {
        Ok(b) => b,
        Err(_) => return (Request::from_parts(parts, Body::empty()), false),
    };
    let ok = serde_urlencoded::from_bytes::<Vec<(String, String)>>(&bytes).is_ok_and(|fields| {
        fields
            .iter()
            .find(|(k, _)| k == CSRF_FIELD)
            .is_some_and(|(_, v)| same_secret(v, expected))
    });
    (Request::from_parts(parts, Body::from(bytes)), ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_256_bits_and_hashed() {
        let a = random_token();
        assert_eq!(a.len(), 43);
        assert!(well_formed(&a));
        assert_ne!(a, random_token());
        let h = token_hash(&a);
        assert_eq!(h.len(), 64);
        assert_eq!(h, token_hash(&a));
    }

    #[test]
    fn secrets_compare_exactly() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "abcd"));
        assert!(!same_secret("", ""));
    }

    #[test]
    fn cookies_are_found_by_name() {
        let t = random_token();
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
            HeaderValue::from_str(&format!("a=1; muster_session={t}; b=2")).unwrap(),
        );
        assert_eq!(cookie_token(&h, "muster_session"), Some(t.as_str()));
        assert_eq!(cookie_token(&h, "a"), None); // not a token
        assert_eq!(cookie_token(&h, "other"), None);
        let set = set_cookie("__Host-muster_session", Some(&t), true);
        let set = set.to_str().unwrap();
        assert!(set.contains("HttpOnly") && set.contains("SameSite=Lax"));
        assert!(set.ends_with("; Secure"));
        assert!(set.starts_with("__Host-muster_session="));
        assert!(set.contains("Path=/"));
        let gone = set_cookie("muster_session", None, false);
        assert!(gone.to_str().unwrap().contains("Max-Age=0"));
        assert!(!gone.to_str().unwrap().contains("Secure"));
    }

    #[test]
    fn addresses_are_keyed_per_client() {
        assert_eq!(client_key("192.0.2.7".parse().unwrap()), "192.0.2.7");
        assert_eq!(client_key("::ffff:192.0.2.7".parse().unwrap()), "192.0.2.7");
        assert_eq!(
            client_key("2001:db8:1:2:3:4:5:6".parse().unwrap()),
            "2001:db8:1:2::/64"
        );
        assert_eq!(
            client_key("2001:db8:1:2:ffff::1".parse().unwrap()),
            "2001:db8:1:2::/64"
        );
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn trusted_proxies_match_addresses_and_blocks_on_both_sides_of_the_edge() {
        let t = TrustedProxies::parse(["10.1.0.0/16", " 192.0.2.7 ", "fd00::/8", ""]).unwrap();
        assert!(t.contains(ip("10.1.0.0")) && t.contains(ip("10.1.255.255")));
        assert!(!t.contains(ip("10.2.0.0")) && !t.contains(ip("10.0.255.255")));
        assert!(t.contains(ip("192.0.2.7")) && !t.contains(ip("192.0.2.8")));
        assert!(t.contains(ip("fdff::1")) && !t.contains(ip("fe00::1")));
        // The IPv4-mapped form of a trusted IPv4 address is trusted.
        assert!(t.contains(ip("::ffff:192.0.2.7")));
        assert!(
            TrustedProxies::parse(["0.0.0.0/0"])
                .unwrap()
                .contains(ip("203.0.113.9"))
        );
        assert!(TrustedProxies::parse(["10.0.0.0/33"]).is_err());
        assert!(TrustedProxies::parse(["proxy.example.com"]).is_err());
        assert!(TrustedProxies::default().is_empty());
    }

    #[test]
    fn the_client_is_the_nearest_untrusted_forwarded_address() {
        let t = TrustedProxies::parse(["127.0.0.1", "10.0.0.0/8"]).unwrap();
        // From a trusted proxy: the right-most address not itself a proxy.
        assert_eq!(
            t.client_ip(ip("127.0.0.1"), &["198.51.100.1, 203.0.113.5, 10.0.0.2"]),
            ip("203.0.113.5")
        );
        // Several headers are one list.
        assert_eq!(
            t.client_ip(ip("127.0.0.1"), &["198.51.100.1", "203.0.113.5"]),
            ip("203.0.113.5")
        );
        // Not from a proxy: the header is the client's own claim, ignored.
        assert_eq!(
            t.client_ip(ip("203.0.113.9"), &["198.51.100.1"]),
            ip("203.0.113.9")
        );
        // No header, or garbage: the last address believed.
        assert_eq!(t.client_ip(ip("127.0.0.1"), &[]), ip("127.0.0.1"));
        assert_eq!(
            t.client_ip(ip("127.0.0.1"), &["198.51.100.1, nonsense, 10.0.0.3"]),
            ip("10.0.0.3")
        );
        // Nobody trusted: the connection's address, whatever the header says.
        assert_eq!(
            TrustedProxies::default().client_ip(ip("127.0.0.1"), &["198.51.100.1"]),
            ip("127.0.0.1")
        );
    }
}
