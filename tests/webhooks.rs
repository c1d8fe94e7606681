//! Webhooks against the real `classcast` binary (issue 7): real class events
//! (class started, classroom joined and left, class ended, recording ready) reach a
//! local receiver that checks every signature; a black-hole receiver does not slow
//! them down; a receiver that is down (closed port, then 503) gets retries on the
//! backoff schedule, across a server restart, until it is up; the delivery log shows
//! every attempt.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use futures_util::{SinkExt, StreamExt};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use tokio_tungstenite::tungstenite::Message;

mod common;
use common::Server;

const KEY: &str = "webhooks-test-admin-key";
const RETRY_BASE_MS: u64 = 200;
const EVENTS: [&str; 5] = ["class_started", "classroom_joined", "classroom_left", "class_ended", "recording_ready"];

// The server under test.

/// A free TCP port on 127.0.0.1 (for a receiver started later).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("a free TCP port").local_addr().expect("bound").port()
}

impl Server {
    async fn send(&self, method: reqwest::Method, path: &str, body: Option<Value>, key: Option<&str>) -> (u16, Value) {
        let mut req = self.http.request(method, format!("{}/api{path}", self.base));
        if let Some(k) = key {
            req = req.bearer_auth(k);
        }
        if let Some(b) = body {
            req = req.header("content-type", "application/json").body(b.to_string());
        }
        let resp = req.send().await.expect("the server answers");
        let status = resp.status().as_u16();
        let text = resp.text().await.expect("a body");
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.send(reqwest::Method::POST, path, Some(body), Some(KEY)).await
    }

    async fn get(&self, path: &str) -> Value {
        let (status, v) = self.send(reqwest::Method::GET, path, None, Some(KEY)).await;
        assert_eq!(status, 200, "GET {path}: {v}");
        v
    }

    /// A new hook: its id and secret.
    async fn hook(&self, body: Value) -> (String, String) {
        let (status, v) = self.post("/webhooks", body).await;
        assert_eq!(status, 201, "POST /webhooks: {v}");
        (v["id"].as_str().expect("an id").into(), v["secret"].as_str().expect("the secret, once").into())
    }

    async fn deliveries(&self, hook: &str) -> Vec<Value> {
        self.get(&format!("/webhooks/{hook}/deliveries")).await["deliveries"].as_array().expect("a list").clone()
    }
}

// Receivers.

/// One request a receiver got.
#[derive(Debug, Clone)]
struct Hit {
    event_header: String,
    delivery_header: String,
    body: Value,
    raw: String,
    signature_ok: bool,
    /// The timestamp header is within a minute of the receiver's clock.
    fresh: bool,
    json: bool,
    answered: u16,
    at: Instant,
}

/// A receiver on 127.0.0.1 that checks signatures with `secret` and answers `status`.
#[derive(Clone)]
struct Receiver {
    secret: Arc<Mutex<String>>,
    status: Arc<AtomicU16>,
    hits: Arc<Mutex<Vec<Hit>>>,
}

impl Receiver {
    async fn start(port: u16, status: u16) -> Receiver {
        let r = Receiver { secret: Arc::default(), status: Arc::new(AtomicU16::new(status)), hits: Arc::default() };
        let app = axum::Router::new().route("/hook", axum::routing::post(receive)).with_state(r.clone());
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.expect("the receiver's port is free");
        tokio::spawn(async move { axum::serve(listener, app).await.expect("the receiver serves") });
        r
    }

    fn hits(&self) -> Vec<Hit> {
        self.hits.lock().expect("not poisoned").clone()
    }
}

fn unix_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("after 1970").as_millis() as i64
}

fn hmac_hex(secret: &str, message: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(message.as_bytes());
    mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect()
}

fn header(h: &HeaderMap, name: &str) -> String {
    h.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string()
}

