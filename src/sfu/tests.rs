//! Tests of the core with real str0m peers on the simulated network of `sim`.

use std::net::SocketAddr;

use str0m::media::{KeyframeRequestKind, Mid};

use super::room::{MAIN, Policy};
use super::sim::{MS, Net};
use super::stats::DropReason;
use super::{PeerId, PublishRequest};
use crate::signaling::protocol::Source;

const SERVER: &str = "127.0.0.1:5000";
const KEY: &[u8] = &[0x67, 0x42, 0xe0, 0x1f];

fn audience(own: &str) -> Policy {
    Policy::Audience { own_id: Some(own.into()) }
}

/// Teacher publishing camera + mic, one classroom subscribed and connected.
fn teacher_and_classroom() -> (Net, Vec<Mid>, PeerId, PeerId) {
    let mut net = Net::new();
    let teacher = net.add_client();
    let classroom = net.add_client();
    let (pubp, mids) = net.publish(teacher, MAIN, &[Source::Camera, Source::Mic]);
    let sub = net.subscribe(classroom, "c1", audience("c1"));
    net.run(1500 * MS);
    (net, mids, pubp, sub)
}

#[test]
fn media_flows_from_teacher_to_classroom_unchanged() {
    let (mut net, mids, _, sub) = teacher_and_classroom();
    net.send_video(0, mids[0], 100, 9000, 10, true);
    net.send(0, mids[1], 500, 48_000, &[0xf8, 0xff, 0xfe]);
    net.run(100 * MS);
    let video = net.got(1, net.down_mid(sub, "main/camera"));
    assert_eq!(video.len(), 10);
    assert_eq!(video[0].payload, KEY);
    assert!(video.windows(2).all(|w| w[1].seq == w[0].seq + 1 && w[1].ts.wrapping_sub(w[0].ts) == 3000));
    let audio = net.got(1, net.down_mid(sub, "main/mic"));
    assert_eq!(audio.len(), 1);
    assert_eq!(audio[0].payload, [0xf8, 0xff, 0xfe]);
    assert!(net.sfu.counters().packets_forwarded.load(std::sync::atomic::Ordering::Relaxed) >= 11);
}

#[test]
fn publisher_restart_continues_the_same_subscriber_stream() {
    let (mut net, mids, pubp, sub) = teacher_and_classroom();
    net.send_video(0, mids[0], 40_000, 1_000_000, 5, true);
    net.sfu.remove_peer(pubp, net.now);
    net.run(300 * MS);
    // The teacher's page reloads: a new connection with fresh numbering.
    let reloaded = net.add_client();
    let (_, mids2) = net.publish(reloaded, MAIN, &[Source::Camera, Source::Mic]);
    net.run(1500 * MS);
    net.send_video(reloaded, mids2[0], 7, 123, 5, true);
    let video = net.got(1, net.down_mid(sub, "main/camera"));
    assert_eq!(video.len(), 10, "all frames of both sessions arrive on one track");
    assert!(video.iter().all(|g| g.ssrc == video[0].ssrc), "same subscriber SSRC");
    assert!(video.windows(2).all(|w| w[1].seq == w[0].seq + 1), "no sequence gap across the restart");
    assert!(video.windows(2).all(|w| {
        let d = w[1].ts.wrapping_sub(w[0].ts);
        d > 0 && d < u32::MAX / 2
    }), "timestamps only move forward");
    let gap = video[5].ts.wrapping_sub(video[4].ts);
    assert!(gap >= 90_000, "the pause of ~1.8 s shows in the timestamps: {gap}");
}

#[test]
fn late_subscriber_waits_for_keyframe_and_asks_for_one() {
    let mut net = Net::new();
    let teacher = net.add_client();
    let (_, mids) = net.publish(teacher, MAIN, &[Source::Camera]);
    net.run(1500 * MS);
    net.send_video(teacher, mids[0], 1, 0, 3, true);
    let classroom = net.add_client();
    let sub = net.subscribe(classroom, "c1", audience("c1"));
    net.run(1500 * MS);
    let before = net.clients[teacher].keyframe_requests;
    net.send_video(teacher, mids[0], 4, 9000, 5, false);
    let counters = net.sfu.counters();
    assert!(counters.drops(DropReason::AwaitingKeyframe) >= 4);
    assert!(net.got(classroom, net.down_mid(sub, "main/camera")).is_empty());
    net.run(600 * MS);
    assert!(net.clients[teacher].keyframe_requests > before, "publisher was asked for a keyframe");
    net.send_video(teacher, mids[0], 9, 24_000, 3, true);
    let got = net.got(classroom, net.down_mid(sub, "main/camera"));
    assert_eq!(got.len(), 3);
    assert_eq!(got[0].payload, KEY);
}

