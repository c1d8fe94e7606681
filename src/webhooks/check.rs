//! The checks of a new webhook, before anything is stored.
//!
//! Invariants:
//! - Every refusal is a `FieldError` naming the request field (`url`, `events`,
//!   `events[2]`, `secret`).
//! - A hook's URL is absolute `http://` or `https://` with a host; its events are
//!   known names (`ClassEvent::NAMES`), none twice, or `["*"]` alone.
//! - A secret not given is generated: 32 random bytes, base64url.

use serde::Deserialize;

use crate::rooms::events::ClassEvent;
use crate::store::{ALL_EVENTS, FieldError};

pub const MAX_URL: usize = 2000;
pub const MIN_SECRET: usize = 16;
pub const MAX_SECRET: usize = 200;

/// `POST /api/webhooks`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NewWebhook {
    pub url: String,
    pub events: Vec<String>,
    /// Empty or absent: one is generated.
    pub secret: String,
}

/// A new webhook that passed the checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    pub url: String,
    pub events: Vec<String>,
    pub secret: String,
}

pub fn check(new: &NewWebhook) -> Result<Checked, FieldError> {
    Ok(Checked { url: url(&new.url)?, events: events(&new.events)?, secret: secret(&new.secret)? })
}

fn url(value: &str) -> Result<String, FieldError> {
    let v = value.trim();
    if v.is_empty() {
        return Err(FieldError::new("url", "must not be empty"));
    }
    if v.chars().count() > MAX_URL {
        return Err(FieldError::new("url", format!("at most {MAX_URL} characters")));
    }
    let bad = || FieldError::new("url", "must be an absolute http:// or https:// URL");
    let parsed = reqwest::Url::parse(v).map_err(|_| bad())?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none_or(str::is_empty) {
        return Err(bad());
    }
    Ok(parsed.to_string())
}

fn events(list: &[String]) -> Result<Vec<String>, FieldError> {
    if list.is_empty() {
        return Err(FieldError::new("events", "list at least one event, or \"*\" for every event"));
    }
    let mut out: Vec<String> = Vec::with_capacity(list.len());
    for (i, name) in list.iter().enumerate() {
        let name = name.trim();
        let field = format!("events[{i}]");
        if name == ALL_EVENTS && list.len() > 1 {
            return Err(FieldError::new(field, "\"*\" (every event) stands alone"));
        }
        if name != ALL_EVENTS && !ClassEvent::NAMES.contains(&name) {
            return Err(FieldError::new(field, format!("unknown event \"{name}\"; one of {}", ClassEvent::NAMES.join(", "))));
        }
        if out.iter().any(|e| e == name) {
            return Err(FieldError::new(field, "listed twice"));
        }
        out.push(name.to_string());
    }
    Ok(out)
}

fn secret(value: &str) -> Result<String, FieldError> {
    if value.is_empty() {
        return Ok(new_secret());
    }
    let n = value.chars().count();
    if n < MIN_SECRET || n > MAX_SECRET {
        return Err(FieldError::new("secret", format!("between {MIN_SECRET} and {MAX_SECRET} characters")));
    }
    if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(FieldError::new("secret", "no spaces or control characters"));
    }
    Ok(value.to_string())
}

/// 32 random bytes, base64url without padding (43 characters).
pub fn new_secret() -> String {
    use base64::Engine;
    use rand::Rng;
    let bytes: [u8; 32] = rand::rng().random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new(url: &str, events: &[&str], secret: &str) -> NewWebhook {
        NewWebhook { url: url.into(), events: events.iter().map(|s| s.to_string()).collect(), secret: secret.into() }
    }

    fn field(r: Result<Checked, FieldError>) -> String {
        r.expect_err("refused").field
    }

    #[test]
    fn good_hooks_pass_and_a_secret_is_generated() {
        let c = check(&new(" https://school.example/hooks?x=1 ", &["class_started", "recording_ready"], "")).unwrap();
        assert_eq!(c.url, "https://school.example/hooks?x=1");
        assert_eq!(c.events, ["class_started", "recording_ready"]);
        assert_eq!(c.secret.len(), 43);
        assert!(c.secret.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_'));
        assert_ne!(c.secret, check(&new("http://127.0.0.1:9/", &["*"], "")).unwrap().secret);
        assert_eq!(check(&new("http://127.0.0.1:9/", &["*"], "my-own-secret-1234")).unwrap().secret, "my-own-secret-1234");
    }

    #[test]
    fn each_refusal_names_its_field() {
        assert_eq!(field(check(&new("", &["*"], ""))), "url");
        assert_eq!(field(check(&new("/hooks", &["*"], ""))), "url");
        assert_eq!(field(check(&new("ftp://example.test/", &["*"], ""))), "url");
        assert_eq!(field(check(&new("javascript:alert(1)", &["*"], ""))), "url");
        assert_eq!(field(check(&new("http://", &["*"], ""))), "url");
        assert_eq!(field(check(&new(&format!("http://a.test/{}", "x".repeat(MAX_URL)), &["*"], ""))), "url");
        assert_eq!(field(check(&new("http://a.test/", &[], ""))), "events");
        assert_eq!(field(check(&new("http://a.test/", &["class_started", "lesson_over"], ""))), "events[1]");
        assert_eq!(field(check(&new("http://a.test/", &["class_ended", "*"], ""))), "events[1]");
        assert_eq!(field(check(&new("http://a.test/", &["class_ended", "class_ended"], ""))), "events[1]");
        assert_eq!(field(check(&new("http://a.test/", &["*"], "short"))), "secret");
        assert_eq!(field(check(&new("http://a.test/", &["*"], "has a space in it!!"))), "secret");
    }
}
