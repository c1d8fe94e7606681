//! Admin sign-in against the real `classcast` binary: an account made with
//! `classcast admin add-user` signs in, its cookie opens the district API (JSON only
//! for changes), wrong credentials are one uniform 401, guessing is throttled per
//! username and per client (429 + Retry-After), signing out ends the cookie, and the
//! admin key keeps working throughout.

use std::io::Write;
use std::net::IpAddr;
use std::process::{Command, Output, Stdio};

use reqwest::header::{CONTENT_TYPE, COOKIE, RETRY_AFTER, SET_COOKIE};
use serde_json::{Value, json};

mod common;
use common::Server;

const KEY: &str = "admin-session-test-key";
const PW: &str = "a long enough password";

/// `classcast admin add-user` on the server's data directory; the password from the
/// environment (`Some`) or standard input (`None`, then `stdin` is written).
fn add_user(s: &Server, username: &str, env_password: Option<&str>, stdin: &str) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_classcast"));
    cmd.args(["admin", "add-user", "--username", username, "--data-dir"]).arg(&s.dir);
    cmd.env_remove("CLASSCAST_ADMIN_PASSWORD").env("RUST_LOG", "warn");
    if let Some(p) = env_password {
        cmd.env("CLASSCAST_ADMIN_PASSWORD", p);
    }
    let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("the CLI starts");
    child.stdin.take().expect("piped").write_all(stdin.as_bytes()).expect("stdin written");
    child.wait_with_output().expect("the CLI ends")
}

/// A client whose requests come from `ip` (any 127.0.0.0/8 address is this host).
fn client_from(ip: [u8; 4]) -> reqwest::Client {
    reqwest::Client::builder().local_address(IpAddr::from(ip)).build().expect("a client")
}

struct Reply {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

async fn send(req: reqwest::RequestBuilder) -> Reply {
    let resp = req.send().await.expect("the server answers");
    let (status, headers) = (resp.status().as_u16(), resp.headers().clone());
    let text = resp.text().await.expect("a body");
    Reply { status, headers, body: serde_json::from_str(&text).unwrap_or(Value::Null) }
}

impl Server {
    fn url(&self, path: &str) -> String {
        format!("{}/api{path}", self.base)
    }

    async fn sign_in_from(&self, http: &reqwest::Client, username: &str, password: &str) -> Reply {
        send(http.post(self.url("/session")).json(&json!({"username": username, "password": password}))).await
    }

    /// Signs in and returns the `Cookie` header value of the session.
    async fn sign_in(&self, username: &str, password: &str) -> String {
        let r = self.sign_in_from(&self.http, username, password).await;
        assert_eq!(r.status, 200, "sign-in of {username}: {}", r.body);
        let set = r.headers.get(SET_COOKIE).expect("a Set-Cookie").to_str().expect("ASCII");
        set.split(';').next().expect("name=value").to_string()
    }

    async fn with_cookie(&self, method: reqwest::Method, path: &str, cookie: &str, json_body: Option<Value>) -> Reply {
        let mut req = self.http.request(method, self.url(path)).header(COOKIE, cookie);
        if let Some(b) = json_body {
            req = req.json(&b);
        }
        send(req).await
    }

    async fn with_key(&self, method: reqwest::Method, path: &str, json_body: Option<Value>) -> Reply {
        let mut req = self.http.request(method, self.url(path)).bearer_auth(KEY);
        if let Some(b) = json_body {
            req = req.json(&b);
        }
        send(req).await
    }

