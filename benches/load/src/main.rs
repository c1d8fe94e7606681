//! `classcast-load`: one teacher stream into a class, N subscribers from one
//! process, and what it cost the server (docs/PERFORMANCE.md).
//!
//! `run` measures one server at one N; `compare` runs classcast, Janus
//! VideoRoom and the floor at several N in turn and ends with the summary line.
//! Invariants: every server is a child that dies with this process; this
//! process runs at a higher priority than the server (nice -5, or the server
//! at +5 when raising is not allowed); figures come only from the window.

mod classcast;
mod client;
mod clip;
mod http;
mod janus;
mod procs;
mod publisher;
mod recv;
mod report;
mod shared;
mod srtp;

use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use clap::{Parser, Subcommand};

use publisher::{Conn, FLOOR_SSRCS, Publisher};
use recv::{Hist, Sub, SubStats};
use report::Figures;
use shared::Shared;

#[derive(Parser)]
#[command(about = "Load generator: a teacher stream fanned out to N subscribers of classcast, Janus VideoRoom or the floor")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(clap::Args, Clone)]
struct Opts {
    /// Seconds measured (after the warm-up).
    #[arg(long, default_value_t = 20)]
    secs: u64,
    /// Seconds between the last subscriber attaching and the window. The subscribers send
    /// no congestion feedback (they stay cheap), and classcast paces such a receiver to its
    /// starting estimate until it has seen 3 s without feedback (then it sends unpaced):
    /// 6 s keeps that start-up out of the steady-state window.
    #[arg(long, default_value_t = 6)]
    warmup: u64,
    /// The classcast binary.
    #[arg(long, default_value = "target/release/classcast")]
    classcast_bin: String,
    /// The floor binary.
    #[arg(long, default_value = "target/release/classcast-floor")]
    floor_bin: String,
    /// Forwarding threads of classcast.
    #[arg(long, default_value_t = 2)]
    workers: usize,
    /// Janus's address (a non-loopback interface: libnice skips `lo`).
    #[arg(long, default_value = "127.0.0.2")]
    janus_ip: String,
    /// Receive threads of the load generator.
    #[arg(long, default_value_t = 2)]
    receivers: usize,
    /// The floor sends with sendmmsg batches instead of one sendto per copy (classcast's driver uses sendto).
    #[arg(long, default_value_t = false, action = clap::ArgAction::Set)]
    floor_batch: bool,
    /// Where the clip is cached.
    #[arg(long, default_value = "target/bench-media")]
    cache: PathBuf,
}

#[derive(Subcommand)]
enum Cmd {
    /// One server at one N.
    Run {
        #[arg(long, value_parser = ["classcast", "janus", "floor"])]
        target: String,
        #[arg(long)]
        n: usize,
        #[command(flatten)]
        opts: Opts,
    },
    /// classcast, Janus and the floor at every N, the table, the knee and the summary line.
    Compare {
        #[arg(long, value_delimiter = ',', default_value = "50,100,200,400")]
        n: Vec<usize>,
        #[arg(long, value_delimiter = ',', default_value = "classcast,janus,floor")]
        targets: Vec<String>,
        /// Exit non-zero unless every run delivered media to every subscriber (the CI smoke check).
        #[arg(long)]
        check: bool,
        #[command(flatten)]
        opts: Opts,
    },
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let server_nice = if procs::raise_priority(-5) { 0 } else { 5 };
    match cli.cmd {
        Cmd::Run { target, n, opts } => {
            let clip = clip::load(&opts.cache)?;
            let f = run(&target, n, &opts, &clip, server_nice)?;
            println!("{}", report::header());
            println!("{}", f.row());
            Ok(())
        }
        Cmd::Compare { n, targets, check, opts } => {
            let clip = clip::load(&opts.cache)?;
            let mut all = Vec::new();
            let mut failed = Vec::new();
            for t in &targets {
                for &k in &n {
                    // One failed run is reported and the others still run.
                    match run(t, k, &opts, &clip, server_nice) {
                        Ok(f) => {
                            eprintln!("{}", f.row());
                            all.push(f);
                        }
                        Err(e) => {
                            eprintln!("{t} at n={k} failed: {e:#}");
                            failed.push(format!("{t} n={k}"));
                        }
                    }
                }
            }
            report::print(&all, &n);
            if !failed.is_empty() {
                eprintln!("failed runs: {}", failed.join(", "));
            }
            if check {
                if !failed.is_empty() {
                    bail!("failed runs: {}", failed.join(", "));
                }
                report::check(&all)?;
            }
            Ok(())
        }
    }
}

enum Server {
    Classcast(classcast::Classcast),
    Janus(janus::Janus),
    Floor(procs::Child, SocketAddr),
}

impl Server {
    fn pid(&self) -> u32 {
        match self {
            Server::Classcast(c) => c.pid(),
            Server::Janus(j) => j.pid(),
            Server::Floor(c, _) => c.pid(),
        }
    }
}

