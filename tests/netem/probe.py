#!/usr/bin/env python3
"""UDP probe for the emulator's self-test: run inside the classroom namespace.

`probe.py echo PORT` runs a UDP echo server on 127.0.0.1:PORT (in the server's
namespace) until killed. `probe.py send PORT --kbps K --size B --seconds S` sends
sequence-numbered datagrams of B bytes to 127.0.0.1:PORT at K kbit/s for S seconds,
collects the echoes for one more second, and prints one JSON line: sent, received,
round-trip times (ms: min, median, p90), the echo throughput (kbit/s over the span
of arrivals) and the round-trip loss fraction.
"""

import argparse
import json
import socket
import struct
import time


def echo(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", port))
    print(json.dumps({"ready": True}), flush=True)
    while True:
        data, addr = s.recvfrom(65535)
        s.sendto(data, addr)


def send(port, kbps, size, seconds):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.settimeout(0.001)
    interval = size * 8 / (kbps * 1000.0)
    start = time.monotonic()
    sent, rtts, arrivals, nbytes = 0, [], [], 0
    next_at = start
    end = start + seconds
    while True:
        now = time.monotonic()
        if now < end and now >= next_at:
            s.sendto(struct.pack("!Id", sent, now).ljust(size, b"x"), ("127.0.0.1", port))
            sent += 1
            next_at += interval
            continue
        if now >= end + 1.0:
            break
        try:
            data = s.recv(65535)
        except (socket.timeout, BlockingIOError):
            continue
        _, t0 = struct.unpack("!Id", data[:12])
        t = time.monotonic()
        rtts.append((t - t0) * 1000.0)
        arrivals.append(t)
        nbytes += len(data)
    rtts.sort()
    span = (arrivals[-1] - arrivals[0]) if len(arrivals) > 1 else 0
    pick = lambda q: round(rtts[min(len(rtts) - 1, int(q * len(rtts)))], 2) if rtts else None
    print(json.dumps({
        "sent": sent,
        "received": len(rtts),
        "loss": round(1 - len(rtts) / sent, 4) if sent else None,
        "rtt_min_ms": pick(0.0), "rtt_median_ms": pick(0.5), "rtt_p90_ms": pick(0.9),
        "echo_kbps": round(nbytes * 8 / span / 1000.0, 1) if span > 0 else None,
    }), flush=True)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["echo", "send"])
    p.add_argument("port", type=int)
    p.add_argument("--kbps", type=float, default=200)
    p.add_argument("--size", type=int, default=1000)
    p.add_argument("--seconds", type=float, default=3)
    a = p.parse_args()
    if a.mode == "echo":
        echo(a.port)
    else:
        send(a.port, a.kbps, a.size, a.seconds)


if __name__ == "__main__":
    main()
