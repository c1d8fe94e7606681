#!/usr/bin/env python3
"""WHIP publisher (aiortc): synthetic H.264 (or VP8) video + Opus audio into a class.

    tests/peers/.venv/bin/python tests/peers/whip_publish.py \
        --server http://127.0.0.1:8080 --class CLASS_ID --token JOIN_TOKEN [--codec h264|vp8]
        [--sources camera,mic] [--duration SECONDS]

Publishes until SIGTERM/SIGINT or --duration, then DELETEs its WHIP session. Prints one
status line per step on stdout (`LOCATION <url>`, `CONNECTED`, `DELETE <status>`) so a
test can follow it. Exit code 0 only if the POST gave 201, ICE+DTLS connected and the DELETE gave 204.
Loopback only: no STUN/TURN, host candidates on 127.0.0.1.
"""

import argparse
import asyncio
import os
import signal
import sys

from peerlib import SignalingError, whip_publish


def say(line: str) -> None:
    print(line, flush=True)


async def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--server", required=True, help="base URL, e.g. http://127.0.0.1:8080")
    ap.add_argument("--class", dest="class_id", required=True)
    ap.add_argument("--token", default=os.environ.get("CLASSCAST_TOKEN"), help="join token (or env CLASSCAST_TOKEN)")
    ap.add_argument("--codec", choices=["h264", "vp8"], default="h264")
    ap.add_argument("--sources", help="value of ?sources=, e.g. camera,mic")
    ap.add_argument("--duration", type=float, default=0, help="seconds to publish (0: until SIGTERM)")
    args = ap.parse_args()
    if not args.token:
        ap.error("--token or CLASSCAST_TOKEN is required")

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    try:
        session = await whip_publish(args.server, args.class_id, args.token, codec=args.codec, sources=args.sources)
    except SignalingError as e:
        say(f"POST {e.status} {e.body}")
        return 1
    say("POST 201")
    say(f"LOCATION {session.location}")
    connected = True
    try:
        await session.wait_connected(timeout=15)
        say("CONNECTED")
    except TimeoutError as e:
        connected = False
        say(f"FAILED {e}")
    if connected:
        try:
            await asyncio.wait_for(stop.wait(), timeout=args.duration or None)
        except TimeoutError:
            pass  # --duration elapsed
    status = await session.delete()
    say(f"DELETE {status}")
    return 0 if connected and status == 204 else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
