use super::*;

const PW: &str = "correct horse battery";
const T0: i64 = 1_750_000_000_000;

fn store_with(username: &str) -> (Store, AdminUser) {
    let s = Store::open_in_memory().unwrap();
    let u = s.create_admin(username, PW, &Actor::CommandLine).unwrap();
    (s, u)
}

fn audit_actions(s: &Store) -> Vec<(String, String)> {
    let (rows, _) = s.audit_log(200, 0).unwrap();
    rows.into_iter().filter(|r| r.entity == "admin").map(|r| (r.action, r.summary)).collect()
}

#[test]
fn passwords_are_argon2id_phc_strings_that_verify() {
    let phc = hash_password(PW).unwrap();
    assert!(phc.starts_with("$argon2id$v=19$"), "{phc}");
    assert!(verify_password(PW, &phc));
    assert!(!verify_password("correct horse battery ", &phc));
    assert!(!verify_password(PW, "not a phc string"));
    assert_ne!(hash_password(PW).unwrap(), phc, "a fresh salt each time");
}

#[test]
fn the_store_keeps_the_hash_not_the_password() {
    let (s, u) = store_with("alice");
    let stored: String = s.with(|c| c.query_row("SELECT password_hash FROM admin_users WHERE id = ?1", [&u.id], |r| r.get(0))).unwrap();
    assert!(!stored.contains(PW));
    assert!(verify_password(PW, &stored));
}

#[test]
fn sign_in_needs_the_right_password_and_a_known_user() {
    let (s, u) = store_with("alice");
    assert!(s.sign_in("alice", "wrong password!", T0).unwrap().is_none());
    assert!(s.sign_in("mallory", PW, T0).unwrap().is_none(), "unknown user");
    assert!(s.sign_in("alice", "", T0).unwrap().is_none());
    let session = s.sign_in(" ALICE ", PW, T0).unwrap().expect("right password, any ASCII case");
    assert_eq!(session.user, u);
    assert_eq!(session.expires_at_ms, T0 + SESSION_TTL_MS);
    assert_eq!(session.token.len(), 43, "32 bytes, base64url");
    let stored: String = s.with(|c| c.query_row("SELECT token_hash FROM admin_sessions", [], |r| r.get(0))).unwrap();
    assert_eq!(stored, session_hash(&session.token));
    assert_ne!(stored, session.token, "only the hash is kept");
}

#[test]
fn sessions_expire_after_twelve_hours() {
    let (s, u) = store_with("alice");
    let session = s.sign_in("alice", PW, T0).unwrap().unwrap();
    assert_eq!(s.admin_by_session(&session.token, T0 + 1).unwrap(), Some((u.clone(), T0 + SESSION_TTL_MS)));
    assert!(s.admin_by_session(&session.token, T0 + SESSION_TTL_MS - 1).unwrap().is_some());
    assert_eq!(s.admin_by_session(&session.token, T0 + SESSION_TTL_MS).unwrap(), None, "ended");
    assert_eq!(s.admin_by_session("not-a-token", T0).unwrap(), None);
}

#[test]
fn expired_sessions_are_purged() {
    let (s, _) = store_with("alice");
    let old = s.sign_in("alice", PW, T0).unwrap().unwrap();
    let newer = s.sign_in("alice", PW, T0 + 3_600_000).unwrap().unwrap();
    let count = |s: &Store| -> i64 { s.with(|c| c.query_row("SELECT COUNT(*) FROM admin_sessions", [], |r| r.get(0))).unwrap() };
    assert_eq!(count(&s), 2);
    assert_eq!(s.purge_expired_sessions(T0 + SESSION_TTL_MS).unwrap(), 1, "only the first one ended");
    assert_eq!(s.admin_by_session(&old.token, T0).unwrap(), None, "purged rows are gone even at an earlier clock");
    assert!(s.admin_by_session(&newer.token, T0 + SESSION_TTL_MS).unwrap().is_some());
    // A sign-in long after purges what ended before it.
    s.sign_in("alice", PW, T0 + 2 * SESSION_TTL_MS).unwrap().unwrap();
    assert_eq!(count(&s), 1);
}

