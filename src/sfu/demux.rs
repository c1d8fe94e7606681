//! Which peer a datagram on the shared media port belongs to.
//!
//! All peers share one UDP port. A datagram is attributed either by its source
//! address (learned from a STUN request that named a peer's ICE ufrag), or, for a
//! STUN request from a new address, by the ufrag in its USERNAME attribute
//! (`<server ufrag>:<client ufrag>`, RFC 8445 §7.2.2). The same parsing is used by
//! the socket driver to pick the shard, so it is kept free of any state.
//!
//! Invariant: never panics and never reads past the datagram, whatever the bytes.

/// First-byte classification of a datagram (RFC 7983).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatagramKind {
    Stun,
    Dtls,
    RtpOrRtcp,
    Other,
}

pub fn classify(data: &[u8]) -> DatagramKind {
    match data.first() {
        Some(0..=3) => DatagramKind::Stun,
        Some(20..=63) => DatagramKind::Dtls,
        Some(128..=191) => DatagramKind::RtpOrRtcp,
        _ => DatagramKind::Other,
    }
}

const STUN_HEADER: usize = 20;
const MAGIC_COOKIE: [u8; 4] = [0x21, 0x12, 0xa4, 0x42];
const ATTR_USERNAME: u16 = 0x0006;

/// The server-side ICE ufrag named by a STUN request, if the datagram is one.
pub fn stun_server_ufrag(data: &[u8]) -> Option<&str> {
    if data.len() < STUN_HEADER || data[4..8] != MAGIC_COOKIE {
        return None;
    }
    let declared = usize::from(u16::from_be_bytes([data[2], data[3]]));
    let body = data.get(STUN_HEADER..STUN_HEADER + declared)?;
    let username = find_attribute(body, ATTR_USERNAME)?;
    let text = std::str::from_utf8(username).ok()?;
    text.split(':').next().filter(|u| !u.is_empty())
}

fn find_attribute(mut body: &[u8], wanted: u16) -> Option<&[u8]> {
    while body.len() >= 4 {
        let kind = u16::from_be_bytes([body[0], body[1]]);
        let len = usize::from(u16::from_be_bytes([body[2], body[3]]));
        let value = body.get(4..4 + len)?;
        if kind == wanted {
            return Some(value);
        }
        let padded = (4 + len + 3) & !3;
        body = body.get(padded..)?;
    }
    None
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A minimal STUN binding request with a USERNAME attribute.
    pub fn binding_request(username: &str) -> Vec<u8> {
        let mut attr = Vec::new();
        attr.extend_from_slice(&ATTR_USERNAME.to_be_bytes());
        attr.extend_from_slice(&(username.len() as u16).to_be_bytes());
        attr.extend_from_slice(username.as_bytes());
        while attr.len() % 4 != 0 {
            attr.push(0);
        }
        let mut msg = vec![0x00, 0x01];
        msg.extend_from_slice(&(attr.len() as u16).to_be_bytes());
        msg.extend_from_slice(&MAGIC_COOKIE);
        msg.extend_from_slice(&[7; 12]);
        msg.extend_from_slice(&attr);
        msg
    }

    #[test]
    fn reads_server_ufrag_from_username() {
        assert_eq!(stun_server_ufrag(&binding_request("srvU:cliU")), Some("srvU"));
        assert_eq!(stun_server_ufrag(&binding_request("abc")), Some("abc"));
        assert_eq!(stun_server_ufrag(&binding_request(":x")), None);
    }

    #[test]
    fn truncated_or_lying_lengths_are_rejected() {
        let mut m = binding_request("srvU:cliU");
        m[3] = 200; // declared length longer than the datagram
        assert_eq!(stun_server_ufrag(&m), None);
        let m = binding_request("srvU:cliU");
        for cut in 0..m.len() {
            let _ = stun_server_ufrag(&m[..cut]);
        }
    }

    #[test]
    fn classifies_by_first_byte() {
        assert_eq!(classify(&[0x00]), DatagramKind::Stun);
        assert_eq!(classify(&[22]), DatagramKind::Dtls);
        assert_eq!(classify(&[0x80]), DatagramKind::RtpOrRtcp);
        assert_eq!(classify(&[0xff]), DatagramKind::Other);
        assert_eq!(classify(&[]), DatagramKind::Other);
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut x: u32 = 12345;
        for _ in 0..20_000 {
            let len = (x % 64) as usize;
            let buf: Vec<u8> = (0..len).map(|i| { x = x.wrapping_mul(1_103_515_245).wrapping_add(12345 + i as u32); (x >> 16) as u8 }).collect();
            let mut b = buf.clone();
            if b.len() >= 8 { b[4..8].copy_from_slice(&MAGIC_COOKIE); b[0] = 0; }
            let _ = stun_server_ufrag(&buf);
            let _ = stun_server_ufrag(&b);
        }
    }
}