#[test]
fn keyframe_requests_from_many_subscribers_are_throttled() {
    let mut net = Net::new();
    let teacher = net.add_client();
    let (_, mids) = net.publish(teacher, MAIN, &[Source::Camera]);
    let subs: Vec<(usize, PeerId)> = (0..4)
        .map(|i| {
            let c = net.add_client();
            (c, net.subscribe(c, &format!("c{i}"), audience(&format!("c{i}"))))
        })
        .collect();
    net.run(1500 * MS);
    net.send_video(teacher, mids[0], 1, 0, 2, true);
    net.run(1000 * MS);
    let before = net.clients[teacher].keyframe_requests;
    // Every subscriber sends a PLI every 20 ms for 2 s: 400 requests.
    for _ in 0..100 {
        for (c, sub) in &subs {
            let mid = net.down_mid(*sub, "main/camera");
            if let Some(rx) = net.clients[*c].rtc.direct_api().stream_rx_by_mid(mid, None) {
                rx.request_keyframe(KeyframeRequestKind::Pli);
            }
        }
        net.run(20 * MS);
    }
    net.run(600 * MS);
    let forwarded = net.clients[teacher].keyframe_requests - before;
    let received = net.sfu.counters().keyframe_requests_received.load(std::sync::atomic::Ordering::Relaxed);
    assert!(received >= 40, "subscribers' PLIs reached the SFU: {received}");
    assert!((2..=6).contains(&forwarded), "at most one request per 500 ms reached the publisher: {forwarded}");
}

#[test]
fn lost_packet_is_retransmitted_from_the_sfu_buffer() {
    let (mut net, mids, _, sub) = teacher_and_classroom();
    net.send_video(0, mids[0], 1, 0, 3, true);
    let first = net.got(1, net.down_mid(sub, "main/camera"));
    let next_out = (first.last().unwrap().seq + 1) as u16;
    // The wire to the classroom loses the next packet once.
    net.clients[1].drop_once.push(next_out.wrapping_add(1));
    net.send_video(0, mids[0], 4, 9000, 6, false);
    net.run(500 * MS);
    let mut seqs: Vec<u64> = net.got(1, net.down_mid(sub, "main/camera")).iter().map(|g| g.seq).collect();
    assert!(net.clients[1].drop_once.is_empty(), "the packet was dropped on the wire");
    seqs.sort();
    seqs.dedup();
    assert_eq!(seqs.len(), 9, "the lost packet was repaired by NACK from the SFU");
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1));
}

#[test]
fn called_on_classroom_reaches_other_classrooms_but_not_itself() {
    let mut net = Net::new();
    let (teacher, c1, c2) = (net.add_client(), net.add_client(), net.add_client());
    let c2_pub = net.add_client();
    let t_sub = net.subscribe(teacher, MAIN, Policy::Main);
    let s1 = net.subscribe(c1, "c1", audience("c1"));
    let s2 = net.subscribe(c2, "c2", audience("c2"));
    let (_, mids) = net.publish(c2_pub, "c2", &[Source::Camera]);
    net.run(1500 * MS);
    net.send_video(c2_pub, mids[0], 1, 0, 3, true);
    assert_eq!(net.got(teacher, net.down_mid(t_sub, "c2/camera")).len(), 3, "teacher sees every classroom");
    let spot1 = net.down_mid(s1, "spotlight/camera");
    assert!(net.got(c1, spot1).is_empty(), "nobody called on yet");
    net.sfu.set_spotlight(net.now, &net.room.clone(), Some("c2".into()));
    net.run(100 * MS);
    net.send_video(c2_pub, mids[0], 4, 9000, 3, true);
    assert_eq!(net.got(c1, spot1).len(), 3, "classroom 1 sees the called-on classroom");
    assert!(net.got(c2, net.down_mid(s2, "spotlight/camera")).is_empty(), "never its own media");
    assert!(net.sfu.counters().drops(DropReason::OwnMedia) >= 3);
    net.sfu.set_spotlight(net.now, &net.room.clone(), None);
    net.send_video(c2_pub, mids[0], 7, 18_000, 3, true);
    assert_eq!(net.got(c1, spot1).len(), 3, "call-on ended");
}

