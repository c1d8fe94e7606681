//! criterion benchmarks of the media path (docs/PERFORMANCE.md):
//!
//! - `core_forward/N`: the sans-IO core forwarding one publisher's video to N
//!   subscribers (SRTP unprotect, routing, per-subscriber rewrite, str0m's send
//!   path with RTX cache and RTCP bookkeeping, SRTP protect), no sockets;
//!   criterion's time per element is ns per packet per subscriber.
//! - `send_path/*`: one packet's 64 copies leaving the server: SRTP protect
//!   (AES-256-GCM, aws-lc-rs as str0m uses it) alone, then with one `sendto`
//!   per copy (what classcast's driver does), then in `sendmmsg` batches
//!   (`benches/load/src/batch.rs`, tried in the driver and not kept).
//!   The receivers are never read: the kernel's delivery work is done either
//!   way and a full receive buffer only drops at the end of it.
//!
//! Run: `cargo bench --bench fanout` (`make bench`).

// The floor's own modules (benches/load): the same SRTP and batch code it measures with.
#[allow(unused_imports, dead_code)]
#[path = "load/src/batch.rs"]
mod batch;
#[allow(unused_imports, dead_code)]
#[path = "load/src/srtp.rs"]
mod srtp;

use std::hint::black_box;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use batch::Batch;
use classcast::sfu::sim::Net;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

const PAYLOAD: usize = 1_100;
const COPIES: usize = 64;
const MIN_PACKETS: u64 = 1_000;

/// A connected network with `n` subscribers and `packets` captured publisher datagrams.
fn network(n: usize, packets: u64) -> (Net, Vec<Vec<u8>>) {
    Net::fan_out(n, packets, PAYLOAD)
}

/// Feed the datagrams as the forwarding thread does; the time of that alone.
fn forward(net: &mut Net, datagrams: &[Vec<u8>]) -> Duration {
    let from = net.clients[0].addr;
    let server: SocketAddr = "127.0.0.1:5000".parse().expect("literal address");
    let start = Instant::now();
    for d in datagrams {
        net.now += Duration::from_micros(250);
        net.sfu.handle_datagram(net.now, from, server, d);
        if net.sfu.poll_timeout().is_some_and(|t| t <= net.now) {
            net.sfu.handle_timeout(net.now);
        }
        while let Some(t) = net.sfu.poll_transmit() {
            black_box(t);
        }
    }
    start.elapsed()
}

fn core_forward(c: &mut Criterion) {
    let mut g = c.benchmark_group("core_forward");
    g.sample_size(10).warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(3));
    for n in [1usize, 10, 50, 200] {
        g.throughput(Throughput::Elements(n as u64));
        // A replayed SRTP packet is dropped, so every iteration needs fresh datagrams;
        // at least MIN_PACKETS per sample, so the fresh connections' first timers
        // (which fire once per connection) do not dominate a short sample.
        g.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, &n| {
            b.iter_custom(|iters| {
                let packets = iters.max(MIN_PACKETS);
                let (mut net, datagrams) = network(n, packets);
                forward(&mut net, &datagrams).mul_f64(iters as f64 / packets as f64)
            })
        });
    }
    g.finish();
}

fn packet(seq: u16) -> Vec<u8> {
    let mut p = vec![0x80, 0x7f];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&[0, 0, 0, 1, 0x11, 0x22, 0x33, 0x44]);
    p.extend(std::iter::repeat_n(0x41, PAYLOAD));
    p
}

struct Fanout {
    keys: Vec<srtp::Srtp>,
    sender: UdpSocket,
    _receivers: Vec<UdpSocket>,
    dests: Vec<SocketAddr>,
}

impl Fanout {
    fn new() -> Fanout {
        let receivers: Vec<UdpSocket> = (0..COPIES).map(|_| UdpSocket::bind("127.0.0.1:0").expect("a loopback port")).collect();
        let dests = receivers.iter().map(|r| r.local_addr().expect("bound")).collect();
        let keys = (1..=COPIES as u64).map(srtp::Srtp::new).collect();
        Fanout { keys, sender: UdpSocket::bind("127.0.0.1:0").expect("a loopback port"), _receivers: receivers, dests }
    }

    fn protect<'a>(&'a self, plain: &'a [u8]) -> impl Iterator<Item = Vec<u8>> + 'a {
        self.keys.iter().map(move |k| {
            let mut out = Vec::with_capacity(plain.len() + srtp::TAG);
            out.extend_from_slice(plain);
            k.protect(&mut out, 0);
            out
        })
    }
}

fn send_path(c: &mut Criterion) {
    let f = Fanout::new();
    let mut g = c.benchmark_group("send_path");
    g.sample_size(20).warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(3));
    g.throughput(Throughput::Elements(COPIES as u64));
    let mut seq = 0u16;
    g.bench_function("protect_only", |b| {
        b.iter(|| {
            seq = seq.wrapping_add(1);
            f.protect(&packet(seq)).for_each(|o| drop(black_box(o)));
        })
    });
    g.bench_function("protect_sendto", |b| {
        b.iter(|| {
            seq = seq.wrapping_add(1);
            for (o, d) in f.protect(&packet(seq)).zip(&f.dests) {
                let _ = f.sender.send_to(&o, d);
            }
        })
    });
    let mut batch = Batch::new();
    g.bench_function("protect_sendmmsg", |b| {
        b.iter(|| {
            seq = seq.wrapping_add(1);
            for (o, d) in f.protect(&packet(seq)).zip(&f.dests) {
                batch.push(&f.sender, o, *d);
            }
            batch.flush(&f.sender);
        })
    });
    g.finish();
}

criterion_group!(benches, core_forward, send_path);
criterion_main!(benches);
