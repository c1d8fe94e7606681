//! Simulcast and congestion control with real str0m peers on the simulated
//! network: a teacher sends three layers, classrooms behind clean and narrow
//! links get the layer their estimate carries, switching only on keyframes with
//! continuous numbering, and audio never stops.

use str0m::media::Mid;

use super::room::{MAIN, Policy};
use super::sim::{Link, MS, Net};
use super::{PeerId, stats::DropReason};
use crate::signaling::protocol::Source;

const RIDS: [&str; 3] = ["q", "h", "f"];
/// Bytes per frame and packets per frame of each layer: about 150 kbit/s,
/// 500 kbit/s and 1.2 Mbit/s at 30 frames/s.
const FRAME: [(usize, usize); 3] = [(625, 1), (2080, 2), (5000, 5)];
const KEYFRAME_EVERY: u64 = 120;

struct Teacher {
    camera: Mid,
    mic: Mid,
    frame: u64,
    seq: [u64; 3],
    audio_seq: u64,
    /// Keyframe requests already answered (a request makes the next frame a keyframe).
    answered: usize,
}

/// One frame on every layer (and the audio of 33 ms), then 33 ms of time.
fn send_frame(net: &mut Net, t: &mut Teacher) {
    let requests = net.clients[0].keyframe_requests;
    let key = t.frame % KEYFRAME_EVERY == 0 || requests > t.answered;
    t.answered = requests;
    for (l, rid) in RIDS.iter().enumerate() {
        let (bytes, packets) = FRAME[l];
        for p in 0..packets {
            let mut payload = vec![if key && p == 0 { 0x67 } else { 0x41 }; bytes / packets];
            payload[1] = l as u8;
            net.send_layer(0, t.camera, rid, t.seq[l], (t.frame * 3000) as u32, &payload);
            t.seq[l] += 1;
        }
    }
    for _ in 0..2 {
        net.send(0, t.mic, t.audio_seq, (t.audio_seq * 960) as u32, &[0xf8; 100]);
        t.audio_seq += 1;
    }
    t.frame += 1;
    net.run(33 * MS);
}

/// Teacher publishing a 3-layer camera + mic, and `links` classrooms (one per link).
fn class(links: Vec<Option<Link>>) -> (Net, Teacher, Vec<PeerId>) {
    let mut net = Net::new();
    let teacher = net.add_client();
    let (_, mids) = net.publish_layers(teacher, MAIN, &[Source::Camera, Source::Mic], &RIDS);
    let mut subs = Vec::new();
    for (i, link) in links.into_iter().enumerate() {
        let c = net.add_client();
        net.clients[c].link = link;
        let id = format!("c{i}");
        subs.push(net.subscribe(c, &id, Policy::Audience { own_id: Some(id.clone()) }));
    }
    net.run(1500 * MS);
    (net, Teacher { camera: mids[0], mic: mids[1], frame: 0, seq: [1000, 2000, 3000], audio_seq: 0, answered: 0 }, subs)
}

/// The layer of each received video packet of subscriber `sub` (client `c`),
/// with the time window it arrived in (in frames).
fn layers_received(net: &Net, c: usize, sub: PeerId) -> Vec<u8> {
    net.got(c, net.down_mid(sub, "main/camera")).iter().map(|g| g.payload[1]).collect()
}

fn run_frames(net: &mut Net, t: &mut Teacher, frames: u64) {
    for _ in 0..frames {
        send_frame(net, t);
    }
}

#[test]
fn a_clean_link_climbs_to_the_top_layer_on_a_keyframe_with_continuous_numbering() {
    let (mut net, mut t, subs) = class(vec![None]);
    run_frames(&mut net, &mut t, 300);
    let got = net.got(1, net.down_mid(subs[0], "main/camera"));
    let layers: Vec<u8> = got.iter().map(|g| g.payload[1]).collect();
    assert_eq!(layers[0], 0, "starts on the lowest layer");
    assert_eq!(*layers.last().unwrap(), 2, "ends on the top layer");
    assert!(got.windows(2).all(|w| w[1].seq == w[0].seq + 1), "no gap in sequence numbers across switches");
    assert!(got.windows(2).all(|w| w[1].ts.wrapping_sub(w[0].ts) < 1 << 31), "timestamps never go back");
    for w in got.windows(2).filter(|w| w[0].payload[1] != w[1].payload[1]) {
        assert_eq!(w[1].payload[0], 0x67, "a switch lands on a keyframe");
    }
    assert!(net.sfu.counters().drops(DropReason::LayerNotSelected) > 0);
}