#[test]
fn sign_out_ends_the_session() {
    let (s, _) = store_with("alice");
    let session = s.sign_in("alice", PW, T0).unwrap().unwrap();
    assert!(s.sign_out(&session.token).unwrap());
    assert_eq!(s.admin_by_session(&session.token, T0 + 1).unwrap(), None);
    assert!(!s.sign_out(&session.token).unwrap(), "already ended");
}

#[test]
fn new_accounts_are_validated() {
    let (s, _) = store_with("alice");
    let field = |r: Result<AdminUser>| match r {
        Err(AdminError::Invalid(f)) => (f.field, f.reason),
        other => panic!("expected a field error, got {other:?}"),
    };
    assert_eq!(field(s.create_admin("bob", "short", &Actor::Key)), ("password".into(), "at least 10 characters".into()));
    assert_eq!(field(s.create_admin("bob", "123456789", &Actor::Key)).0, "password", "9 characters");
    assert!(s.create_admin("bob", "密码密码密码密码密码", &Actor::Key).is_ok(), "10 characters, not bytes");
    assert_eq!(field(s.create_admin("Alice", PW, &Actor::Key)), ("username".into(), "already taken".into()));
    assert_eq!(field(s.create_admin("  ", PW, &Actor::Key)).0, "username");
    assert_eq!(field(s.create_admin("a b", PW, &Actor::Key)).0, "username");
    assert_eq!(field(s.create_admin(&"x".repeat(MAX_USERNAME + 1), PW, &Actor::Key)).0, "username");
    let names: Vec<String> = s.admins().unwrap().into_iter().map(|u| u.username).collect();
    assert_eq!(names, ["alice", "bob"]);
}

#[test]
fn accounts_can_be_deleted_but_not_ones_own_or_the_last() {
    let (s, alice) = store_with("alice");
    let bob = s.create_admin("bob", PW, &Actor::User(alice.clone())).unwrap();
    let bobs = s.sign_in("bob", PW, T0).unwrap().unwrap();
    assert!(matches!(s.delete_admin(&alice.id, &Actor::User(alice.clone())), Err(AdminError::Refused(_))), "not oneself");
    assert!(matches!(s.delete_admin("a000000000000", &Actor::Key), Err(AdminError::NotFound(_))));
    s.delete_admin(&bob.id, &Actor::User(alice.clone())).unwrap();
    assert_eq!(s.admin_by_session(&bobs.token, T0 + 1).unwrap(), None, "sessions go with the account");
    assert!(matches!(s.delete_admin(&alice.id, &Actor::Key), Err(AdminError::Refused(_))), "the last one stays");
    assert_eq!(s.admins().unwrap(), vec![alice]);
}

#[test]
fn account_changes_and_sign_ins_are_audited() {
    let (s, alice) = store_with("alice");
    let bob = s.create_admin("bob", PW, &Actor::User(alice.clone())).unwrap();
    let session = s.sign_in("alice", PW, T0).unwrap().unwrap();
    assert!(s.sign_in("alice", "wrong password!", T0).unwrap().is_none());
    s.sign_out(&session.token).unwrap();
    s.delete_admin(&bob.id, &Actor::Key).unwrap();
    let got = audit_actions(&s);
    let want = [
        ("delete", "bob by the admin key"),
        ("sign_out", "alice"),
        ("sign_in", "alice"),
        ("create", "bob by alice"),
        ("create", "alice from the command line"),
    ];
    assert_eq!(got, want.map(|(a, b)| (a.to_string(), b.to_string())), "newest first; a failed sign-in writes nothing");
}

#[test]
fn a_refused_change_writes_no_audit_row() {
    let (s, alice) = store_with("alice");
    assert!(s.delete_admin(&alice.id, &Actor::Key).is_err());
    assert!(s.create_admin("alice", PW, &Actor::Key).is_err());
    assert_eq!(audit_actions(&s).len(), 1, "only the creation");
}
