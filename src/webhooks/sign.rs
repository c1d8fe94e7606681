//! What a receiver gets: the JSON body and the headers that sign it.
//!
//! Invariants:
//! - The body is `{"id", "event", "created_at_ms", "data"}` in that order, `data`
//!   being the stored event JSON byte for byte; it depends only on the delivery, so
//!   every attempt sends the same bytes.
//! - The signature is `sha256=` + lowercase hex HMAC-SHA256, keyed with the hook's
//!   secret (its UTF-8 bytes, as shown at creation), over `<timestamp>.<body>`,
//!   the timestamp being the `X-Classcast-Timestamp` header (Unix seconds).

use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

pub const EVENT_HEADER: &str = "X-Classcast-Event";
pub const DELIVERY_HEADER: &str = "X-Classcast-Delivery";
pub const TIMESTAMP_HEADER: &str = "X-Classcast-Timestamp";
pub const SIGNATURE_HEADER: &str = "X-Classcast-Signature";

/// The body of delivery `id`; `data` is the stored event JSON.
pub fn body(id: &str, event: &str, created_at_ms: i64, data: &str) -> String {
    let (id, event) = (Value::from(id), Value::from(event));
    format!(r#"{{"id":{id},"event":{event},"created_at_ms":{created_at_ms},"data":{data}}}"#)
}

/// The `X-Classcast-Signature` value of `body` sent at `timestamp`.
pub fn signature(secret: &str, timestamp: i64, body: &str) -> String {
    // HMAC takes a key of any length.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC accepts any key length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    let hex: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_test_0123456789abcdef";
    const BODY: &str = r#"{"id":"v0123456789ab","event":"class_started","created_at_ms":1735689600123,"data":{"type":"class_started","class_id":"k1"}}"#;

    #[test]
    fn the_body_keeps_the_stored_event_bytes() {
        let b = body("v0123456789ab", "class_started", 1_735_689_600_123, r#"{"type":"class_started","class_id":"k1"}"#);
        assert_eq!(b, BODY);
        let quoted = body("v\"x", "ping", 1, "{}");
        let v: Value = serde_json::from_str(&quoted).unwrap();
        assert_eq!(v["id"], "v\"x", "strings are escaped");
    }

    #[test]
    fn signature_matches_an_independent_hmac() {
        // Computed with Python's hmac module:
        // hmac.new(SECRET, b"1735689600." + BODY, hashlib.sha256).hexdigest()
        let expected = "sha256=d38a043b74ca4514438c8af52448056ffda07d209f2bf5e73b175971c09499ed";
        assert_eq!(signature(SECRET, 1_735_689_600, BODY), expected);
        assert_ne!(signature(SECRET, 1_735_689_601, BODY), expected, "the timestamp is signed");
        assert_ne!(signature("another secret", 1_735_689_600, BODY), expected);
        assert_ne!(signature(SECRET, 1_735_689_600, &BODY.replace("k1", "k2")), expected);
    }
}