#[test]
fn a_narrow_link_gets_a_lower_layer_and_keeps_audio_while_a_clean_one_keeps_the_top() {
    let narrow = Link::new(600_000, 40 * MS, 30);
    let (mut net, mut t, subs) = class(vec![None, Some(narrow)]);
    run_frames(&mut net, &mut t, 900);
    let clean = layers_received(&net, 1, subs[0]);
    let weak = layers_received(&net, 2, subs[1]);
    assert_eq!(*clean.last().unwrap(), 2, "the clean classroom ends on the top layer");
    let tail = &weak[weak.len() / 2..];
    assert!(tail.iter().all(|l| *l < 2), "the narrow classroom never gets the top layer once settled");
    let audio = net.got(2, net.down_mid(subs[1], "main/mic")).len();
    assert!(audio * 100 >= 1800 * 93, "audio reaches the narrow classroom (3 % loss): {audio} of 1800");
    let switches = weak.windows(2).filter(|w| w[0] != w[1]).count();
    assert!(switches <= 4, "no flapping: {switches} switches in 30 s");
    let delay_of = |client: usize, sub: PeerId| net.got(client, net.down_mid(sub, "main/camera")).last().and_then(|g| g.play_delay_min_ms);
    assert_eq!(delay_of(1, subs[0]), None, "no playout delay asked of the clean classroom");
    let weak_delay = delay_of(2, subs[1]).expect("the lossy classroom's video carries a playout delay");
    assert!((100..=400).contains(&weak_delay), "two round trips (80 ms) and a margin: {weak_delay} ms");
}

/// The acceptance profile of issue 4 on the simulated link: 600 kbit/s, then
/// 150 kbit/s for 20 s, then 2 Mbit/s, with `loss_per_mille` random loss
/// throughout. Returns the audio packets received in the narrow 20 s (of 1200)
/// (most are lost in the 1-2 s before the loss ceiling pauses the video), the
/// second after the link's return in which the top layer arrived, and the layer
/// of the last video packet.
fn narrow_spell(loss_per_mille: u64, seed: u64) -> (usize, Option<u64>, Option<u8>) {
    let (mut net, mut t, subs) = class(vec![Some(Link::new(600_000, 40 * MS, loss_per_mille).seeded(seed))]);
    run_frames(&mut net, &mut t, 600);
    let (mic, cam) = (net.down_mid(subs[0], "main/mic"), net.down_mid(subs[0], "main/camera"));
    net.clients[1].link.as_mut().unwrap().rate_bps = 150_000;
    let audio_before = net.got(1, mic).len();
    run_frames(&mut net, &mut t, 600);
    let audio_narrow = net.got(1, mic).len() - audio_before;
    assert!(net.sfu.counters().drops(DropReason::BandwidthPaused) > 0, "video paused for bandwidth");
    net.clients[1].link.as_mut().unwrap().rate_bps = 2_000_000;
    let mut top_after = None;
    for second in 1..=15 {
        let seen = net.got(1, cam).len();
        run_frames(&mut net, &mut t, 30);
        if top_after.is_none() && net.got(1, cam)[seen..].iter().any(|g| g.payload[1] == 2) {
            top_after = Some(second);
        }
    }
    let last = layers_received(&net, 1, subs[0]).last().copied();
    eprintln!("narrow link, loss {loss_per_mille}/1000, seed {seed}: audio {audio_narrow}/1200; top layer {top_after:?} s after the link returned; layer at the end {last:?}");
    (audio_narrow, top_after, last)
}

#[test]
fn video_pauses_below_the_lowest_layer_and_comes_back_when_the_link_does() {
    let (audio_narrow, top_after, last) = narrow_spell(0, 1);
    assert!(audio_narrow * 100 >= 1200 * 94, "audio through the narrow 20 s: {audio_narrow} of 1200");
    let top_after = top_after.expect("back on the top layer");
    assert!(top_after <= 10, "top layer {top_after} s after the link returned");
    assert_eq!(last, Some(2), "still on the top layer");
}

#[test]
fn on_a_randomly_lossy_link_paused_video_comes_back_as_soon_as_the_link_does() {
    // 3 % loss throughout: str0m's loss-based estimator alone holds the estimate
    // below the lowest layer long after the link is back, and does not probe.
    // Without `reprobe` the top layer came back after 8-14 s (mean 11) over these
    // eight loss patterns; with it after 6-11 s (mean 8). Which packets str0m's
    // timers send first varies from run to run, so the bounds leave a margin.
    let runs: Vec<_> = (1..=8).map(|seed| narrow_spell(30, seed * 0x9e37_79b9_7f4a_7c15)).collect();
    let mut total = 0;
    for (audio_narrow, top_after, _) in runs {
        assert!(audio_narrow * 100 >= 1200 * 85, "audio through the narrow 20 s: {audio_narrow} of 1200");
        let top_after = top_after.expect("back on the top layer");
        assert!(top_after <= 12, "top layer {top_after} s after the link returned");
        total += top_after;
    }
    assert!(total <= 8 * 19 / 2, "top layer {total} / 8 s after the link returned on average (at most 9.5)");
}
