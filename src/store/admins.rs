//! Admin accounts and their sign-in sessions.
//!
//! Invariants:
//! - A password is kept only as an argon2id PHC string (random 16-byte salt, the
//!   crate's default cost); it is checked by the crate, in constant time. Hashing
//!   happens outside the connection lock (it takes tens of milliseconds).
//! - A sign-in for an unknown username still checks a password against a hash, so
//!   the answer takes as long as for a known one (no user enumeration by timing).
//! - A session token is 32 random bytes shown once (the cookie); only its SHA-256
//!   is stored. A session lasts `SESSION_TTL_MS` from sign-in, never longer, and
//!   expired sessions are deleted at every sign-in.
//! - Usernames are unique regardless of ASCII case.
//! - The last account is never deleted, and a signed-in admin cannot delete their
//!   own account.
//! - Account creation and deletion, sign-ins and sign-outs each write an audit row
//!   in the same transaction (`audit_log`, entity `admin`).

use std::sync::OnceLock;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::district::audit_entry;
use super::district::validate::FieldError;
use super::{Store, StoreError, new_id, unix_now};

/// How long a session lasts after sign-in: 12 hours.
pub const SESSION_TTL_MS: i64 = 12 * 3600 * 1000;
/// Shortest accepted password, in characters.
pub const MIN_PASSWORD: usize = 10;
/// Longest accepted password, in characters (bounds the work of one sign-in).
pub const MAX_PASSWORD: usize = 1024;
/// Longest username, in characters.
pub const MAX_USERNAME: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("{}: {}", .0.field, .0.reason)]
    Invalid(FieldError),
    #[error("{0}")]
    NotFound(String),
    /// The change is refused as it stands (the last account, one's own account).
    #[error("{0}")]
    Refused(String),
    #[error("password hashing failed: {0}")]
    Hash(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<rusqlite::Error> for AdminError {
    fn from(e: rusqlite::Error) -> Self {
        AdminError::Store(StoreError::Sql(e))
    }
}

impl From<FieldError> for AdminError {
    fn from(e: FieldError) -> Self {
        AdminError::Invalid(e)
    }
}

type Result<T> = std::result::Result<T, AdminError>;

/// An admin account, without its password hash.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct AdminUser {
    pub id: String,
    pub username: String,
    pub created_at: i64,
}

/// A new session: the token (for the cookie, never stored) and whose it is.
#[derive(Debug, Clone)]
pub struct AdminSession {
    pub token: String,
    pub user: AdminUser,
    pub expires_at_ms: i64,
}

/// Who makes a change, for the audit log and the self-deletion rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// A request with the admin key.
    Key,
    /// A signed-in admin.
    User(AdminUser),
    /// `classcast admin` on the server's command line.
    CommandLine,
}

impl Actor {
    fn describe(&self) -> String {
        match self {
            Actor::Key => "by the admin key".into(),
            Actor::User(u) => format!("by {}", u.username),
            Actor::CommandLine => "from the command line".into(),
        }
    }
}

