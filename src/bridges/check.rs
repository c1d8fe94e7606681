//! The checks of a new bridge, before anything is stored.
//!
//! Invariants:
//! - Every refusal is a `FieldError` naming the request field.
//! - The class exists; a classroom bridge names one of the class's classrooms
//!   and publishes only a camera; a main bridge publishes camera, board or screen.
//! - RTSP URLs are `rtsp://` or `rtsps://` with a host; SRT URLs are `srt://host:port`
//!   with `mode=caller` or `mode=listener`; no whitespace or control characters.
//! - An RTMP bridge has a stream key: given (8-64 of `A-Za-z0-9_-`, unused) or
//!   generated (24 random characters).

use rand::Rng;
use serde::Deserialize;

use crate::store::{BridgeRow, FieldError, Store, StoreError};

pub const MAX_URL: usize = 1024;
pub const MAX_NAME: usize = 100;

/// `POST /api/bridges`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NewBridge {
    pub class_id: String,
    pub name: String,
    pub role: String,
    pub classroom_id: Option<String>,
    pub source: String,
    pub audio: Option<bool>,
    pub kind: String,
    pub url: Option<String>,
    pub transport: Option<String>,
    pub stream_key: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("{}: {}", .0.field, .0.reason)]
    Field(FieldError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<FieldError> for CheckError {
    fn from(f: FieldError) -> Self {
        CheckError::Field(f)
    }
}

fn bad(field: &str, reason: &str) -> CheckError {
    CheckError::Field(FieldError::new(field, reason))
}

/// A checked row, ready for `Store::create_bridge`.
pub fn check(new: &NewBridge, store: &Store) -> Result<BridgeRow, CheckError> {
    store.class(&new.class_id)?.ok_or_else(|| bad("class_id", "no such class"))?;
    let classroom_id = classroom(new, store)?;
    let source = source(&new.role, &new.source)?;
    let kind = one_of("kind", &new.kind, &["rtsp", "srt", "rtmp"])?;
    let transport = one_of("transport", new.transport.as_deref().unwrap_or("tcp"), &["tcp", "udp"])?;
    let url = match kind.as_str() {
        "rtmp" => None,
        k => Some(url(k, new.url.as_deref().unwrap_or(""))?),
    };
    let stream_key = if kind == "rtmp" { Some(stream_key(new.stream_key.as_deref(), store)?) } else { None };
    let name = name(&new.name, &kind, &source)?;
    let audio = new.audio.unwrap_or(true);
    let role = new.role.clone();
    Ok(BridgeRow { id: String::new(), class_id: new.class_id.clone(), name, role, classroom_id, source, audio, kind, url, transport, stream_key, created_at: 0 })
}

fn one_of(field: &str, v: &str, allowed: &[&str]) -> Result<String, CheckError> {
    allowed.iter().find(|a| **a == v).map(|a| a.to_string()).ok_or_else(|| bad(field, &format!("must be one of {}", allowed.join(", "))))
}

fn classroom(new: &NewBridge, store: &Store) -> Result<Option<String>, CheckError> {
    match (one_of("role", &new.role, &["main", "classroom"])?.as_str(), new.classroom_id.as_deref().filter(|c| !c.is_empty())) {
        ("main", None) => Ok(None),
        ("main", Some(_)) => Err(bad("classroom_id", "only a classroom bridge names a classroom")),
        (_, None) => Err(bad("classroom_id", "a classroom bridge names one of the class's classrooms")),
        (_, Some(c)) => {
            store.classroom(&new.class_id, c)?.ok_or_else(|| bad("classroom_id", "not a classroom of this class"))?;
            Ok(Some(c.to_string()))
        }
    }
}

fn source(role: &str, s: &str) -> Result<String, CheckError> {
    if role == "classroom" {
        return one_of("source", s, &["camera"]);
    }
    one_of("source", s, &["camera", "board", "screen"])
}

fn url(kind: &str, u: &str) -> Result<String, CheckError> {
    let u = u.trim();
    if u.is_empty() || u.len() > MAX_URL || u.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad("url", &format!("a URL of 1-{MAX_URL} characters without spaces")));
    }
    let schemes: &[&str] = if kind == "rtsp" { &["rtsp://", "rtsps://"] } else { &["srt://"] };
    let Some(rest) = schemes.iter().find_map(|s| u.strip_prefix(s)) else {
        return Err(bad("url", &format!("must start with {}", schemes.join(" or "))));
    };
    let host = rest.split(['/', '?']).next().unwrap_or("").rsplit('@').next().unwrap_or("");
    if host.is_empty() || host.starts_with(':') {
        return Err(bad("url", "has no host"));
    }
    if kind == "srt" {
        srt_parts(host, rest)?;
    }
    Ok(u.to_string())
}

