//! SRTP AEAD_AES_256_GCM (RFC 7714) protect and unprotect with aws-lc-rs, the
//! implementation str0m itself uses for this profile. For the floor program
//! and the load generator's floor-mode publisher; session keys are given, not
//! derived (key derivation runs once per session, not per packet).
//!
//! Invariant: `protect` appends exactly `TAG` bytes; the RTP header is the AAD.
#![allow(dead_code)]

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};

pub const TAG: usize = 16;

pub struct Srtp {
    key: LessSafeKey,
    salt: [u8; 12],
}

/// Length of the RTP header (fixed part, CSRCs, extension).
pub fn header_len(p: &[u8]) -> Option<usize> {
    if p.len() < 12 {
        return None;
    }
    let mut off = 12 + 4 * (p[0] & 0x0f) as usize;
    if p[0] & 0x10 != 0 {
        let ext = u16::from_be_bytes([*p.get(off + 2)?, *p.get(off + 3)?]) as usize;
        off += 4 + 4 * ext;
    }
    (off <= p.len()).then_some(off)
}

impl Srtp {
    pub fn new(seed: u64) -> Srtp {
        let mut key = [0u8; 32];
        for (i, b) in key.iter_mut().enumerate() {
            *b = (seed.wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(i as u32) >> 7) as u8 ^ i as u8;
        }
        let unbound = UnboundKey::new(&AES_256_GCM, &key).expect("a 32-byte key is valid for AES-256-GCM");
        Srtp { key: LessSafeKey::new(unbound), salt: [seed as u8; 12] }
    }

    fn nonce(&self, p: &[u8], roc: u32) -> Nonce {
        let mut iv = [0u8; 12];
        iv[2..6].copy_from_slice(&p[8..12]);
        iv[6..10].copy_from_slice(&roc.to_be_bytes());
        iv[10..12].copy_from_slice(&p[2..4]);
        for (v, s) in iv.iter_mut().zip(self.salt) {
            *v ^= s;
        }
        Nonce::assume_unique_for_key(iv)
    }

    /// Encrypt the RTP packet in `buf` in place and append the tag.
    pub fn protect(&self, buf: &mut Vec<u8>, roc: u32) -> bool {
        let Some(h) = header_len(buf) else { return false };
        let nonce = self.nonce(buf, roc);
        let (head, body) = buf.split_at_mut(h);
        let Ok(tag) = self.key.seal_in_place_separate_tag(nonce, Aad::from(&*head), body) else { return false };
        buf.extend_from_slice(tag.as_ref());
        true
    }

    /// Authenticate and decrypt in place; on success `buf` is the plain RTP packet.
    pub fn unprotect(&self, buf: &mut Vec<u8>, roc: u32) -> bool {
        let Some(h) = header_len(buf) else { return false };
        if buf.len() < h + TAG {
            return false;
        }
        let nonce = self.nonce(buf, roc);
        let (head, body) = buf.split_at_mut(h);
        let Ok(plain) = self.key.open_in_place(nonce, Aad::from(&*head), body) else { return false };
        let n = h + plain.len();
        buf.truncate(n);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_tamper() {
        let s = Srtp::new(7);
        let plain = vec![0x80, 0x7f, 0, 5, 0, 0, 0, 1, 0, 0, 0, 2, 9, 9, 9];
        let mut p = plain.clone();
        assert!(s.protect(&mut p, 0));
        assert_eq!(p.len(), plain.len() + TAG);
        let mut bad = p.clone();
        bad[13] ^= 1;
        assert!(!s.unprotect(&mut bad, 0));
        assert!(s.unprotect(&mut p, 0));
        assert_eq!(p, plain);
    }
}