#[test]
fn garbage_datagrams_are_counted_and_media_keeps_flowing() {
    let (mut net, mids, _, sub) = teacher_and_classroom();
    let server: SocketAddr = SERVER.parse().unwrap();
    let teacher_addr = net.clients[0].addr;
    let mut x: u64 = 0x1234_5678;
    for i in 0..10_000u32 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let len = 1 + (x % 1400) as usize;
        let mut buf: Vec<u8> = (0..len).map(|j| (x >> (j % 56)) as u8).collect();
        buf[0] = [0x00, 0x16, 0x80, 0x90, 0xff][i as usize % 5];
        let from = if i % 2 == 0 { teacher_addr } else { format!("127.0.0.1:{}", 20_000 + i % 500).parse().unwrap() };
        net.sfu.handle_datagram(net.now, from, server, &buf);
    }
    let c = net.sfu.counters();
    let counted: u64 = DropReason::ALL.iter().map(|r| c.drops(*r)).sum();
    assert!(counted >= 5_000, "garbage is counted: {counted}");
    assert!(c.drops(DropReason::UnknownSource) >= 4_000);
    net.send_video(0, mids[0], 1, 0, 3, true);
    assert_eq!(net.got(1, net.down_mid(sub, "main/camera")).len(), 3);
}

#[test]
fn offers_without_a_forwarded_codec_are_refused_with_the_codecs_named() {
    let mut net = Net::new();
    let now = net.now;
    let sdp = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\na=fingerprint:sha-256 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF\r\na=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=sendonly\r\na=rtcp-mux\r\na=setup:actpass\r\na=rtpmap:0 PCMU/8000\r\n";
    let req = PublishRequest { room: net.room.clone(), participant: MAIN.into(), peer: None, offer: sdp.into(), sources: vec![] };
    let err = net.sfu.publish(now, req.clone()).unwrap_err();
    assert_eq!(err, super::NegotiationError::NoUsableCodec { offered: vec!["PCMU".into()] });
    let bad = PublishRequest { offer: "hello".into(), ..req };
    assert!(matches!(net.sfu.publish(now, bad), Err(super::NegotiationError::Malformed(_))));
    assert_eq!(net.sfu.peer_count(), 0, "refused offers leave no connection");
}

#[test]
fn whep_viewer_receives_main_and_is_closed_when_the_publication_ends() {
    use str0m::media::{Direction, MediaKind};
    let mut net = Net::new();
    let (teacher, viewer) = (net.add_client(), net.add_client());
    let (pubp, mids) = net.publish(teacher, MAIN, &[Source::Camera, Source::Mic]);
    let mut api = net.clients[viewer].rtc.sdp_api();
    let video = api.add_media(MediaKind::Video, Direction::RecvOnly, None, None, None);
    api.add_media(MediaKind::Audio, Direction::RecvOnly, None, None, None);
    let (offer, pending) = api.apply().unwrap();
    let room = net.room.clone();
    let (whep, answer) = net.sfu.whep(net.now, &room, "o1", &offer.to_sdp_string()).unwrap();
    let answer = str0m::change::SdpAnswer::from_sdp_string(&answer).unwrap();
    net.clients[viewer].rtc.sdp_api().accept_answer(pending, answer).unwrap();
    net.run(1500 * MS);
    net.send_video(teacher, mids[0], 1, 0, 3, true);
    assert_eq!(net.got(viewer, video).len(), 3, "the WHEP viewer gets main/camera on its first video m-line");
    net.sfu.remove_peer(pubp, net.now);
    net.run(10 * MS);
    let closed = net.events.iter().any(|e| {
        matches!(e, super::SfuEvent::PeerClosed { peer, reason: super::CloseReason::SourceEnded, .. } if *peer == whep)
    });
    assert!(closed, "the viewer's connection is closed when nothing is left to watch");
    assert_eq!(net.sfu.peer_count(), 0);
}

#[test]
fn recording_taps_every_published_slot_on_one_line_across_a_restart() {
    use super::SfuEvent;
    let mut net = Net::new();
    let teacher = net.add_client();
    let room = net.room.clone();
    net.sfu.set_recording(net.now, &room, true);
    let (pubp, mids) = net.publish(teacher, MAIN, &[Source::Camera, Source::Mic]);
    net.run(1500 * MS);
    let started: Vec<String> = net.events.iter().filter_map(|e| match e {
        SfuEvent::TapStarted { key, .. } => Some(key.to_string()),
        _ => None,
    }).collect();
    assert_eq!(started.len(), 2, "one tap per published slot: {started:?}");
    net.send_video(teacher, mids[0], 500, 90_000, 4, true);
    // The teacher reloads: the recording continues on the same line.
    net.sfu.remove_peer(pubp, net.now);
    let reloaded = net.add_client();
    let (_, mids2) = net.publish(reloaded, MAIN, &[Source::Camera, Source::Mic]);
    net.run(1500 * MS);
    net.send_video(reloaded, mids2[0], 3, 7, 4, true);
    let video: Vec<_> = net.tapped.iter().filter(|p| p.codec.video().is_some()).collect();
    assert_eq!(video.len(), 8);
    assert!(video.windows(2).all(|w| w[1].seq == w[0].seq + 1), "no gap in the recorded sequence");
    assert!(video.windows(2).all(|w| w[1].ts.wrapping_sub(w[0].ts) < u32::MAX / 2), "recorded time only moves forward");
    assert_eq!(video[0].payload.as_ref(), KEY);
    net.sfu.set_recording(net.now, &room, false);
    net.run(MS);
    let ended = net.events.iter().filter(|e| matches!(e, SfuEvent::TapEnded { .. })).count();
    assert_eq!(ended, 2, "stopping the recording ends every tap");
}