async fn receive(State(r): State<Receiver>, h: HeaderMap, body: String) -> StatusCode {
    let timestamp = header(&h, "x-classcast-timestamp");
    let expected = format!("sha256={}", hmac_hex(&r.secret.lock().expect("not poisoned"), &format!("{timestamp}.{body}")));
    let now = unix_ms() / 1000;
    let answered = r.status.load(Ordering::SeqCst);
    r.hits.lock().expect("not poisoned").push(Hit {
        event_header: header(&h, "x-classcast-event"),
        delivery_header: header(&h, "x-classcast-delivery"),
        body: serde_json::from_str(&body).unwrap_or(Value::Null),
        raw: body.clone(),
        signature_ok: header(&h, "x-classcast-signature") == expected,
        fresh: timestamp.parse::<i64>().is_ok_and(|t| (t - now).abs() <= 60),
        json: header(&h, "content-type") == "application/json",
        answered,
        at: Instant::now(),
    });
    StatusCode::from_u16(answered).expect("a valid status")
}

/// Accepts connections and never answers: every attempt to it times out.
async fn black_hole() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a free port");
    let port = listener.local_addr().expect("bound").port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    port
}

/// Polls `f` every 50 ms until it gives a value, at most `secs` seconds.
async fn wait_for<T>(what: &str, secs: u64, mut f: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// The test.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_are_signed_retried_and_logged() {
    let retry_base = RETRY_BASE_MS.to_string();
    let mut server = Server::start("webhooks", KEY, &["--empty-grace-secs", "1", "--webhook-retry-base-ms", &retry_base]).await;
    refusals(&server).await;
    let slow_port = black_hole().await;
    let (slow, _) = server.hook(json!({ "url": format!("http://127.0.0.1:{slow_port}/hook"), "events": ["*"] })).await;
    let class_id = class_events(&server).await;
    // Its first attempt ends at the timeout; wait for it before the restart below cuts one short.
    let first = wait_for("the black hole's first attempt", 15, async || {
        let log = server.deliveries(&slow).await;
        log.last().filter(|d| !d["attempts"][0].is_null()).cloned()
    })
    .await;
    assert_eq!(first["data"]["class_id"], class_id.as_str());
    let attempt = &first["attempts"][0];
    println!("black-hole receiver, attempt 1: {attempt}");
    assert_eq!(attempt["error"], "timed out after 10 s");
    let ms = attempt["duration_ms"].as_i64().expect("a duration");
    assert!((9_900..12_000).contains(&ms), "cut off at the 10 s timeout, took {ms} ms");
    down_receiver(&mut server).await;
}

/// Bad hooks are refused naming the field; unknown ids are 404 JSON; no key is 401.
async fn refusals(s: &Server) {
    let cases = [
        (json!({ "url": "/relative/hook", "events": ["*"] }), "url"),
        (json!({ "url": "ftp://127.0.0.1/hook", "events": ["*"] }), "url"),
        (json!({ "events": ["*"] }), "url"),
        (json!({ "url": "http://127.0.0.1:9/hook", "events": [] }), "events"),
        (json!({ "url": "http://127.0.0.1:9/hook", "events": ["class_started", "lesson_over"] }), "events[1]"),
        (json!({ "url": "http://127.0.0.1:9/hook", "events": ["*"], "secret": "short" }), "secret"),
    ];
    for (body, field) in cases {
        let (status, v) = s.post("/webhooks", body.clone()).await;
        assert_eq!(status, 422, "{body} -> {v}");
        assert_eq!(v["error"], "invalid_field");
        assert!(v["message"].as_str().expect("a message").starts_with(&format!("{field}: ")), "{body} -> {v}");
    }
    assert_eq!(s.post("/webhooks", json!({ "url": "http://127.0.0.1:9/", "events": ["*"], "colour": 1 })).await.0, 400);
    for (method, path) in [("GET", "/webhooks/wnope"), ("DELETE", "/webhooks/wnope"), ("POST", "/webhooks/wnope/test"), ("GET", "/webhooks/wnope/deliveries")] {
        let (status, v) = s.send(method.parse().expect("a method"), path, None, Some(KEY)).await;
        assert_eq!((status, v["error"].as_str()), (404, Some("not_found")), "{method} {path}: {v}");
    }
    let (status, _) = s.send(reqwest::Method::GET, "/webhooks", None, None).await;
    assert_eq!(status, 401);
    let (status, _) = s.send(reqwest::Method::GET, "/webhooks", None, Some("wrong")).await;
    assert_eq!(status, 401);
    assert_eq!(s.get("/webhooks").await, json!([]), "nothing refused was stored");
}