    async fn audit(&self) -> Vec<(String, String)> {
        let r = self.with_key(reqwest::Method::GET, "/audit", None).await;
        let entries = r.body["entries"].as_array().cloned().unwrap_or_default();
        entries.iter().map(|e| (e["action"].as_str().unwrap_or("").to_string(), e["summary"].as_str().unwrap_or("").to_string())).collect()
    }
}

use reqwest::Method as M;

#[tokio::test]
async fn a_cli_account_signs_in_and_its_cookie_opens_the_admin_api_until_sign_out() {
    let s = Server::start("admin-session", KEY, &[]).await;
    let made = add_user(&s, "alice", Some(PW), "");
    assert!(made.status.success(), "add-user: {}", String::from_utf8_lossy(&made.stderr));
    assert!(String::from_utf8_lossy(&made.stdout).contains("alice"), "it says what it made");
    let short = add_user(&s, "bob", Some("short"), "");
    assert!(!short.status.success(), "a short password is refused");
    assert!(String::from_utf8_lossy(&short.stderr).contains("password: at least 10 characters"), "{}", String::from_utf8_lossy(&short.stderr));
    let piped = add_user(&s, "carol", None, "carols password\n");
    assert!(piped.status.success(), "password from stdin: {}", String::from_utf8_lossy(&piped.stderr));
    assert_eq!(add_user(&s, "Alice", Some(PW), "").status.code(), Some(1), "a taken username");

    let r = s.sign_in_from(&s.http, "alice", PW).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["user"]["username"], "alice");
    let set = r.headers.get(SET_COOKIE).expect("a Set-Cookie").to_str().unwrap().to_string();
    assert!(set.starts_with("classcast_session="), "{set}");
    for attr in ["; HttpOnly", "; SameSite=Strict", "; Path=/", "; Max-Age=43200"] {
        assert!(set.contains(attr), "{attr} in {set}");
    }
    assert!(!set.contains("Secure"), "the public URL is http: {set}");
    let cookie = set.split(';').next().unwrap().to_string();
    assert_eq!(s.sign_in("carol", "carols password").await.len(), cookie.len(), "carol's stdin password works");

    let me = s.with_cookie(M::GET, "/session", &cookie, None).await;
    assert_eq!((me.status, me.body["user"]["username"].clone()), (200, json!("alice")));
    assert_eq!(s.with_cookie(M::GET, "/schools", &cookie, None).await.status, 200, "the cookie opens the district API");
    let made = s.with_cookie(M::POST, "/schools", &cookie, Some(json!({"name": "一中"}))).await;
    assert_eq!(made.status, 201, "{}", made.body);

