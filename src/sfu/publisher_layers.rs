//! Pausing simulcast layers nobody receives: after each allocation, every
//! simulcast publisher track learns which of its layers some subscriber (or the
//! recording) forwards or is switching to; a layer unused for `UNUSED_GRACE` is
//! paused at the publisher (`SfuEvent::PublisherLayers`, which the signaling
//! layer turns into a `layers` message), and resumed as soon as one is wanted.
//!
//! Invariants:
//! - The lowest layer is never paused (a subscriber whose link weakens can fall
//!   back to it at once).
//! - A recorded track keeps its top layer.
//! - An event goes out only when a track's set of active layers changes.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use str0m::media::Mid;

use super::forward::layers::MAX_LAYERS;
use super::negotiate::feed_of;
use super::room::Feed;
use super::{PeerId, Sfu, SfuEvent};

/// How long a layer stays unused before the publisher is asked to pause it.
pub const UNUSED_GRACE: Duration = Duration::from_secs(5);

type Wanted = HashMap<(PeerId, Mid), [bool; MAX_LAYERS]>;

impl Sfu {
    pub(super) fn update_publisher_layers(&mut self, now: Instant) {
        let wanted = self.wanted_layers();
        let mut events = Vec::new();
        for peer in self.peers.values_mut() {
            for (mid, track) in peer.tracks_in.iter_mut().filter(|(_, t)| t.known_layers > 1) {
                let mut want = wanted.get(&(peer.id, *mid)).copied().unwrap_or_default();
                want[0] = true;
                if settle(track, want, now) {
                    let active = (0..usize::from(track.known_layers)).filter(|l| track.active[*l]).filter_map(|l| track.layers[l].rid.map(|r| r.to_string())).collect();
                    events.push(SfuEvent::PublisherLayers { peer: peer.id, mid: mid.to_string(), active });
                }
            }
        }
        self.events.extend(events);
    }

    /// Per publisher track, the layers some down track forwards or waits for.
    fn wanted_layers(&self) -> Wanted {
        let mut wanted = Wanted::new();
        let mut mark = |feed: Feed, layers: [Option<u8>; 2]| {
            let w = wanted.entry((feed.peer, feed.mid)).or_default();
            for l in layers.into_iter().flatten() {
                w[usize::from(l).min(MAX_LAYERS - 1)] = true;
            }
        };
        for peer in self.peers.values() {
            let Some(room) = self.rooms.get(&peer.room) else { continue };
            for d in peer.down.values().filter(|d| !d.paused) {
                if let Some(feed) = feed_of(room, &d.slot) {
                    mark(feed, [d.layers.target(), d.layers.current()]);
                }
            }
        }
        for tap in self.taps.values() {
            let feed = self.rooms.get(&tap.room).and_then(|r| feed_of(r, &tap.down.slot));
            if let Some(feed) = feed {
                let top = self.peers.get(&feed.peer).and_then(|p| p.tracks_in.get(&feed.mid)).map(|t| t.known_layers.saturating_sub(1));
                mark(feed, [top, None]);
            }
        }
        wanted
    }
}

/// Apply one round of wants to a track's active layers; true when they changed.
fn settle(track: &mut super::peer::TrackIn, want: [bool; MAX_LAYERS], now: Instant) -> bool {
    let mut changed = false;
    for l in 0..usize::from(track.known_layers) {
        if want[l] {
            track.unused_since[l] = None;
            changed |= !std::mem::replace(&mut track.active[l], true);
            continue;
        }
        let since = *track.unused_since[l].get_or_insert(now);
        if track.active[l] && now.saturating_duration_since(since) >= UNUSED_GRACE {
            track.active[l] = false;
            changed = true;
        }
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sfu::peer::TrackIn;
    use crate::sfu::room::SlotKey;
    use crate::signaling::protocol::Source;

    fn track() -> TrackIn {
        let mut t = TrackIn::new(SlotKey::new("main", Source::Camera), 1);
        t.known_layers = 3;
        t
    }

    #[test]
    fn an_unused_layer_pauses_after_the_grace_and_resumes_at_once() {
        let t0 = Instant::now();
        let mut t = track();
        assert!(!settle(&mut t, [true, false, true], t0));
        assert!(!settle(&mut t, [true, false, true], t0 + UNUSED_GRACE / 2));
        assert!(settle(&mut t, [true, false, true], t0 + UNUSED_GRACE));
        assert_eq!(t.active, [true, false, true]);
        assert!(!settle(&mut t, [true, false, true], t0 + UNUSED_GRACE * 2), "no repeat");
        assert!(settle(&mut t, [true, true, true], t0 + UNUSED_GRACE * 2));
        assert_eq!(t.active, [true, true, true]);
    }

    #[test]
    fn a_layer_wanted_again_inside_the_grace_never_pauses() {
        let t0 = Instant::now();
        let mut t = track();
        settle(&mut t, [true, true, false], t0);
        settle(&mut t, [true, true, true], t0 + UNUSED_GRACE / 2);
        assert!(!settle(&mut t, [true, true, false], t0 + UNUSED_GRACE));
        assert_eq!(t.active, [true; 3]);
    }
}