/// A real class: a receiver gets all five events in order, each signed; the class's id.
async fn class_events(s: &Server) -> String {
    let receiver_port = free_port();
    let receiver = Receiver::start(receiver_port, 200).await;
    let (hook, secret) = s.hook(json!({ "url": format!("http://127.0.0.1:{receiver_port}/hook"), "events": ["*"] })).await;
    assert_eq!(secret.len(), 43, "32 random bytes, base64url");
    *receiver.secret.lock().expect("not poisoned") = secret.clone();
    let listed = s.get("/webhooks").await;
    assert!(!listed.to_string().contains(&secret), "the secret is shown once only");
    assert_eq!(s.get(&format!("/webhooks/{hook}")).await["events"], json!(["*"]));

    let (status, class) = s.post("/classes", json!({ "title": "数学", "teacher": "王老师" })).await;
    assert_eq!(status, 201, "{class}");
    let class_id = class["id"].as_str().expect("an id").to_string();
    let (status, link) = s.post(&format!("/classes/{class_id}/links"), json!({ "role": "main" })).await;
    assert_eq!(status, 201, "{link}");
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{}/ws", s.http_port)).await.expect("the WebSocket opens");
    let join = json!({ "type": "join", "v": 1, "token": link["token"] }).to_string();
    let joined_at = Instant::now();
    ws.send(Message::Text(join.into())).await.expect("join sent");
    wait_for("joined", 10, async || match ws.next().await {
        Some(Ok(Message::Text(t))) if t.contains("\"joined\"") => Some(()),
        _ => None,
    })
    .await;
    wait_for("class_started and classroom_joined", 10, async || (receiver.hits().len() >= 2).then_some(())).await;
    let left_at = Instant::now();
    ws.close(None).await.expect("closed");
    drop(ws);
    let hits = wait_for("all five events", 20, async || Some(receiver.hits()).filter(|h| h.len() >= 5)).await;

    check_class_hits(&hits, &class_id);
    let ms = |from: Instant, to: Instant| to.duration_since(from).as_millis();
    println!(
        "class events at the receiver: class_started +{} ms, classroom_joined +{} ms after join; classroom_left +{} ms, class_ended +{} ms, recording_ready +{} ms after close (grace 1 s)",
        ms(joined_at, hits[0].at), ms(joined_at, hits[1].at), ms(left_at, hits[2].at), ms(left_at, hits[3].at), ms(left_at, hits[4].at)
    );
    assert!(ms(left_at, hits[2].at) < 2_000, "a black-hole receiver does not hold up this hook");

    let log = s.deliveries(&hook).await;
    assert_eq!(log.len(), 5);
    for d in &log {
        assert_eq!((d["state"].as_str(), d["next_attempt_at_ms"].is_null()), (Some("delivered"), true), "{d}");
        assert_eq!(d["attempts"].as_array().map(Vec::len), Some(1));
        assert_eq!(d["attempts"][0]["status"], 200);
    }
    class_id
}

/// All five events, in order, each signed and fresh, headers and body agreeing.
fn check_class_hits(hits: &[Hit], class_id: &str) {
    let names: Vec<&str> = hits.iter().map(|h| h.event_header.as_str()).collect();
    assert_eq!(names, EVENTS, "one delivery per event, in order");
    for h in hits {
        assert!(h.signature_ok && h.fresh && h.json, "signed, fresh, JSON: {h:?}");
        assert_eq!(h.body["event"], h.event_header.as_str());
        assert_eq!(h.body["id"], h.delivery_header.as_str());
        assert_eq!(h.body["data"]["type"], h.event_header.as_str());
        assert_eq!(h.body["data"]["class_id"], class_id);
        assert!(h.body["created_at_ms"].as_i64().is_some_and(|t| t > 0));
    }
    assert_eq!(hits[1].body["data"]["role"], "main");
    let lesson = &hits[4].body["data"];
    assert!(lesson["lesson_id"].as_str().is_some_and(|id| !id.is_empty()) && lesson["duration_ms"].as_i64().is_some_and(|d| d >= 0), "{lesson}");
}