/// The SHA-256 of a session token, hex: what the store keeps.
fn session_hash(token: &str) -> String {
    Sha256::digest(token.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

fn new_session_token() -> String {
    use base64::Engine;
    use rand::Rng;
    let bytes: [u8; 32] = rand::rng().random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// An argon2id PHC string of `password` with a fresh random salt.
pub fn hash_password(password: &str) -> Result<String> {
    use rand::Rng;
    let salt_bytes: [u8; 16] = rand::rng().random();
    let salt = SaltString::encode_b64(&salt_bytes).map_err(|e| AdminError::Hash(e.to_string()))?;
    let hash = Argon2::default().hash_password(password.as_bytes(), &salt).map_err(|e| AdminError::Hash(e.to_string()))?;
    Ok(hash.to_string())
}

/// Whether `password` matches the PHC string `phc` (false for a malformed one).
pub fn verify_password(password: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(parsed) => Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok(),
        Err(_) => false,
    }
}

/// A hash no password is known to match: what unknown usernames are checked against.
fn decoy_hash() -> &'static str {
    static DECOY: OnceLock<String> = OnceLock::new();
    // Hashing a fixed-length random string with a fresh salt only fails on an invalid salt,
    // and a 16-byte salt is valid.
    DECOY.get_or_init(|| hash_password(&crate::config::random_secret()).expect("a 16-byte salt is valid"))
}

/// A username: trimmed, 1-64 characters, no whitespace or control characters.
pub fn check_username(value: &str) -> std::result::Result<String, FieldError> {
    let v = value.trim();
    if v.is_empty() {
        return Err(FieldError::new("username", "must not be empty"));
    }
    if v.chars().count() > MAX_USERNAME {
        return Err(FieldError::new("username", format!("at most {MAX_USERNAME} characters")));
    }
    if v.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(FieldError::new("username", "no spaces or control characters"));
    }
    Ok(v.to_string())
}

/// A new password: at least `MIN_PASSWORD` characters, at most `MAX_PASSWORD`.
pub fn check_password(value: &str) -> std::result::Result<(), FieldError> {
    let n = value.chars().count();
    if n < MIN_PASSWORD {
        return Err(FieldError::new("password", format!("at least {MIN_PASSWORD} characters")));
    }
    if n > MAX_PASSWORD {
        return Err(FieldError::new("password", format!("at most {MAX_PASSWORD} characters")));
    }
    Ok(())
}

