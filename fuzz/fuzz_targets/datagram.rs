//! Arbitrary datagrams on the media port, from a connected publisher's address
//! (reaching STUN/DTLS/SRTP parsing of its connection) and from a stranger.
#![no_main]

use std::net::SocketAddr;
use std::sync::Mutex;
use std::sync::OnceLock;

use classcast::sfu::room::{MAIN, Policy};
use classcast::sfu::sim::{MS, Net};
use classcast::signaling::protocol::Source;
use libfuzzer_sys::fuzz_target;

fn net() -> &'static Mutex<Net> {
    static NET: OnceLock<Mutex<Net>> = OnceLock::new();
    NET.get_or_init(|| {
        let mut net = Net::new();
        let teacher = net.add_client();
        let classroom = net.add_client();
        net.publish(teacher, MAIN, &[Source::Camera, Source::Mic]);
        net.subscribe(classroom, "c1", Policy::Audience { own_id: Some("c1".into()) });
        net.run(1500 * MS);
        Mutex::new(net)
    })
}

fuzz_target!(|data: &[u8]| {
    let mut net = net().lock().unwrap_or_else(|e| e.into_inner());
    let server: SocketAddr = "127.0.0.1:5000".parse().expect("literal address");
    let known = net.clients[0].addr;
    let stranger: SocketAddr = "127.0.0.1:9".parse().expect("literal address");
    let now = net.now;
    net.sfu.handle_datagram(now, known, server, data);
    net.sfu.handle_datagram(now, stranger, server, data);
    while net.sfu.poll_transmit().is_some() {}
    while net.sfu.poll_event().is_some() {}
});
