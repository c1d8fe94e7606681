//! Arbitrary text as a join token (and as an Authorization header).
#![no_main]

use std::sync::OnceLock;

use classcast::rooms::auth::{Tokens, bearer};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    static TOKENS: OnceLock<Tokens> = OnceLock::new();
    let tokens = TOKENS.get_or_init(|| Tokens::new("fuzz-secret"));
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = tokens.verify(text);
        let _ = bearer(Some(text));
    }
});
