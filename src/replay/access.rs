//! Who may open a recorded lesson: signed, expiring replay URLs.
//!
//! A replay URL carries `exp=<unix seconds>&sig=<base64url HMAC-SHA256>` over the
//! lesson's scope (`<class>/<lesson>`) and the expiry, so one signature opens every
//! playlist, segment and export of that one lesson and nothing else. The key is derived
//! from the server's token secret (domain-separated from join tokens).
//!
//! Invariants:
//! - Signatures are compared in constant time (`hmac`'s `verify_slice`).
//! - An expired, malformed or foreign signature is refused with a reason; nothing here
//!   panics on any query string.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Longest accepted signature (base64url of 32 bytes is 43 characters).
const MAX_SIG_LEN: usize = 64;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AccessError {
    #[error("a replay token or signed link is required")]
    Missing,
    #[error("the replay link has expired")]
    Expired,
    #[error("the replay link is not valid for this lesson")]
    BadSignature,
}

/// Signs and checks replay URLs.
#[derive(Clone)]
pub struct ReplaySigner {
    key: [u8; 32],
}

/// The query parameters of a signed URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    pub exp: i64,
    pub sig: String,
}

impl Signed {
    /// `exp=..&sig=..`, to append after `?`.
    pub fn query(&self) -> String {
        format!("exp={}&sig={}", self.exp, self.sig)
    }
}

impl ReplaySigner {
    pub fn new(token_secret: &str) -> ReplaySigner {
        let mut mac = mac_with(token_secret.as_bytes());
        mac.update(b"classcast replay url key v1");
        ReplaySigner { key: mac.finalize().into_bytes().into() }
    }

    /// A signature for `scope` valid until `exp` (unix seconds).
    pub fn sign(&self, scope: &str, exp: i64) -> Signed {
        let tag = self.mac(scope, exp).finalize().into_bytes();
        Signed { exp, sig: URL_SAFE_NO_PAD.encode(tag) }
    }

    /// Checks `exp`/`sig` (as given in a query string) for `scope` at `now`.
    pub fn verify(&self, scope: &str, exp: Option<&str>, sig: Option<&str>, now: i64) -> Result<(), AccessError> {
        let (Some(exp), Some(sig)) = (exp, sig) else { return Err(AccessError::Missing) };
        let exp: i64 = exp.parse().map_err(|_| AccessError::BadSignature)?;
        if sig.len() > MAX_SIG_LEN {
            return Err(AccessError::BadSignature);
        }
        let tag = URL_SAFE_NO_PAD.decode(sig).map_err(|_| AccessError::BadSignature)?;
        self.mac(scope, exp).verify_slice(&tag).map_err(|_| AccessError::BadSignature)?;
        if exp < now {
            return Err(AccessError::Expired);
        }
        Ok(())
    }

    fn mac(&self, scope: &str, exp: i64) -> HmacSha256 {
        let mut mac = mac_with(&self.key);
        mac.update(scope.as_bytes());
        mac.update(b"\n");
        mac.update(exp.to_string().as_bytes());
        mac
    }
}

fn mac_with(key: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length.
    HmacSha256::new_from_slice(key).expect("HMAC accepts any key length")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_opens_its_lesson_until_it_expires() {
        let s = ReplaySigner::new("secret");
        let signed = s.sign("k1/l1", 1000);
        assert_eq!(s.verify("k1/l1", Some("1000"), Some(&signed.sig), 999), Ok(()));
        assert_eq!(s.verify("k1/l1", Some("1000"), Some(&signed.sig), 1001), Err(AccessError::Expired));
    }

    #[test]
    fn other_lessons_keys_and_tampering_are_refused() {
        let s = ReplaySigner::new("secret");
        let signed = s.sign("k1/l1", 1000);
        assert_eq!(s.verify("k1/l2", Some("1000"), Some(&signed.sig), 0), Err(AccessError::BadSignature));
        assert_eq!(s.verify("k1/l1", Some("2000"), Some(&signed.sig), 0), Err(AccessError::BadSignature));
        let other = ReplaySigner::new("other").sign("k1/l1", 1000);
        assert_eq!(s.verify("k1/l1", Some("1000"), Some(&other.sig), 0), Err(AccessError::BadSignature));
    }

    #[test]
    fn garbage_queries_are_refused_without_panicking() {
        let s = ReplaySigner::new("secret");
        assert_eq!(s.verify("k1/l1", None, None, 0), Err(AccessError::Missing));
        assert_eq!(s.verify("k1/l1", Some("1000"), None, 0), Err(AccessError::Missing));
        for (exp, sig) in [("x", "abc"), ("1000", "!!!"), ("1000", ""), ("99999999999999999999", "a"), ("1000", &"A".repeat(10_000))] {
            assert_eq!(s.verify("k1/l1", Some(exp), Some(sig), 0), Err(AccessError::BadSignature), "{exp} {sig}");
        }
    }
}
