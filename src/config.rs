//! Server configuration: command-line flags, then `CLASSCAST_*` environment
//! variables, then a TOML file (`--config`), then embedded defaults.
//!
//! Invariant: a resolved `Config` is complete; secrets that were not given are
//! generated once and kept in the data directory, so links stay valid across
//! restarts.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use serde::Deserialize;

#[derive(Debug, clap::Parser)]
#[command(name = "classcast", version, about = "Live classroom media server")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, clap::Subcommand)]
#[allow(clippy::large_enum_variant, reason = "parsed once at start")]
pub enum Command {
    /// Run the server.
    Serve(ServeArgs),
    /// Manage the accounts of the admin pages (with the server running or not).
    Admin(AdminArgs),
}

#[derive(Debug, clap::Args)]
pub struct AdminArgs {
    #[command(subcommand)]
    pub command: AdminCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum AdminCommand {
    /// Create an admin account. The password is read from CLASSCAST_ADMIN_PASSWORD, else
    /// from standard input (asked twice, without echo, on a terminal); at least 10 characters.
    AddUser {
        /// The new account's username (1-64 characters, no spaces).
        #[arg(long)]
        username: String,
        #[command(flatten)]
        data: DataArgs,
    },
}

/// Where the database is: resolved like `serve` resolves it (flag, environment, file, default).
#[derive(Debug, Default, Clone, clap::Args)]
pub struct DataArgs {
    /// TOML file of the server (only its `data_dir` is read).
    #[arg(long, env = "CLASSCAST_CONFIG")]
    pub config: Option<PathBuf>,
    /// Directory for the database and generated secrets.
    #[arg(long, env = "CLASSCAST_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
}

impl DataArgs {
    /// The data directory, created if missing.
    pub fn resolve(self) -> Result<PathBuf, ConfigError> {
        let file = match &self.config {
            Some(path) => read_file(path)?,
            None => ServeArgs::default(),
        };
        data_dir(self.data_dir.or(file.data_dir))
    }
}

/// Every setting is optional here; `Config::resolve` fills the gaps.
#[derive(Debug, Default, Clone, clap::Args, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServeArgs {
    /// TOML file with any of the settings below (same names, underscores).
    #[arg(long, env = "CLASSCAST_CONFIG")]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// HTTP listen address (pages, API, WebSocket, WHIP/WHEP).
    #[arg(long, env = "CLASSCAST_HTTP")]
    pub http: Option<SocketAddr>,
    /// UDP port shared by every WebRTC peer.
    #[arg(long, env = "CLASSCAST_MEDIA_PORT")]
    pub media_port: Option<u16>,
    /// Address the media socket binds (default: the first advertised address).
    #[arg(long, env = "CLASSCAST_MEDIA_BIND")]
    pub media_bind: Option<IpAddr>,
    /// ICE host candidates advertised to peers, comma-separated.
    #[arg(long, env = "CLASSCAST_ADVERTISE", value_delimiter = ',')]
    pub advertise: Option<Vec<IpAddr>>,
    /// Directory for the database and generated secrets.
    #[arg(long, env = "CLASSCAST_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Bearer key of the admin API (generated into the data directory if absent).
    #[arg(long, env = "CLASSCAST_ADMIN_KEY")]
    pub admin_key: Option<String>,
    /// Secret that signs join tokens (generated into the data directory if absent).
    #[arg(long, env = "CLASSCAST_TOKEN_SECRET")]
    pub token_secret: Option<String>,
    /// Directory of the web client pages.
    #[arg(long, env = "CLASSCAST_WEB_ROOT")]
    pub web_root: Option<PathBuf>,
    /// Forwarding threads (default: one per core).
    #[arg(long, env = "CLASSCAST_WORKERS")]
    pub workers: Option<usize>,
    /// Base URL used in join links (default: http://<http address>).
    #[arg(long, env = "CLASSCAST_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Render each lesson's composite MP4 after class (default: true).
    #[arg(long, env = "CLASSCAST_AUTO_EXPORT")]
    pub auto_export: Option<bool>,
    /// Accept `POST /api/debug/recorder-fault` (admin key) to test recorder supervision
    /// (default: false; never enable in production).
    #[arg(long, env = "CLASSCAST_FAULT_INJECTION")]
    pub fault_injection: Option<bool>,
    /// Recording pauses while the recordings disk has less free space than this, in MB
    /// (default: 256), so the disk never fills up.
    #[arg(long, env = "CLASSCAST_RECORDING_MIN_FREE_MB")]
    pub recording_min_free_mb: Option<u64>,
    /// Delete recorded lessons (files and catalog) this many days after they ended
    /// (default: 0, keep forever).
    #[arg(long, env = "CLASSCAST_RETENTION_DAYS")]
    pub retention_days: Option<u32>,
    /// Seconds an empty class stays open before it closes and its lesson ends, so that a
    /// lone teacher's reload does not split the lesson (default: 10).
    #[arg(long, env = "CLASSCAST_EMPTY_GRACE_SECS")]
    pub empty_grace_secs: Option<u64>,
    /// Shift the timetable's clock by this many ms (default: 0). For tests and drills of a
    /// school day; recordings keep real time.
    #[arg(long, env = "CLASSCAST_CLOCK_OFFSET_MS", allow_hyphen_values = true)]
    pub clock_offset_ms: Option<i64>,
    /// Wait before retrying a failed webhook delivery, in ms; it doubles per failure, up to
    /// 10 minutes, for 10 attempts (default: 2000).
    #[arg(long, env = "CLASSCAST_WEBHOOK_RETRY_BASE_MS")]
    pub webhook_retry_base_ms: Option<u64>,
    /// Also accept ICE over TCP on the media port number (passive TCP candidates, RFC
    /// 6544), for schools whose firewalls block UDP (default: true).
    #[arg(long, env = "CLASSCAST_ICE_TCP")]
    pub ice_tcp: Option<bool>,
    /// Address of the RTMP listener for bridges (encoders push rtmp://<this>/live/<stream key>;
    /// default: 127.0.0.1:1935).
    #[arg(long, env = "CLASSCAST_RTMP_LISTEN")]
    pub rtmp_listen: Option<SocketAddr>,
    /// Longest wait between two attempts of a bridge whose source dropped, in ms; the wait
    /// starts at 500 ms and doubles up to this (default: 2000).
    #[arg(long, env = "CLASSCAST_BRIDGE_RETRY_MAX_MS")]
    pub bridge_retry_max_ms: Option<u64>,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub http: SocketAddr,
    pub media_bind: SocketAddr,
    pub advertise: Vec<IpAddr>,
    pub data_dir: PathBuf,
    pub admin_key: String,
    pub token_secret: String,
    pub web_root: PathBuf,
    pub workers: usize,
    pub public_url: String,
    pub auto_export: bool,
    pub fault_injection: bool,
    pub recording_min_free_mb: u64,
    pub retention_days: u32,
    pub empty_grace: std::time::Duration,
    pub clock_offset_ms: i64,
    /// Wait after a webhook delivery's first failed attempt (at least 1 ms).
    pub webhook_retry_base: std::time::Duration,
    /// Listen for ICE-TCP on the media port number too.
    pub ice_tcp: bool,
    /// RTMP listener of the bridges.
    pub rtmp_listen: SocketAddr,
    /// Retry timing of the bridges.
    pub bridge_backoff: crate::bridges::Backoff,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("invalid config file {path}: {source}")]
    Parse { path: PathBuf, source: toml::de::Error },
    #[error("data directory {path}: {source}")]
    DataDir { path: PathBuf, source: std::io::Error },
    #[error("--advertise needs at least one address")]
    NoAdvertise,
}

