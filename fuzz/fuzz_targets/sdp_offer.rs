//! Arbitrary SDP text through the codec check and str0m's parser.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = classcast::sfu::sdp_check::offered_codecs(text);
        let _ = str0m::change::SdpOffer::from_sdp_string(text);
    }
});