impl Store {
    /// One change and its audit row in one transaction.
    fn admin_change<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let mut conn = self.conn.lock().map_err(|_| StoreError::Poisoned)?;
        let tx = conn.transaction()?;
        let out = f(&tx)?;
        tx.commit()?;
        Ok(out)
    }

    /// Creates an account; the username must be free (422 `username` otherwise).
    pub fn create_admin(&self, username: &str, password: &str, by: &Actor) -> Result<AdminUser> {
        let username = check_username(username)?;
        check_password(password)?;
        let hash = hash_password(password)?;
        let user = AdminUser { id: new_id('a'), username, created_at: unix_now() };
        self.admin_change(|c| {
            let taken = c.query_row("SELECT 1 FROM admin_users WHERE username = ?1", [&user.username], |_| Ok(())).optional()?;
            if taken.is_some() {
                return Err(FieldError::new("username", "already taken").into());
            }
            c.execute(
                "INSERT INTO admin_users (id, username, password_hash, created_at) VALUES (?1, ?2, ?3, ?4)",
                params![user.id, user.username, hash, user.created_at],
            )?;
            audit_admin(c, "create", &user, by)
        })?;
        Ok(user)
    }

    /// Every account, by username.
    pub fn admins(&self) -> Result<Vec<AdminUser>> {
        let conn = self.conn.lock().map_err(|_| StoreError::Poisoned)?;
        let mut st = conn.prepare("SELECT id, username, created_at FROM admin_users ORDER BY username, id")?;
        Ok(st.query_map([], user_row)?.collect::<rusqlite::Result<_>>()?)
    }

    /// Deletes an account and its sessions; never the last one, never the actor's own.
    pub fn delete_admin(&self, id: &str, by: &Actor) -> Result<()> {
        if matches!(by, Actor::User(u) if u.id == id) {
            return Err(AdminError::Refused("you cannot delete your own account".into()));
        }
        self.admin_change(|c| {
            let sql = "SELECT id, username, created_at FROM admin_users WHERE id = ?1";
            let user = c.query_row(sql, [id], user_row).optional()?.ok_or_else(|| AdminError::NotFound(format!("admin {id} does not exist")))?;
            let count: i64 = c.query_row("SELECT COUNT(*) FROM admin_users", [], |r| r.get(0))?;
            if count <= 1 {
                return Err(AdminError::Refused("the last admin account cannot be deleted".into()));
            }
            c.execute("DELETE FROM admin_users WHERE id = ?1", [id])?;
            audit_admin(c, "delete", &user, by)
        })
    }

    /// Checks a username and password; on success opens a session (and deletes expired
    /// ones). `None` for an unknown username or a wrong password alike.
    pub fn sign_in(&self, username: &str, password: &str, now_ms: i64) -> Result<Option<AdminSession>> {
        let found = self.password_of(username.trim())?;
        let phc = found.as_ref().map(|(_, h)| h.as_str()).unwrap_or_else(|| decoy_hash());
        let ok = verify_password(password, phc);
        let Some((user, _)) = found.filter(|_| ok) else { return Ok(None) };
        let token = new_session_token();
        let expires_at_ms = now_ms + SESSION_TTL_MS;
        self.admin_change(|c| {
            c.execute("DELETE FROM admin_sessions WHERE expires_at_ms <= ?1", [now_ms])?;
            c.execute(
                "INSERT INTO admin_sessions (token_hash, user_id, created_at_ms, expires_at_ms) VALUES (?1, ?2, ?3, ?4)",
                params![session_hash(&token), user.id, now_ms, expires_at_ms],
            )?;
            Ok(audit_entry(c, "sign_in", "admin", &user.id, &user.username)?)
        })?;
        Ok(Some(AdminSession { token, user, expires_at_ms }))
    }

    fn password_of(&self, username: &str) -> Result<Option<(AdminUser, String)>> {
        let conn = self.conn.lock().map_err(|_| StoreError::Poisoned)?;
        let sql = "SELECT id, username, created_at, password_hash FROM admin_users WHERE username = ?1";
        Ok(conn.query_row(sql, [username], |r| Ok((user_row(r)?, r.get(3)?))).optional()?)
    }

    /// The account a session token belongs to, and when the session ends, while it lasts.
    pub fn admin_by_session(&self, token: &str, now_ms: i64) -> Result<Option<(AdminUser, i64)>> {
        let conn = self.conn.lock().map_err(|_| StoreError::Poisoned)?;
        let sql = "SELECT u.id, u.username, u.created_at, s.expires_at_ms FROM admin_sessions s
                   JOIN admin_users u ON u.id = s.user_id WHERE s.token_hash = ?1 AND s.expires_at_ms > ?2";
        Ok(conn.query_row(sql, params![session_hash(token), now_ms], |r| Ok((user_row(r)?, r.get(3)?))).optional()?)
    }

    /// Ends a session; false when there was none with this token.
    pub fn sign_out(&self, token: &str) -> Result<bool> {
        self.admin_change(|c| {
            let sql = "SELECT u.id, u.username, u.created_at FROM admin_sessions s JOIN admin_users u ON u.id = s.user_id WHERE s.token_hash = ?1";
            let Some(user) = c.query_row(sql, [session_hash(token)], user_row).optional()? else { return Ok(false) };
            c.execute("DELETE FROM admin_sessions WHERE token_hash = ?1", [session_hash(token)])?;
            audit_entry(c, "sign_out", "admin", &user.id, &user.username)?;
            Ok(true)
        })
    }

    /// Deletes sessions that ended at or before `now_ms`; returns how many.
    pub fn purge_expired_sessions(&self, now_ms: i64) -> Result<usize> {
        let conn = self.conn.lock().map_err(|_| StoreError::Poisoned)?;
        Ok(conn.execute("DELETE FROM admin_sessions WHERE expires_at_ms <= ?1", [now_ms])?)
    }
}

fn audit_admin(c: &Connection, action: &str, user: &AdminUser, by: &Actor) -> Result<()> {
    Ok(audit_entry(c, action, "admin", &user.id, &format!("{} {}", user.username, by.describe()))?)
}

fn user_row(r: &rusqlite::Row) -> rusqlite::Result<AdminUser> {
    Ok(AdminUser { id: r.get(0)?, username: r.get(1)?, created_at: r.get(2)? })
}

#[cfg(test)]
mod tests;
