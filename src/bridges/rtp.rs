//! The RTP fields a bridge needs from the pipeline's packets (pure, never panics).
//!
//! Invariant: a packet that is too short or not RTP version 2 is refused
//! (`None`), never sliced out of bounds.

/// Marker bit, RTP timestamp and payload of one RTP packet.
#[derive(Debug, PartialEq, Eq)]
pub struct RtpView<'a> {
    pub marker: bool,
    pub timestamp: u32,
    pub payload: &'a [u8],
}

pub fn parse(p: &[u8]) -> Option<RtpView<'_>> {
    if p.len() < 12 || p[0] >> 6 != 2 {
        return None;
    }
    let csrc = usize::from(p[0] & 0x0f) * 4;
    let mut start = 12 + csrc;
    if p[0] & 0x10 != 0 {
        let words = u16::from_be_bytes([*p.get(start + 2)?, *p.get(start + 3)?]);
        start += 4 + usize::from(words) * 4;
    }
    let mut end = p.len();
    if p[0] & 0x20 != 0 {
        end = end.checked_sub(usize::from(*p.last()?))?;
    }
    let payload = p.get(start..end)?;
    Some(RtpView { marker: p[1] & 0x80 != 0, timestamp: u32::from_be_bytes([p[4], p[5], p[6], p[7]]), payload })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_header_csrc_extension_and_padding() {
        let mut p = vec![0x80 | 0x10 | 0x20 | 1, 0x80 | 96, 0, 1, 0, 0, 0x10, 0, 1, 2, 3, 4];
        p.extend([9, 9, 9, 9]); // one CSRC
        p.extend([0xbe, 0xde, 0, 1, 1, 2, 3, 4]); // extension of one word
        p.extend([0xaa, 0xbb, 0, 0, 3]); // payload + 3 bytes of padding
        let v = parse(&p).unwrap();
        assert_eq!(v, RtpView { marker: true, timestamp: 0x1000, payload: &[0xaa, 0xbb] });
    }

    #[test]
    fn refuses_garbage() {
        assert_eq!(parse(&[0x80; 5]), None);
        assert_eq!(parse(&[0x00; 20]), None);
        assert_eq!(parse(&[0x90, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xbe, 0xde, 0xff, 0xff]), None);
        assert_eq!(parse(&[0xa0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 200]), None);
    }
}
