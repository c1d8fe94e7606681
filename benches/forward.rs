//! Forwarding cost of the sans-IO core: one publisher's video fanned out to N
//! subscribers, with SRTP unprotect on the way in and SRTP protect per
//! subscriber on the way out, as in production; no sockets.
//!
//! Run: `cargo bench --bench forward` (release profile). Prints, per N, the
//! median over 5 rounds of nanoseconds of CPU per forwarded packet.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use classcast::sfu::sim::Net;

const PACKETS: u64 = 2_000;
const PAYLOAD: usize = 1_100;
const ROUNDS: usize = 5;

fn main() {
    println!("| subscribers | ns per forwarded packet (median of {ROUNDS}) | packets/s on one core |");
    println!("|---|---|---|");
    for n in [1usize, 10, 50, 200] {
        let ns = median((0..ROUNDS).map(|_| round(n)).collect());
        println!("| {n} | {ns:.0} | {:.0} |", 1e9 / ns);
    }
}

/// One round: fresh network, `PACKETS` packets through the SFU, ns per copy out.
fn round(subscribers: usize) -> f64 {
    let (mut net, datagrams) = Net::fan_out(subscribers, PACKETS, PAYLOAD);
    let from = net.clients[0].addr;
    let server: SocketAddr = "127.0.0.1:5000".parse().expect("literal address");
    let mut sent = 0u64;
    let start = Instant::now();
    for d in &datagrams {
        net.now += Duration::from_micros(250);
        net.sfu.handle_datagram(net.now, from, server, d);
        // As the forwarding thread does: run timers that fell due.
        if net.sfu.poll_timeout().is_some_and(|t| t <= net.now) {
            net.sfu.handle_timeout(net.now);
        }
        while net.sfu.poll_transmit().is_some() {
            sent += 1;
        }
    }
    let elapsed = start.elapsed();
    assert!(sent >= PACKETS * subscribers as u64, "every packet reached every subscriber ({sent})");
    elapsed.as_nanos() as f64 / (PACKETS * subscribers as u64) as f64
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}