/// One measurement: start the server, publish, attach `n`, measure, tear down.
fn run(target: &str, n: usize, o: &Opts, clip: &clip::Clip, nice: i32) -> Result<Figures> {
    let client_ip = if target == "janus" { "127.0.0.3" } else { "127.0.0.1" };
    // The floor needs its receivers' addresses before it starts.
    let mut raw_socks = Vec::new();
    let mut server = match target {
        "classcast" => Server::Classcast(classcast::Classcast::start(&o.classcast_bin, o.workers, nice)?),
        "janus" => Server::Janus(janus::Janus::start(&o.janus_ip, nice)?),
        "floor" => {
            raw_socks = (0..n).map(|_| UdpSocket::bind((client_ip, 0))).collect::<std::io::Result<Vec<_>>>()?;
            start_floor(o, &raw_socks, nice)?
        }
        _ => bail!("unknown target {target}"),
    };
    let pid = server.pid();
    let shared = Arc::new(Shared::new(Instant::now()));
    let mut publisher = connect_publisher(&mut server, client_ip)?;
    let pub_thread = {
        let shared = shared.clone();
        let clip = clip.clone();
        std::thread::Builder::new().name("publisher".into()).spawn(move || {
            let r = publisher.run(&clip, &shared);
            (r, publisher.sent)
        })?
    };
    std::thread::sleep(Duration::from_millis(500));
    let rss0 = procs::rss_kib(pid)?;
    let (txs, handles) = start_receivers(&shared, o.receivers)?;
    let attach_start = Instant::now();
    let attached = attach(&mut server, n, client_ip, raw_socks, &txs);
    let attach_secs = attach_start.elapsed().as_secs_f64();
    let t0 = Instant::now() + Duration::from_secs(o.warmup);
    let len = Duration::from_secs(o.secs);
    shared.set_window(t0, len);
    sleep_until(t0);
    let cpu0 = procs::cpu_secs(pid)?;
    let me0 = procs::cpu_secs(std::process::id())?;
    let load0 = procs::loadavg();
    sleep_until(t0 + len);
    let cpu1 = procs::cpu_secs(pid)?;
    let me1 = procs::cpu_secs(std::process::id())?;
    let rss1 = procs::rss_kib(pid)?;
    // Packets sent at the end of the window are still on their way.
    std::thread::sleep(Duration::from_millis(500));
    shared.stop.store(true, Relaxed);
    drop(txs);
    let (subs, hist) = join_receivers(handles);
    let (pub_result, _) = pub_thread.join().map_err(|_| anyhow::anyhow!("the publisher thread panicked"))?;
    pub_result?;
    attached?;
    drop(server);
    let published = shared.published[0].load(Relaxed) + shared.published[1].load(Relaxed);
    Ok(Figures::new(target, n, published, &subs, &hist, cpu1 - cpu0, me1 - me0, rss0, rss1, attach_secs, load0))
}

fn sleep_until(t: Instant) {
    let now = Instant::now();
    if t > now {
        std::thread::sleep(t - now);
    }
}

fn start_floor(o: &Opts, socks: &[UdpSocket], nice: i32) -> Result<Server> {
    let listen: SocketAddr = format!("127.0.0.1:{}", procs::free_udp_port()?).parse()?;
    let dests = socks.iter().map(|s| s.local_addr().map(|a| a.to_string())).collect::<std::io::Result<Vec<_>>>()?.join(",");
    let mut cmd = Command::new(&o.floor_bin);
    cmd.arg("--listen").arg(listen.to_string()).arg(format!("--batch={}", o.floor_batch));
    if !socks.is_empty() {
        cmd.arg("--dests").arg(dests);
    }
    let child = procs::Child::spawn(cmd, nice)?;
    std::thread::sleep(Duration::from_millis(300));
    Ok(Server::Floor(child, listen))
}

fn connect_publisher(server: &mut Server, ip: &str) -> Result<Publisher> {
    let (sock, mut rtc) = client::socket_and_rtc(ip)?;
    let conn = match server {
        Server::Classcast(c) => Conn::Rtc { mids: c.publish(&mut rtc)?, rtc },
        Server::Janus(j) => Conn::Rtc { mids: j.publish(&mut rtc)?, rtc },
        Server::Floor(_, addr) => Conn::Raw { srtp: srtp::Srtp::new(0), dest: *addr },
    };
    let mut p = Publisher::new(sock, conn);
    p.connect(Duration::from_secs(15))?;
    Ok(p)
}

type Handles = Vec<std::thread::JoinHandle<(Vec<SubStats>, Hist)>>;

fn start_receivers(shared: &Arc<Shared>, k: usize) -> Result<(Vec<mpsc::Sender<Sub>>, Handles)> {
    let mut txs = Vec::new();
    let mut handles = Vec::new();
    for i in 0..k.max(1) {
        let (tx, rx) = mpsc::channel();
        let shared = shared.clone();
        handles.push(std::thread::Builder::new().name(format!("recv-{i}")).spawn(move || recv::run(shared, rx))?);
        txs.push(tx);
    }
    Ok((txs, handles))
}

fn join_receivers(handles: Handles) -> (Vec<SubStats>, Hist) {
    let mut subs = Vec::new();
    let mut hist = Hist::new();
    for h in handles {
        if let Ok((s, hh)) = h.join() {
            subs.extend(s);
            hist.merge(&hh);
        }
    }
    (subs, hist)
}

/// Attach `n` subscribers, spreading them over the receive threads.
fn attach(server: &mut Server, n: usize, ip: &str, raw: Vec<UdpSocket>, txs: &[mpsc::Sender<Sub>]) -> Result<()> {
    if let Server::Floor(..) = server {
        for (i, s) in raw.into_iter().enumerate() {
            client::set_bufs(&s, 4 << 20);
            let _ = txs[i % txs.len()].send(Sub::raw(s, FLOOR_SSRCS)?);
        }
        return Ok(());
    }
    for i in 0..n {
        let (sock, mut rtc) = client::socket_and_rtc(ip)?;
        match server {
            Server::Classcast(c) => c.subscribe(&mut rtc)?,
            Server::Janus(j) => j.subscribe(&mut rtc)?,
            Server::Floor(..) => unreachable!("handled above"),
        }
        let _ = txs[i % txs.len()].send(Sub::with_rtc(sock, rtc)?);
    }
    Ok(())
}
