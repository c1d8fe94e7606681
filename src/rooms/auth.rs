//! Join tokens: JWTs (HS256) minted by the admin API and checked on every join,
//! WHIP and WHEP request.
//!
//! Invariants: only HS256 is accepted (no `alg: none`, no key confusion); the
//! issuer must be `classcast`; expiry is always checked, with no leeway beyond
//! 30 s of clock skew.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::signaling::protocol::Role;

pub const ISSUER: &str = "classcast";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    /// Class id.
    pub cls: String,
    /// Participant identity: `main`, a classroom id, or an observer id.
    pub sub: String,
    pub role: Role,
    pub name: String,
    pub iat: i64,
    pub exp: i64,
    /// The district classroom whose device link minted this token (kiosk screens):
    /// revoking that link refuses the token at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dev: Option<String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    #[error("a join token is required")]
    Missing,
    #[error("the join token has expired")]
    Expired,
    #[error("the join token is not valid: {0}")]
    Invalid(String),
    #[error("this screen's device link was revoked")]
    Revoked,
}

#[derive(Clone)]
pub struct Tokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl Tokens {
    pub fn new(secret: &str) -> Tokens {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        validation.leeway = 30;
        Tokens {
            encoding: EncodingKey::from_secret(secret.as_bytes()),
            decoding: DecodingKey::from_secret(secret.as_bytes()),
            validation,
        }
    }

    pub fn mint(&self, claims: &Claims) -> String {
        // HS256 signing of a serializable struct cannot fail.
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding).expect("HS256 encoding")
    }

    pub fn verify(&self, token: &str) -> Result<Claims, AuthError> {
        if token.is_empty() {
            return Err(AuthError::Missing);
        }
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation).map(|d| d.claims).map_err(|e| {
            match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => AuthError::Expired,
                _ => AuthError::Invalid(e.to_string()),
            }
        })
    }
}

/// Whether `given` equals `expected`, in time independent of where they differ.
pub fn same_secret(given: &str, expected: &str) -> bool {
    let (a, b) = (given.as_bytes(), expected.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The bearer token of an `Authorization` header value.
pub fn bearer(header: Option<&str>) -> Result<&str, AuthError> {
    let value = header.ok_or(AuthError::Missing)?;
    let token = value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("bearer ")).ok_or(AuthError::Missing)?;
    Ok(token.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp_in: i64) -> Claims {
        let now = crate::store::unix_now();
        Claims { iss: ISSUER.into(), cls: "k1".into(), sub: "main".into(), role: Role::Main, name: "T".into(), iat: now, exp: now + exp_in, dev: None }
    }

    #[test]
    fn minted_tokens_verify() {
        let t = Tokens::new("s3cret");
        let c = claims(600);
        assert_eq!(t.verify(&t.mint(&c)).unwrap(), c);
    }

    #[test]
    fn expired_forged_and_missing_tokens_are_refused() {
        let t = Tokens::new("s3cret");
        assert_eq!(t.verify(&t.mint(&claims(-120))), Err(AuthError::Expired));
        let forged = Tokens::new("other").mint(&claims(600));
        assert!(matches!(t.verify(&forged), Err(AuthError::Invalid(_))));
        assert_eq!(t.verify(""), Err(AuthError::Missing));
        assert!(matches!(t.verify("a.b.c"), Err(AuthError::Invalid(_))));
        let mut wrong_issuer = claims(600);
        wrong_issuer.iss = "someone".into();
        assert!(matches!(t.verify(&t.mint(&wrong_issuer)), Err(AuthError::Invalid(_))));
    }

    #[test]
    fn unsigned_tokens_are_refused() {
        let t = Tokens::new("s3cret");
        let body = t.mint(&claims(600));
        let payload = body.split('.').nth(1).unwrap();
        // {"alg":"none","typ":"JWT"}
        let none = format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{payload}.");
        assert!(matches!(t.verify(&none), Err(AuthError::Invalid(_))));
    }

    #[test]
    fn bearer_header_parsing() {
        assert_eq!(bearer(Some("Bearer abc")), Ok("abc"));
        assert_eq!(bearer(Some("Basic abc")), Err(AuthError::Missing));
        assert_eq!(bearer(None), Err(AuthError::Missing));
    }
}