#[test]
fn recording_started_mid_stream_begins_at_a_keyframe() {
    let mut net = Net::new();
    let teacher = net.add_client();
    let (_, mids) = net.publish(teacher, MAIN, &[Source::Camera]);
    net.run(1500 * MS);
    net.send_video(teacher, mids[0], 1, 0, 3, true);
    let room = net.room.clone();
    net.sfu.set_recording(net.now, &room, true);
    let before = net.clients[teacher].keyframe_requests;
    net.send_video(teacher, mids[0], 4, 9000, 3, false);
    assert!(net.tapped.is_empty(), "delta frames before the first keyframe are not recorded");
    net.run(600 * MS);
    assert!(net.clients[teacher].keyframe_requests > before, "the tap asked for a keyframe");
    net.send_video(teacher, mids[0], 7, 18_000, 2, true);
    assert_eq!(net.tapped.len(), 2);
    assert_eq!(net.tapped[0].payload.as_ref(), KEY);
}

#[test]
fn recorded_video_gets_a_keyframe_every_interval() {
    let mut net = Net::new();
    let teacher = net.add_client();
    let room = net.room.clone();
    net.sfu.set_recording(net.now, &room, true);
    let (_, mids) = net.publish(teacher, MAIN, &[Source::Camera]);
    net.run(1500 * MS);
    net.send_video(teacher, mids[0], 1, 0, 1, true);
    net.run(600 * MS);
    let before = net.clients[teacher].keyframe_requests;
    net.send_video(teacher, mids[0], 2, 3000, 1, false);
    net.run(600 * MS);
    assert_eq!(net.clients[teacher].keyframe_requests, before, "no request while the last keyframe is recent");
    net.run(super::tap::RECORDING_KEYFRAME_INTERVAL);
    net.send_video(teacher, mids[0], 3, 6000, 1, false);
    net.send_video(teacher, mids[0], 4, 9000, 1, false);
    net.run(600 * MS);
    assert_eq!(net.clients[teacher].keyframe_requests, before + 1, "one request once the keyframe is older than the interval");
}

#[test]
fn every_connection_reports_its_health_once_a_second() {
    use super::SfuEvent;
    use super::health::{PeerHealth, Side};
    let (mut net, mids, pubp, sub) = teacher_and_classroom();
    net.events.clear();
    net.send_video(0, mids[0], 1, 0, 60, true);
    let healths = |net: &Net, peer: PeerId| -> Vec<PeerHealth> {
        net.events.iter().filter_map(|e| match e {
            SfuEvent::PeerHealth(h) if h.peer == peer => Some((**h).clone()),
            _ => None,
        }).collect()
    };
    let up = healths(&net, pubp);
    let down = healths(&net, sub);
    assert!((1..=3).contains(&up.len()), "about one report per second of the 2 s: {}", up.len());
    let last_up = up.last().unwrap();
    assert_eq!((last_up.side, &*last_up.participant, last_up.connected), (Side::Up, MAIN, true));
    assert!(last_up.packets_in.video > 0 && last_up.bitrate_in > 0, "{last_up:?}");
    assert_eq!(last_up.packets_in.audio, 0);
    let last_down = down.last().unwrap();
    assert_eq!((last_down.side, &*last_down.participant), (Side::Down, "c1"));
    assert!(last_down.packets_out.video > 0 && last_down.bitrate_out > 0, "{last_down:?}");
    assert!(last_down.last_out.video.is_some());

    // The teacher stops sending: the next reports show no video arriving since
    // (arrival is known to the stats interval).
    let stopped_at = net.now;
    net.events.clear();
    net.run(2500 * MS);
    let h = healths(&net, pubp).last().cloned().unwrap();
    assert_eq!(h.packets_in.video, 0);
    assert!(h.last_in.video.is_some_and(|t| t <= stopped_at + 1000 * MS), "{h:?}");
    assert!(h.at >= stopped_at + 1000 * MS);
}
