// Junk UDP datagrams for the media port: random sizes (1-1500 bytes), some dressed up as
// STUN, RTP, RTCP or DTLS in their first bytes, the rest random. Sent paced, from a few
// sockets on 127.0.0.1, so the kernel does not drop them before the server sees them.

import { randomBytes, randomInt } from 'node:crypto';
import dgram from 'node:dgram';
import { sleep } from './wait.js';

const KINDS = ['stun', 'rtp', 'rtcp', 'dtls', 'random'];

/** One junk datagram of `kind` (one of KINDS). */
export function junk(kind) {
  const b = randomBytes(randomInt(1, 1501));
  switch (kind) {
    case 'stun': // binding request/response type, magic cookie 0x2112A442
      b[0] = randomInt(0, 2);
      if (b.length > 1) b[1] = 0x01;
      if (b.length >= 8) b.writeUInt32BE(0x2112a442, 4);
      break;
    case 'rtp': // version 2, dynamic payload type (marker bit random)
      b[0] = 0x80;
      if (b.length > 1) b[1] = (randomInt(0, 2) << 7) | randomInt(96, 128);
      break;
    case 'rtcp': // version 2, SR/RR/SDES/BYE/APP/RTPFB/PSFB
      b[0] = 0x80 | randomInt(0, 4);
      if (b.length > 1) b[1] = randomInt(200, 207);
      break;
    case 'dtls': // content type 20-23 (handshake mostly), DTLS 1.2 version
      b[0] = [20, 21, 22, 22, 23][randomInt(0, 5)];
      if (b.length > 2) b.writeUInt16BE(0xfefd, 1);
      break;
    default:
      break;
  }
  return b;
}

/** Send `count` junk datagrams to 127.0.0.1:`port`; resolves to counts per kind. */
export async function sendJunk(port, count, { sockets = 4, batch = 50, pauseMs = 10 } = {}) {
  const socks = await Promise.all(
    Array.from({ length: sockets }, () => new Promise((res) => {
      const s = dgram.createSocket('udp4');
      s.bind(0, '127.0.0.1', () => res(s));
    })),
  );
  const perKind = Object.fromEntries(KINDS.map((k) => [k, 0]));
  try {
    for (let sent = 0; sent < count; ) {
      const n = Math.min(batch, count - sent);
      await Promise.all(Array.from({ length: n }, (_, i) => {
        const kind = KINDS[randomInt(0, KINDS.length)];
        perKind[kind]++;
        return new Promise((res, rej) => socks[(sent + i) % sockets].send(junk(kind), port, '127.0.0.1', (e) => (e ? rej(e) : res())));
      }));
      sent += n;
      await sleep(pauseMs);
    }
  } finally {
    for (const s of socks) s.close();
  }
  return perKind;
}