pub const DEFAULT_HTTP: &str = "127.0.0.1:8080";
pub const DEFAULT_MEDIA_PORT: u16 = 50_000;
pub const DEFAULT_RTMP: &str = "127.0.0.1:1935";

/// Bridge retries: from 500 ms doubling up to the given maximum (at least 500 ms).
fn bridge_backoff(max_ms: Option<u64>) -> crate::bridges::Backoff {
    let base = crate::bridges::Backoff::default();
    let max = max_ms.map_or(base.max, |ms| std::time::Duration::from_millis(ms).max(base.base));
    crate::bridges::Backoff { max, ..base }
}

impl Config {
    pub fn resolve(args: ServeArgs) -> Result<Config, ConfigError> {
        let file = match &args.config {
            Some(path) => read_file(path)?,
            None => ServeArgs::default(),
        };
        let a = merge(args, file);
        let advertise = a.advertise.unwrap_or_else(|| vec![IpAddr::from([127, 0, 0, 1])]);
        let first = *advertise.first().ok_or(ConfigError::NoAdvertise)?;
        let data_dir = data_dir(a.data_dir)?;
        // A literal address always parses.
        let http = a.http.unwrap_or_else(|| DEFAULT_HTTP.parse().expect("constant address"));
        Ok(Config {
            http,
            media_bind: SocketAddr::new(a.media_bind.unwrap_or(first), a.media_port.unwrap_or(DEFAULT_MEDIA_PORT)),
            advertise,
            admin_key: secret(a.admin_key, &data_dir, "admin.key")?,
            token_secret: secret(a.token_secret, &data_dir, "token.secret")?,
            data_dir,
            web_root: a.web_root.unwrap_or_else(default_web_root),
            workers: a.workers.unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)),
            public_url: a.public_url.unwrap_or_else(|| format!("http://{http}")).trim_end_matches('/').to_string(),
            auto_export: a.auto_export.unwrap_or(true),
            fault_injection: a.fault_injection.unwrap_or(false),
            recording_min_free_mb: a.recording_min_free_mb.unwrap_or(256),
            retention_days: a.retention_days.unwrap_or(0),
            empty_grace: std::time::Duration::from_secs(a.empty_grace_secs.unwrap_or(10)),
            clock_offset_ms: a.clock_offset_ms.unwrap_or(0),
            webhook_retry_base: a.webhook_retry_base_ms.map_or(crate::webhooks::DEFAULT_RETRY_BASE, |ms| std::time::Duration::from_millis(ms.max(1))),
            ice_tcp: a.ice_tcp.unwrap_or(true),
            // A literal address always parses.
            rtmp_listen: a.rtmp_listen.unwrap_or_else(|| DEFAULT_RTMP.parse().expect("constant address")),
            bridge_backoff: bridge_backoff(a.bridge_retry_max_ms),
        })
    }
}

