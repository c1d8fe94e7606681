use super::*;

fn keys(user: &str, client: &str) -> [String; 2] {
    [format!("user:{user}"), format!("client:{client}")]
}

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.append(axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(), HeaderValue::from_str(v).unwrap());
    }
    h
}

#[test]
fn ten_failures_for_a_username_throttle_it_for_the_window() {
    let mut t = Throttle::default();
    let t0 = Instant::now();
    for i in 0..MAX_FAILURES {
        assert_eq!(t.retry_after(&keys("alice", &format!("10.0.0.{i}")), t0), None, "attempt {i}");
        t.failed(&keys("alice", &format!("10.0.0.{i}")), t0 + Duration::from_secs(i as u64));
    }
    let now = t0 + Duration::from_secs(60);
    let wait = t.retry_after(&keys("alice", "10.0.0.99"), now).expect("the username is throttled from any client");
    assert_eq!(wait, WINDOW - Duration::from_secs(60), "until the first failure leaves the window");
    assert_eq!(t.retry_after(&keys("bob", "10.0.0.99"), now), None, "other usernames are not");
    assert_eq!(t.retry_after(&keys("alice", "x"), t0 + WINDOW), None, "the first failure has left the window");
}

#[test]
fn ten_failures_from_a_client_throttle_it_for_any_username() {
    let mut t = Throttle::default();
    let t0 = Instant::now();
    for i in 0..MAX_FAILURES {
        t.failed(&keys(&format!("user{i}"), "10.0.0.1"), t0);
    }
    assert!(t.retry_after(&keys("someone-new", "10.0.0.1"), t0).is_some());
    assert!(t.retry_after(&keys("someone-new", "10.0.0.2"), t0).is_none(), "other clients are not");
}

#[test]
fn nine_failures_do_not_throttle_and_success_clears_the_username() {
    let mut t = Throttle::default();
    let t0 = Instant::now();
    for _ in 0..MAX_FAILURES - 1 {
        t.failed(&keys("alice", "c"), t0);
    }
    assert_eq!(t.retry_after(&keys("alice", "c"), t0), None);
    t.succeeded("user:alice");
    t.failed(&keys("alice", "d"), t0);
    assert_eq!(t.retry_after(&keys("alice", "e"), t0), None, "the count started again");
    assert!(t.failures["client:c"].len() == MAX_FAILURES - 1, "the client's failures still count");
}

#[test]
fn the_throttle_forgets_stale_keys_and_stays_bounded() {
    let mut t = Throttle::default();
    let t0 = Instant::now();
    for i in 0..MAX_TRACKED {
        t.failed(&[format!("client:{i}")], t0);
    }
    assert_eq!(t.failures.len(), MAX_TRACKED);
    t.failed(&keys("alice", "new"), t0 + WINDOW);
    assert_eq!(t.failures.len(), 2, "stale keys were dropped for the new ones");
    for i in 0..MAX_TRACKED + 5 {
        t.failed(&[format!("client:{i}")], t0 + WINDOW);
    }
    assert!(t.failures.len() <= MAX_TRACKED);
}

#[test]
fn the_session_cookie_is_found_among_others() {
    assert_eq!(session_cookie(&headers(&[("cookie", "a=1; classcast_session=tok123; b=2")])), Some("tok123"));
    assert_eq!(session_cookie(&headers(&[("cookie", "a=1"), ("cookie", "classcast_session=t2")])), Some("t2"));
    assert_eq!(session_cookie(&headers(&[("cookie", "classcast_session=")])), None, "cleared");
    assert_eq!(session_cookie(&headers(&[("cookie", "xclasscast_session=t")])), None);
    assert_eq!(session_cookie(&HeaderMap::new()), None);
}

#[test]
fn the_cookie_is_http_only_strict_and_secure_on_https() {
    let c = cookie(Some("tok"), false);
    assert_eq!(c.to_str().unwrap(), "classcast_session=tok; HttpOnly; SameSite=Strict; Path=/; Max-Age=43200");
    assert!(cookie(Some("tok"), true).to_str().unwrap().ends_with("; Secure"));
    assert_eq!(cookie(None, false).to_str().unwrap(), "classcast_session=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0");
}

#[test]
fn state_changing_cookie_requests_must_be_json() {
    let cookie_only = headers(&[("cookie", "classcast_session=t")]);
    assert!(needs_json(&Method::POST, &cookie_only));
    assert!(needs_json(&Method::DELETE, &cookie_only));
    assert!(!needs_json(&Method::GET, &cookie_only), "reads are safe");
    let with_key = headers(&[("cookie", "classcast_session=t"), ("authorization", "Bearer k")]);
    assert!(!needs_json(&Method::POST, &with_key), "the key is not sent by a browser on its own");
    assert!(!needs_json(&Method::POST, &HeaderMap::new()), "no credentials: the handler refuses it anyway");
    assert!(is_json(&headers(&[("content-type", "application/json; charset=utf-8")])));
    assert!(is_json(&headers(&[("content-type", "Application/JSON")])));
    for form in ["application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "text/plain", "application/jsonp"] {
        assert!(!is_json(&headers(&[("content-type", form)])), "{form}");
    }
    assert!(!is_json(&HeaderMap::new()));
}