fn srt_parts(host: &str, rest: &str) -> Result<(), CheckError> {
    let port_ok = host.rsplit_once(':').is_some_and(|(_, p)| p.parse::<u16>().is_ok_and(|p| p > 0));
    if !port_ok {
        return Err(bad("url", "an SRT URL needs a port: srt://host:port?mode=caller"));
    }
    let mode_ok = rest.split_once('?').is_some_and(|(_, q)| q.split('&').any(|kv| kv == "mode=caller" || kv == "mode=listener"));
    if !mode_ok {
        return Err(bad("url", "an SRT URL says mode=caller or mode=listener"));
    }
    Ok(())
}

fn stream_key(given: Option<&str>, store: &Store) -> Result<String, CheckError> {
    let key = match given.filter(|k| !k.is_empty()) {
        None => return Ok(generate_key()),
        Some(k) => k,
    };
    if !(8..=64).contains(&key.len()) || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
        return Err(bad("stream_key", "8-64 characters of A-Z, a-z, 0-9, _ and -"));
    }
    if store.stream_key_taken(key)? {
        return Err(bad("stream_key", "already used by another bridge"));
    }
    Ok(key.to_string())
}

fn generate_key() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    let mut rng = rand::rng();
    (0..24).map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char).collect()
}

fn name(n: &str, kind: &str, source: &str) -> Result<String, CheckError> {
    let n = n.trim();
    if n.chars().count() > MAX_NAME || n.chars().any(char::is_control) {
        return Err(bad("name", &format!("at most {MAX_NAME} characters")));
    }
    Ok(if n.is_empty() { format!("{kind} {source}") } else { n.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> (Store, String, String) {
        let store = Store::open_in_memory().unwrap();
        let class = store.create_class("Maths", "Ms Li", false).unwrap();
        let room = store.add_classroom(&class.id, "Room 2").unwrap();
        (store, class.id, room.id)
    }

    fn field(r: Result<BridgeRow, CheckError>) -> String {
        match r {
            Err(CheckError::Field(f)) => f.field,
            other => panic!("expected a field error, got {other:?}"),
        }
    }

    fn rtsp(class: &str) -> NewBridge {
        NewBridge { class_id: class.into(), role: "main".into(), source: "board".into(), kind: "rtsp".into(), url: Some("rtsp://u:p@127.0.0.1:8554/cam".into()), ..Default::default() }
    }

    #[test]
    fn accepts_rtsp_srt_and_rtmp() {
        let (store, class, room) = setup();
        let b = check(&rtsp(&class), &store).unwrap();
        assert_eq!((b.name.as_str(), b.transport.as_str(), b.audio), ("rtsp board", "tcp", true));
        let srt = NewBridge { kind: "srt".into(), url: Some("srt://127.0.0.1:7001?mode=listener".into()), ..rtsp(&class) };
        assert!(check(&srt, &store).is_ok());
        let rtmp = NewBridge { kind: "rtmp".into(), url: None, role: "classroom".into(), classroom_id: Some(room), source: "camera".into(), ..rtsp(&class) };
        let b = check(&rtmp, &store).unwrap();
        assert_eq!(b.stream_key.unwrap().len(), 24);
    }

    #[test]
    fn refusals_name_their_field() {
        let (store, class, room) = setup();
        assert_eq!(field(check(&NewBridge { class_id: "nope".into(), ..rtsp(&class) }, &store)), "class_id");
        assert_eq!(field(check(&NewBridge { role: "observer".into(), ..rtsp(&class) }, &store)), "role");
        assert_eq!(field(check(&NewBridge { role: "classroom".into(), ..rtsp(&class) }, &store)), "classroom_id");
        assert_eq!(field(check(&NewBridge { classroom_id: Some(room.clone()), ..rtsp(&class) }, &store)), "classroom_id");
        let board_from_classroom = NewBridge { role: "classroom".into(), classroom_id: Some(room), ..rtsp(&class) };
        assert_eq!(field(check(&board_from_classroom, &store)), "source");
        assert_eq!(field(check(&NewBridge { kind: "hls".into(), ..rtsp(&class) }, &store)), "kind");
        assert_eq!(field(check(&NewBridge { url: Some("http://x/".into()), ..rtsp(&class) }, &store)), "url");
        assert_eq!(field(check(&NewBridge { url: Some("rtsp:///x".into()), ..rtsp(&class) }, &store)), "url");
        assert_eq!(field(check(&NewBridge { url: Some("rtsp://a b/".into()), ..rtsp(&class) }, &store)), "url");
        let no_mode = NewBridge { kind: "srt".into(), url: Some("srt://127.0.0.1:7001".into()), ..rtsp(&class) };
        assert_eq!(field(check(&no_mode, &store)), "url");
        assert_eq!(field(check(&NewBridge { transport: Some("quic".into()), ..rtsp(&class) }, &store)), "transport");
        let short_key = NewBridge { kind: "rtmp".into(), stream_key: Some("abc".into()), ..rtsp(&class) };
        assert_eq!(field(check(&short_key, &store)), "stream_key");
        assert_eq!(field(check(&NewBridge { name: "x".repeat(101), ..rtsp(&class) }, &store)), "name");
    }
}