/// The given data directory or `data`, created if missing.
fn data_dir(given: Option<PathBuf>) -> Result<PathBuf, ConfigError> {
    let dir = given.unwrap_or_else(|| PathBuf::from("data"));
    std::fs::create_dir_all(&dir).map_err(|source| ConfigError::DataDir { path: dir.clone(), source })?;
    Ok(dir)
}

fn read_file(path: &Path) -> Result<ServeArgs, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.into(), source })?;
    toml::from_str(&text).map_err(|source| ConfigError::Parse { path: path.into(), source })
}

/// Flags and environment win over the file.
fn merge(a: ServeArgs, f: ServeArgs) -> ServeArgs {
    ServeArgs {
        config: a.config,
        http: a.http.or(f.http),
        media_port: a.media_port.or(f.media_port),
        media_bind: a.media_bind.or(f.media_bind),
        advertise: a.advertise.or(f.advertise),
        data_dir: a.data_dir.or(f.data_dir),
        admin_key: a.admin_key.or(f.admin_key),
        token_secret: a.token_secret.or(f.token_secret),
        web_root: a.web_root.or(f.web_root),
        workers: a.workers.or(f.workers),
        public_url: a.public_url.or(f.public_url),
        auto_export: a.auto_export.or(f.auto_export),
        fault_injection: a.fault_injection.or(f.fault_injection),
        recording_min_free_mb: a.recording_min_free_mb.or(f.recording_min_free_mb),
        retention_days: a.retention_days.or(f.retention_days),
        empty_grace_secs: a.empty_grace_secs.or(f.empty_grace_secs),
        clock_offset_ms: a.clock_offset_ms.or(f.clock_offset_ms),
        webhook_retry_base_ms: a.webhook_retry_base_ms.or(f.webhook_retry_base_ms),
        ice_tcp: a.ice_tcp.or(f.ice_tcp),
        rtmp_listen: a.rtmp_listen.or(f.rtmp_listen),
        bridge_retry_max_ms: a.bridge_retry_max_ms.or(f.bridge_retry_max_ms),
    }
}