/// A ping to a receiver that is down (closed port), then answers 503, is retried on the
/// backoff schedule, across a restart, until the receiver answers 200.
async fn down_receiver(s: &mut Server) {
    let port = free_port();
    let (hook, secret) = s.hook(json!({ "url": format!("http://127.0.0.1:{port}/hook"), "events": ["recording_ready"], "secret": "given-secret-0123456789" })).await;
    assert_eq!(secret, "given-secret-0123456789");
    let started = Instant::now();
    let (status, v) = s.post(&format!("/webhooks/{hook}/test"), json!({})).await;
    assert_eq!(status, 202, "{v}");
    let delivery = v["delivery_id"].as_str().expect("the delivery's id").to_string();

    let attempts = async |s: &Server| s.deliveries(&hook).await[0]["attempts"].as_array().expect("attempts").clone();
    wait_for("two refused connections", 10, async || (attempts(s).await.len() >= 2).then_some(())).await;
    let receiver = Receiver::start(port, 503).await;
    *receiver.secret.lock().expect("not poisoned") = secret;
    wait_for("a 503 attempt", 20, async || attempts(s).await.iter().any(|a| a["status"] == 503).then_some(())).await;
    receiver.status.store(200, Ordering::SeqCst);
    let killed_ms = unix_ms();
    s.restart().await;
    let restarted_ms = unix_ms();
    println!("down receiver: server killed and back in {} ms", restarted_ms - killed_ms);
    let log = wait_for("delivered after the restart", 60, async || {
        let d = s.deliveries(&hook).await.remove(0);
        (d["state"] == "delivered").then_some(d)
    })
    .await;
    println!("down receiver: delivered {} ms after the ping", started.elapsed().as_millis());

    assert_eq!(log["id"], delivery.as_str());
    assert_eq!(log["event"], "ping");
    let attempts = log["attempts"].as_array().expect("attempts");
    check_schedule(attempts, killed_ms, restarted_ms);
    let n = attempts.len();
    assert!(n >= 4, "at least two refused, one 503, one 200: {n}");
    assert!(attempts[..2].iter().all(|a| a["status"].is_null() && a["error"].as_str().is_some_and(|e| e.starts_with("connect: "))), "{attempts:?}");
    assert!(attempts[..n - 1].iter().any(|a| a["status"] == 503));
    assert_eq!((attempts[n - 1]["status"].as_u64(), attempts[n - 1]["next_attempt_at_ms"].is_null()), (Some(200), true));
    let hits = receiver.hits();
    assert_eq!(hits.iter().map(|h| h.answered).last(), Some(200));
    assert!(hits.iter().all(|h| h.signature_ok && h.event_header == "ping" && h.delivery_header == delivery && h.body["data"]["webhook_id"] == hook.as_str()), "{hits:?}");
    let bodies: HashSet<&str> = hits.iter().map(|h| h.raw.as_str()).collect();
    assert_eq!(bodies.len(), 1, "every attempt sends the same bytes");
}

/// Each failed attempt planned its retry `base × 2^(n-1)` after it ended, and the retry
/// went then (or once the server was back, for the one the restart got in the way of).
fn check_schedule(attempts: &[Value], killed_ms: i64, restarted_ms: i64) {
    let t0 = attempts[0]["at_ms"].as_i64().expect("a time");
    for (i, a) in attempts.iter().enumerate() {
        let (at, dur) = (a["at_ms"].as_i64().expect("a time"), a["duration_ms"].as_i64().expect("a duration"));
        println!("  attempt {}: +{} ms, status {}, error {}, {} ms, next {}", a["attempt"], at - t0, a["status"], a["error"], dur, a["next_attempt_at_ms"]);
        assert_eq!(a["attempt"], i as u64 + 1);
        let Some(next) = attempts.get(i + 1) else { continue };
        let backoff = (RETRY_BASE_MS << i) as i64;
        let planned = a["next_attempt_at_ms"].as_i64().expect("a failed attempt plans its retry");
        assert!((planned - (at + dur) - backoff).abs() <= 5, "retry {} planned after {} ms, backoff {backoff} ms", i + 2, planned - at - dur);
        let next_at = next["at_ms"].as_i64().expect("a time");
        let due = if at < killed_ms && next_at >= killed_ms { planned.max(restarted_ms) } else { planned };
        assert!(next_at >= planned - 5, "retry {} is early", i + 2);
        assert!(next_at <= due + 750, "retry {} is {} ms late", i + 2, next_at - due);
    }
}
