//! `classcast serve`: configuration, logging, tasks; `classcast admin`: hands over to
//! `admin_cli`. No logic of its own.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use clap::Parser;
use classcast::config::{Cli, Command, Config};
use classcast::driver::MediaDriver;
use classcast::http::{AppState, router};
use classcast::recording::{Exports, Recording, RecordingConfig};
use classcast::replay::Replay;
use classcast::rooms::Rooms;
use classcast::rooms::events::EventBus;
use classcast::rooms::auth::Tokens;
use classcast::store::Store;

/// Packets that may wait between the forwarding threads and the recorder (~3 s of a class).
const TAP_QUEUE: usize = 8192;
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(3);

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    init_tracing();
    let args = match cli.command {
        Command::Serve(args) => args,
        Command::Admin(args) => return classcast::admin_cli::run(args),
    };
    let config = Config::resolve(args)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    runtime.block_on(serve(config))
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,str0m=warn,dimpl=warn"));
    // Colours only on a terminal: log files and journald get plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
    tracing_subscriber::fmt().with_env_filter(filter).with_target(false).with_ansi(ansi).init();
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let store = Store::open(&config.data_dir.join("classcast.db")).context("opening the database")?;
    let (events_tx, events_rx) = tokio::sync::mpsc::unbounded_channel();
    let candidates: Vec<SocketAddr> = config.advertise.iter().map(|ip| SocketAddr::new(*ip, config.media_bind.port())).collect();
    let (taps, tap_rx) = classcast::driver::taps::tap_queue(TAP_QUEUE);
    let ice_tcp = config.ice_tcp.then(classcast::driver::tcp::TcpLimits::default);
    let driver = MediaDriver::start_with(config.media_bind, candidates, config.workers, events_tx, taps, ice_tcp)
        .with_context(|| format!("binding the media port {} (UDP, and TCP for ICE-TCP)", config.media_bind))?;
    let recordings = config.data_dir.join("recordings");
    let interrupted = classcast::recording::recover_interrupted(&recordings, &store);
    let exports = Exports::start(recordings.clone(), store.clone()).context("starting the export thread")?;
    classcast::recording::retention::start(recordings.clone(), store.clone(), config.retention_days).context("starting retention")?;
    let auto_export = config.auto_export.then(|| exports.clone());
    // One event bus: the rooms publish class events on it, the recorder recording_ready.
    let events = EventBus::default();
    let recording_config = RecordingConfig { root: recordings.clone(), min_free_bytes: config.recording_min_free_mb << 20, events: events.clone() };
    let recording = Recording::start(recording_config, store.clone(), tap_rx, auto_export).context("starting the recorder")?;
    tracing::info!(interrupted, "recorder ready");
    let tokens = Tokens::new(&config.token_secret);
    let replay = Replay::new(recordings, store.clone(), tokens.clone(), &config.token_secret, config.admin_key.clone());
    classcast::webhooks::start(store.clone(), &events, config.webhook_retry_base).context("starting webhooks")?;
    let mut rooms = Rooms::new(store, driver, tokens, Some(recording), config.empty_grace);
    rooms.events = events;
    let rooms = Arc::new(rooms);
    tokio::spawn(rooms.clone().run_events(events_rx));
    let schedule = classcast::schedule::ScheduleClock::with_offset(config.clock_offset_ms);
    tokio::spawn(classcast::schedule::run(rooms.clone(), schedule.clone()));
    let listener = tokio::net::TcpListener::bind(config.http).await.with_context(|| format!("binding {}", config.http))?;
    tracing::info!(http = %config.http, media = %rooms.driver.local_addr(), workers = config.workers, "classcast listening");
    classcast::http::welcome::print(&config, &rooms)?;
    let bridges = start_bridges(&rooms, &config).await?;
    let state = AppState { rooms, replay, exports, config: Arc::new(config), started: Instant::now(), schedule, calendars: Default::default(), bridges };
    // The peer address feeds the sign-in throttle (per client).
    let app = router(state).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app).with_graceful_shutdown(shutdown_signal()).await?;
    Ok(())
}

/// Bridges: the stored ones start now; the RTMP listener failing to bind (port taken)
/// leaves RTMP bridges waiting and is logged, it does not stop the server.
async fn start_bridges(rooms: &Arc<Rooms>, config: &Config) -> anyhow::Result<Arc<classcast::bridges::Bridges>> {
    classcast_media_pipelines::init().context("initializing GStreamer for bridges")?;
    let bridges = classcast::bridges::Bridges::new(rooms.clone(), config.bridge_backoff);
    match classcast::bridges::rtmp::listen(config.rtmp_listen, bridges.rtmp.clone()).await {
        Ok(addr) => tracing::info!(%addr, "rtmp listening"),
        Err(e) => tracing::error!(addr = %config.rtmp_listen, error = %e, "rtmp listener not started"),
    }
    let n = bridges.start_all().context("reading the bridges")?;
    tracing::info!(bridges = n, "bridges started");
    Ok(bridges)
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    let sigterm = async move {
        match term.as_mut() {
            Some(t) => {
                t.recv().await;
            }
            None => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = ctrl_c => {}
        _ = sigterm => {}
    }
    tracing::info!("shutting down");
    // Open WebSockets keep a graceful shutdown waiting; give them a moment, then go.
    tokio::spawn(async {
        tokio::time::sleep(SHUTDOWN_GRACE).await;
        tracing::info!("closing remaining connections");
        std::process::exit(0);
    });
}
