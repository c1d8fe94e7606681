// Hand-made SDP offers for HTTP-level tests (WHIP/WHEP without a browser): a well-formed
// H.264 + Opus offer as a control, and offers that carry only codecs classcast refuses.

import { randomBytes, randomInt } from 'node:crypto';

export const OPUS = { pt: 111, name: 'opus', clock: 48000, channels: 2, fmtp: 'minptime=10;useinbandfec=1' };
export const PCMU = { pt: 0, name: 'PCMU', clock: 8000 };
export const H264 = { pt: 102, name: 'H264', clock: 90000, fmtp: 'level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f' };
export const VP8 = { pt: 96, name: 'VP8', clock: 90000 };
export const AV1 = { pt: 45, name: 'AV1', clock: 90000 };

const VIDEO_FB = ['goog-remb', 'transport-cc', 'ccm fir', 'nack', 'nack pli'];

/**
 * An offer in the shape browsers send: BUNDLE, rtcp-mux, DTLS actpass, no candidates
 * (the server is ICE-lite). `media` is [{kind: 'audio'|'video', codecs: [...], direction}].
 */
export function offerSdp(media) {
  const ufrag = randomBytes(3).toString('hex');
  const pwd = randomBytes(12).toString('hex');
  const fingerprint = [...randomBytes(32)].map((b) => b.toString(16).padStart(2, '0').toUpperCase()).join(':');
  const mids = media.map((_, i) => String(i));
  const lines = [
    'v=0',
    `o=- ${randomInt(1, 2 ** 47)} 2 IN IP4 127.0.0.1`,
    's=-',
    't=0 0',
    `a=group:BUNDLE ${mids.join(' ')}`,
    'a=extmap-allow-mixed',
    'a=msid-semantic: WMS stream',
  ];
  media.forEach((m, i) => {
    const direction = m.direction || 'sendonly';
    lines.push(
      `m=${m.kind} 9 UDP/TLS/RTP/SAVPF ${m.codecs.map((c) => c.pt).join(' ')}`,
      'c=IN IP4 0.0.0.0',
      'a=rtcp:9 IN IP4 0.0.0.0',
      `a=ice-ufrag:${ufrag}`,
      `a=ice-pwd:${pwd}`,
      'a=ice-options:trickle',
      `a=fingerprint:sha-256 ${fingerprint}`,
      'a=setup:actpass',
      `a=mid:${mids[i]}`,
      `a=${direction}`,
      'a=rtcp-mux',
    );
    if (m.kind === 'video') lines.push('a=rtcp-rsize');
    for (const c of m.codecs) {
      lines.push(`a=rtpmap:${c.pt} ${c.name}/${c.clock}${c.channels ? `/${c.channels}` : ''}`);
      if (m.kind === 'video') for (const fb of VIDEO_FB) lines.push(`a=rtcp-fb:${c.pt} ${fb}`);
      if (c.fmtp) lines.push(`a=fmtp:${c.pt} ${c.fmtp}`);
    }
    if (direction === 'sendonly') {
      const ssrc = randomInt(1, 2 ** 32 - 1);
      lines.push(`a=msid:stream track${i}`, `a=ssrc:${ssrc} cname:classcast-test`, `a=ssrc:${ssrc} msid:stream track${i}`);
    }
  });
  return `${lines.join('\r\n')}\r\n`;
}

/** A publish offer the server must accept: H.264 video + Opus audio. */
export const validPublishOffer = () =>
  offerSdp([{ kind: 'video', codecs: [H264] }, { kind: 'audio', codecs: [OPUS] }]);

/** A play offer (WHEP): recvonly video + audio. */
export const validPlayOffer = () =>
  offerSdp([
    { kind: 'video', codecs: [H264, VP8], direction: 'recvonly' },
    { kind: 'audio', codecs: [OPUS], direction: 'recvonly' },
  ]);