    // Changes signed in by cookie alone must be JSON (what a cross-site form cannot send).
    for ct in ["text/plain", "application/x-www-form-urlencoded"] {
        let forged = send(s.http.post(s.url("/schools")).header(COOKIE, &cookie).header(CONTENT_TYPE, ct).body(r#"{"name": "forged"}"#)).await;
        assert_eq!((forged.status, forged.body["error"].clone()), (415, json!("json_required")), "{ct}");
    }
    let no_type = send(s.http.post(format!("{}/revoke", s.url("/rooms/d000000000000"))).header(COOKIE, &cookie)).await;
    assert_eq!(no_type.status, 415, "a bodiless POST too");
    let schools = s.with_key(M::GET, "/schools", None).await;
    assert_eq!(schools.body.as_array().map(Vec::len), Some(1), "nothing forged was saved");
    assert_eq!(s.with_cookie(M::GET, "/schools", "classcast_session=forged-token", None).await.status, 401);
    assert_eq!(send(s.http.get(s.url("/schools"))).await.status, 401, "no credentials");

    let out = s.with_cookie(M::DELETE, "/session", &cookie, Some(json!({}))).await;
    assert_eq!(out.status, 204);
    assert!(out.headers.get(SET_COOKIE).unwrap().to_str().unwrap().contains("Max-Age=0"), "the cookie is cleared");
    assert_eq!(s.with_cookie(M::GET, "/schools", &cookie, None).await.status, 401, "signed out");
    assert_eq!(s.with_cookie(M::GET, "/session", &cookie, None).await.status, 401);
    assert_eq!(s.with_key(M::GET, "/schools", None).await.status, 200, "the admin key still works");

    let audit = s.audit().await;
    for (action, summary) in [("create", "alice from the command line"), ("sign_in", "alice"), ("sign_out", "alice"), ("create", "carol from the command line")] {
        assert!(audit.contains(&(action.into(), summary.into())), "{action} {summary} in {audit:?}");
    }
}

#[tokio::test]
async fn wrong_credentials_get_one_401_and_guessing_is_throttled() {
    let s = Server::start("admin-throttle", KEY, &[]).await;
    assert!(add_user(&s, "alice", Some(PW), "").status.success());
    let from = |last: u8| client_from([127, 0, 0, last]);

    let wrong_pw = s.sign_in_from(&from(2), "alice", "not the password").await;
    let no_user = s.sign_in_from(&from(2), "nobody", "not the password").await;
    assert_eq!((wrong_pw.status, no_user.status), (401, 401));
    assert_eq!(wrong_pw.body, no_user.body, "one message for both: no user enumeration");
    assert!(wrong_pw.headers.get(SET_COOKIE).is_none());

    // One client, ten usernames: that client is throttled, even with the right password.
    for i in 0..10 {
        assert_eq!(s.sign_in_from(&from(3), &format!("guess{i}"), "wrong").await.status, 401, "guess {i}");
    }
    let throttled = s.sign_in_from(&from(3), "alice", PW).await;
    assert_eq!((throttled.status, throttled.body["error"].clone()), (429, json!("too_many_attempts")), "{}", throttled.body);
    let retry: u64 = throttled.headers.get(RETRY_AFTER).expect("Retry-After").to_str().unwrap().parse().unwrap();
    assert!((1..=300).contains(&retry), "Retry-After {retry}");
    assert_eq!(s.sign_in_from(&from(4), "alice", PW).await.status, 200, "another client is not throttled");

    // One username, two clients: the username is throttled from anywhere.
    for last in [5, 6] {
        for _ in 0..5 {
            assert_eq!(s.sign_in_from(&from(last), "alice", "wrong").await.status, 401);
        }
    }
    let r = s.sign_in_from(&from(7), "alice", PW).await;
    assert_eq!(r.status, 429, "alice is throttled from a fresh client: {}", r.body);
    assert!(r.headers.get(RETRY_AFTER).is_some());
    assert_eq!(s.with_key(M::GET, "/schools", None).await.status, 200, "the admin key is never throttled");
}

#[tokio::test]
async fn admin_accounts_are_managed_over_the_api() {
    let s = Server::start("admin-accounts", KEY, &[]).await;
    assert!(add_user(&s, "alice", Some(PW), "").status.success());
    let alice = s.sign_in("alice", PW).await;
    let unauth = send(s.http.post(s.url("/admins")).json(&json!({"username": "x", "password": PW}))).await;
    assert_eq!(unauth.status, 401);

    let short = s.with_cookie(M::POST, "/admins", &alice, Some(json!({"username": "bob", "password": "123456789"}))).await;
    assert_eq!((short.status, short.body["field"].clone(), short.body["reason"].clone()), (422, json!("password"), json!("at least 10 characters")));
    let taken = s.with_cookie(M::POST, "/admins", &alice, Some(json!({"username": "ALICE", "password": PW}))).await;
    assert_eq!((taken.status, taken.body["field"].clone()), (422, json!("username")));
    let bob = s.with_cookie(M::POST, "/admins", &alice, Some(json!({"username": "bob", "password": PW}))).await;
    assert_eq!(bob.status, 201, "{}", bob.body);
    assert!(bob.body.get("password_hash").is_none(), "never the hash");
    let bob_id = bob.body["id"].as_str().unwrap().to_string();
    let list = s.with_key(M::GET, "/admins", None).await;
    let names: Vec<&str> = list.body.as_array().unwrap().iter().map(|u| u["username"].as_str().unwrap()).collect();
    assert_eq!(names, ["alice", "bob"]);

    let bobs = s.sign_in("bob", PW).await;
    let alice_id = s.with_cookie(M::GET, "/session", &alice, None).await.body["user"]["id"].as_str().unwrap().to_string();
    let own = s.with_cookie(M::DELETE, &format!("/admins/{alice_id}"), &alice, Some(json!({}))).await;
    assert_eq!((own.status, own.body["error"].clone()), (409, json!("refused")), "not oneself");
    assert_eq!(s.with_cookie(M::DELETE, &format!("/admins/{bob_id}"), &alice, Some(json!({}))).await.status, 204);
    assert_eq!(s.with_cookie(M::GET, "/session", &bobs, None).await.status, 401, "bob's session went with his account");
    assert_eq!(s.with_key(M::DELETE, &format!("/admins/{alice_id}"), None).await.status, 409, "not the last one");
    assert_eq!(s.with_key(M::DELETE, "/admins/a000000000000", None).await.status, 404);
    let audit = s.audit().await;
    assert!(audit.contains(&("create".into(), "bob by alice".into())), "{audit:?}");
    assert!(audit.contains(&("delete".into(), "bob by alice".into())), "{audit:?}");
}
