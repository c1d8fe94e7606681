//! Arbitrary bytes as a room-protocol message.
#![no_main]

use classcast::signaling::protocol::ClientMsg;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = serde_json::from_slice::<ClientMsg>(data);
});