/// The given secret, else the one kept in `data_dir/name`, else a new one saved there.
fn secret(given: Option<String>, data_dir: &Path, name: &str) -> Result<String, ConfigError> {
    if let Some(s) = given.filter(|s| !s.is_empty()) {
        return Ok(s);
    }
    let path = data_dir.join(name);
    let err = |source| ConfigError::DataDir { path: path.clone(), source };
    match std::fs::read_to_string(&path) {
        Ok(s) if !s.trim().is_empty() => return Ok(s.trim().to_string()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(err(e)),
    }
    let s = random_secret();
    std::fs::write(&path, &s).map_err(err)?;
    restrict_permissions(&path);
    Ok(s)
}

fn restrict_permissions(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
}

pub fn random_secret() -> String {
    use rand::Rng;
    let bytes: [u8; 24] = rand::rng().random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn default_web_root() -> PathBuf {
    let built_in = Path::new(env!("CARGO_MANIFEST_DIR")).join("web-client");
    if built_in.is_dir() { built_in } else { PathBuf::from("web-client") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_win_over_file_and_secrets_persist() {
        let dir = std::env::temp_dir().join(format!("classcast-config-{}", std::process::id()));
        let file = dir.join("c.toml");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(&file, format!("media_port = 4000\nhttp = \"127.0.0.1:9000\"\ndata_dir = {:?}\n", dir.join("d"))).unwrap();
        let args = ServeArgs { config: Some(file.clone()), http: Some("127.0.0.1:9100".parse().unwrap()), ..Default::default() };
        let c = Config::resolve(args.clone()).unwrap();
        assert_eq!(c.http.port(), 9100);
        assert_eq!(c.media_bind.port(), 4000);
        assert_eq!(c.advertise, [IpAddr::from([127, 0, 0, 1])]);
        let again = Config::resolve(args).unwrap();
        assert_eq!(c.admin_key, again.admin_key, "generated secrets are kept");
        assert_ne!(c.admin_key, c.token_secret);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn admin_commands_find_the_data_dir_like_serve() {
        let dir = std::env::temp_dir().join(format!("classcast-config-admin-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("c.toml");
        std::fs::write(&file, format!("data_dir = {:?}\nmedia_port = 4000\n", dir.join("from-file"))).unwrap();
        let from_file = DataArgs { config: Some(file.clone()), data_dir: None }.resolve().unwrap();
        assert_eq!(from_file, dir.join("from-file"));
        assert!(from_file.is_dir(), "created");
        let flag = DataArgs { config: Some(file), data_dir: Some(dir.join("flag")) }.resolve().unwrap();
        assert_eq!(flag, dir.join("flag"), "the flag wins over the file");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn webhook_retry_base_comes_from_the_file_or_the_default() {
        let dir = std::env::temp_dir().join(format!("classcast-config-hooks-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("c.toml");
        std::fs::write(&file, format!("webhook_retry_base_ms = 250\ndata_dir = {:?}\n", dir.join("d"))).unwrap();
        let c = Config::resolve(ServeArgs { config: Some(file), ..Default::default() }).unwrap();
        assert_eq!(c.webhook_retry_base, std::time::Duration::from_millis(250));
        let c = Config::resolve(ServeArgs { data_dir: Some(dir.join("d")), ..Default::default() }).unwrap();
        assert_eq!(c.webhook_retry_base, crate::webhooks::DEFAULT_RETRY_BASE);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn unknown_file_keys_are_an_error() {
        let dir = std::env::temp_dir().join(format!("classcast-config-bad-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("c.toml");
        std::fs::write(&file, "media_prot = 1\n").unwrap();
        let r = Config::resolve(ServeArgs { config: Some(file), ..Default::default() });
        assert!(matches!(r, Err(ConfigError::Parse { .. })));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
