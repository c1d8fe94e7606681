//! Simulcast layers: which layer a packet belongs to, and which layer each down
//! track forwards.
//!
//! A publisher may send one video source as up to `MAX_LAYERS` simulcast layers
//! (RTP streams told apart by their `rid`), layer 0 the smallest. Every down track
//! has a `LayerSelector`: the allocator (see `allocate`) sets its *target* layer
//! (or `None`: video paused for lack of bandwidth), and the selector moves the
//! *current* layer to the target only on a keyframe of the target layer.
//!
//! Invariants:
//! - A switch happens only on a keyframe of the new layer; until it arrives the
//!   old layer keeps flowing, so the player never sees a gap or a broken frame.
//! - Packets of any other layer are refused (`LayerNotSelected`) without touching
//!   the down track's state.
//! - A target of `None` stops the track at once; resuming waits for a keyframe.
//! - A track that is not simulcast is layer 0 and behaves exactly as before
//!   (target `Some(0)`), unless the allocator pauses it.

use crate::sfu::stats::DropReason;

/// Most layers a simulcast source may have.
pub const MAX_LAYERS: usize = 3;

/// The layer index of a simulcast `rid`: `q`/`h`/`f` (quarter, half, full
/// resolution; what the classcast client sends) or `low`/`mid`/`high`.
pub fn layer_of_rid(rid: &str) -> Option<u8> {
    match rid {
        "q" | "low" | "l" => Some(0),
        "h" | "mid" | "m" => Some(1),
        "f" | "high" => Some(2),
        _ => None,
    }
}

/// The rid a layer index is sent under by the classcast client.
pub fn rid_of_layer(layer: u8) -> &'static str {
    ["q", "h", "f"][usize::from(layer).min(MAX_LAYERS - 1)]
}

/// Forwarding decision for one packet of one layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    Pass,
    /// A packet of the target layer that is not a keyframe: the switch waits.
    WaitKeyframe,
    /// Neither the current nor the target layer.
    NotSelected,
    /// The allocator paused this track (not enough bandwidth).
    Paused,
}

impl Gate {
    /// The drop reason of a refused packet.
    pub fn drop_reason(self) -> Option<DropReason> {
        match self {
            Gate::Pass => None,
            Gate::WaitKeyframe => Some(DropReason::AwaitingKeyframe),
            Gate::NotSelected => Some(DropReason::LayerNotSelected),
            Gate::Paused => Some(DropReason::BandwidthPaused),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LayerSelector {
    current: Option<u8>,
    target: Option<u8>,
}

impl Default for LayerSelector {
    fn default() -> Self {
        LayerSelector { current: None, target: Some(0) }
    }
}

impl LayerSelector {
    pub fn target(&self) -> Option<u8> {
        self.target
    }

    /// The layer being forwarded now (`None` before the first keyframe or while paused).
    pub fn current(&self) -> Option<u8> {
        self.current
    }

    /// Returns whether the target changed.
    pub fn set_target(&mut self, target: Option<u8>) -> bool {
        std::mem::replace(&mut self.target, target) != target
    }

    /// The layer a keyframe is needed from, if a switch or resume is waiting.
    pub fn waiting_for(&self) -> Option<u8> {
        self.target.filter(|t| self.current != Some(*t))
    }

    pub fn gate(&mut self, layer: u8, keyframe: bool) -> Gate {
        let Some(target) = self.target else {
            self.current = None;
            return Gate::Paused;
        };
        if layer == target {
            if self.current == Some(target) || keyframe {
                self.current = Some(target);
                return Gate::Pass;
            }
            return Gate::WaitKeyframe;
        }
        if self.current == Some(layer) { Gate::Pass } else { Gate::NotSelected }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rids_map_to_layers() {
        assert_eq!(layer_of_rid("q"), Some(0));
        assert_eq!(layer_of_rid("h"), Some(1));
        assert_eq!(layer_of_rid("f"), Some(2));
        assert_eq!(layer_of_rid("x"), None);
        for l in 0..3 {
            assert_eq!(layer_of_rid(rid_of_layer(l)), Some(l));
        }
    }

    #[test]
    fn starts_on_a_keyframe_of_layer_zero() {
        let mut s = LayerSelector::default();
        assert_eq!(s.gate(0, false), Gate::WaitKeyframe);
        assert_eq!(s.gate(1, true), Gate::NotSelected);
        assert_eq!(s.gate(0, true), Gate::Pass);
        assert_eq!(s.gate(0, false), Gate::Pass);
        assert_eq!(s.current(), Some(0));
    }

    #[test]
    fn switch_up_keeps_the_old_layer_until_the_new_keyframe() {
        let mut s = LayerSelector::default();
        s.gate(0, true);
        assert!(s.set_target(Some(2)));
        assert_eq!(s.waiting_for(), Some(2));
        assert_eq!(s.gate(2, false), Gate::WaitKeyframe);
        assert_eq!(s.gate(0, false), Gate::Pass, "old layer flows until the switch");
        assert_eq!(s.gate(1, true), Gate::NotSelected);
        assert_eq!(s.gate(2, true), Gate::Pass);
        assert_eq!(s.gate(0, false), Gate::NotSelected, "old layer stops after the switch");
        assert_eq!(s.waiting_for(), None);
    }

    #[test]
    fn pause_stops_at_once_and_resume_waits_for_a_keyframe() {
        let mut s = LayerSelector::default();
        s.gate(0, true);
        s.set_target(None);
        assert_eq!(s.gate(0, true), Gate::Paused);
        assert_eq!(s.current(), None);
        assert!(s.set_target(Some(0)));
        assert_eq!(s.gate(0, false), Gate::WaitKeyframe);
        assert_eq!(s.gate(0, true), Gate::Pass);
        assert!(!s.set_target(Some(0)));
    }

    #[test]
    fn refusals_have_drop_reasons() {
        assert_eq!(Gate::Pass.drop_reason(), None);
        assert_eq!(Gate::NotSelected.drop_reason(), Some(DropReason::LayerNotSelected));
        assert_eq!(Gate::Paused.drop_reason(), Some(DropReason::BandwidthPaused));
    }
}
