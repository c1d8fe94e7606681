#!/usr/bin/env python3
"""User-space network emulator for classcast's browser tests (this kernel has no netem).

One impaired classroom runs in its own network namespace (created by the test, e.g.
held by `unshare -n sleep infinity`). This process listens on 127.0.0.1 inside that
namespace, on the server's HTTP port (TCP: pages, WebSocket), on the media port (UDP),
and on the media port over TCP (ICE-TCP), and forwards everything to 127.0.0.1 in its
own (the server's) namespace, applying per-direction impairments:

- rate: a bottleneck link of `rateKbps` with a FIFO queue of at most `queueMs` of
  data; a UDP datagram that would wait longer is tail-dropped (`queue`); TCP data
  waits (it is never dropped, like TCP retransmitting through a bottleneck);
- delay: a fixed one-way delay `delayMs` after the bottleneck;
- loss: random loss of UDP datagrams, `lossPct` percent, seeded (`seed`);
- cut: nothing passes; UDP is dropped (`cut`), TCP stops being forwarded and
  resumes where it stopped when the cut ends;
- blockUdp: UDP is dropped (`block_udp`), TCP passes.

Control: JSON lines on stdin, one answer line on stdout per command:
  {"id": 1, "cmd": "set", "link": {...}}                  both directions
  {"id": 2, "cmd": "set", "up": {...}, "down": {...}}     per direction
  {"id": 3, "cmd": "counters"}
Link fields: rateKbps (0: unlimited), queueMs, delayMs, lossPct, cut, blockUdp.
"up" is classroom -> server, "down" server -> classroom. Counters are per direction:
udp_packets/udp_bytes forwarded, tcp_bytes forwarded, dropped by reason.

Invariants: every socket is bound or connected to 127.0.0.1 only, inside either the
classroom namespace or this process's own; the only inputs are the listening sockets
and stdin; a malformed control line is answered with an error, never a crash.
"""

import argparse
import asyncio
import ctypes
import json
import os
import random
import socket
import sys
import time

CLONE_NEWNET = 0x40000000
LOCAL = "127.0.0.1"
TCP_SEGMENT = 1400
UDP_IDLE_S = 60.0


def setns(path):
    """Move the calling thread into the network namespace at `path`."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(path, os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns({path}): {os.strerror(err)}")
    finally:
        os.close(fd)


class Link:
    """One direction of the bottleneck: shared by UDP and TCP going that way."""

    DEFAULTS = {"rateKbps": 0, "queueMs": 100, "delayMs": 0, "lossPct": 0.0, "cut": False, "blockUdp": False}

    def __init__(self, loop, seed):
        self.loop = loop
        self.conf = dict(self.DEFAULTS)
        self.rng = random.Random(seed)
        self.free_at = 0.0
        self.late_at = []
        self.resumed = asyncio.Event()
        self.resumed.set()
        self.counters = {"udp_packets": 0, "udp_bytes": 0, "tcp_bytes": 0,
                         "dropped": {"loss": 0, "queue": 0, "cut": 0, "block_udp": 0},
                         "late": {"max_ms": 0.0, "over_20ms": 0, "over_100ms": 0}}

    def set(self, conf):
        unknown = set(conf) - set(self.DEFAULTS)
        if unknown:
            raise ValueError(f"unknown link field(s): {sorted(unknown)}")
        for k, v in conf.items():
            if isinstance(self.DEFAULTS[k], bool):
                if not isinstance(v, bool):
                    raise ValueError(f"{k} must be true or false")
            elif not isinstance(v, (int, float)) or isinstance(v, bool) or v < 0:
                raise ValueError(f"{k} must be a number >= 0")
        self.conf.update(conf)
        if self.conf["cut"]:
            self.resumed.clear()
        else:
            self.resumed.set()

    def _serialize(self, size):
        """Reserve the bottleneck for `size` bytes; return when they leave it."""
        now = self.loop.time()
        rate = self.conf["rateKbps"]
        start = max(now, self.free_at)
        if rate <= 0:
            self.free_at = start
            return start
        self.free_at = start + size * 8 / (rate * 1000.0)
        return self.free_at

    def udp(self, data, deliver):
        """Schedule `deliver(data)` as the link would, or count why not."""
        c, drop = self.conf, self.counters["dropped"]
        if c["cut"]:
            drop["cut"] += 1
            return
        if c["blockUdp"]:
            drop["block_udp"] += 1
            return
        if c["lossPct"] > 0 and self.rng.random() * 100.0 < c["lossPct"]:
            drop["loss"] += 1
            return
        now = self.loop.time()
        if c["rateKbps"] > 0 and self.free_at - now > c["queueMs"] / 1000.0:
            drop["queue"] += 1
            return
        due = self._serialize(len(data)) + c["delayMs"] / 1000.0
        self.counters["udp_packets"] += 1
        self.counters["udp_bytes"] += len(data)
        self.loop.call_at(due, self._deliver_late, due, deliver, data)

    def _deliver_late(self, due, deliver, data):
        """Deliver, counting how late this process's scheduling made the datagram."""
        late_ms = (self.loop.time() - due) * 1000.0
        late = self.counters["late"]
        late["max_ms"] = round(max(late["max_ms"], late_ms), 1)
        late["over_20ms"] += late_ms > 20
        late["over_100ms"] += late_ms > 100
        if late_ms > 50 and len(self.late_at) < 100:
            self.late_at.append([round(time.time() * 1000), round(late_ms)])
        deliver(data)

    async def tcp(self, data):
        """When a TCP segment would arrive (waits out a cut; never drops)."""
        await self.resumed.wait()
        left = self.free_at - self.loop.time()
        if self.conf["rateKbps"] > 0 and left > self.conf["queueMs"] / 1000.0:
            # Keep the standing queue bounded: TCP backs off instead of overflowing it.
            await asyncio.sleep(left - self.conf["queueMs"] / 1000.0)
            await self.resumed.wait()
        due = self._serialize(len(data)) + self.conf["delayMs"] / 1000.0
        self.counters["tcp_bytes"] += len(data)
        return due


class UdpRelay:
    """Classroom-side UDP socket on the media port; one upstream socket per client address."""

    def __init__(self, loop, up, down, port):
        self.loop, self.up, self.down, self.port = loop, up, down, port
        self.flows = {}

    def attach(self, sock):
        self.sock = sock
        self.loop.add_reader(sock.fileno(), self._from_client)

    def _from_client(self):
        try:
            data, addr = self.sock.recvfrom(65535)
        except (BlockingIOError, InterruptedError, ConnectionRefusedError):
            return
        flow = self.flows.get(addr)
        if flow is None:
            flow = self._open_flow(addr)
        flow["seen"] = self.loop.time()
        self.up.udp(data, lambda d, s=flow["sock"]: _send(s, d, (LOCAL, self.port)))

    def _open_flow(self, addr):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setblocking(False)
        s.bind((LOCAL, 0))
        flow = {"sock": s, "seen": self.loop.time()}
        self.flows[addr] = flow
        self.loop.add_reader(s.fileno(), self._from_server, s, addr)
        return flow

    def _from_server(self, s, addr):
        try:
            data, _ = s.recvfrom(65535)
        except (BlockingIOError, InterruptedError, ConnectionRefusedError):
            return
        self.down.udp(data, lambda d: _send(self.sock, d, addr))

    def expire(self):
        now = self.loop.time()
        for addr, flow in list(self.flows.items()):
            if now - flow["seen"] > UDP_IDLE_S:
                self.loop.remove_reader(flow["sock"].fileno())
                flow["sock"].close()
                del self.flows[addr]


def _send(sock, data, addr):
    try:
        sock.sendto(data, addr)
    except OSError:
        pass


async def pump(reader, writer, link):
    """Copy one TCP direction through `link`, in order, segment by segment."""
    queue = asyncio.Queue()

    async def deliver():
        while True:
            item = await queue.get()
            if item is None:
                break
            due, data = item
            wait = due - asyncio.get_running_loop().time()
            if wait > 0:
                await asyncio.sleep(wait)
            writer.write(data)
            await writer.drain()

    sender = asyncio.create_task(deliver())
    try:
        while True:
            chunk = await reader.read(65536)
            if not chunk:
                break
            for i in range(0, len(chunk), TCP_SEGMENT):
                seg = chunk[i:i + TCP_SEGMENT]
                await queue.put((await link.tcp(seg), seg))
            while queue.qsize() > 64:
                await asyncio.sleep(0.005)
    except (ConnectionError, OSError):
        pass
    await queue.put(None)
    try:
        await sender
        if writer.can_write_eof():
            writer.write_eof()
    except (ConnectionError, OSError):
        writer.close()


def tcp_handler(up, down, port):
    async def handle(creader, cwriter):
        try:
            sreader, swriter = await asyncio.open_connection(LOCAL, port)
        except OSError:
            cwriter.close()
            return
        await asyncio.gather(pump(creader, swriter, up), pump(sreader, cwriter, down))
        for w in (cwriter, swriter):
            w.close()
    return handle


def listening(kind, port):
    s = socket.socket(socket.AF_INET, kind)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((LOCAL, port))
    if kind == socket.SOCK_STREAM:
        s.listen(128)
    s.setblocking(False)
    return s


def answer(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def control(line, links):
    msg = json.loads(line)
    if not isinstance(msg, dict):
        raise ValueError("a command is a JSON object")
    cmd = msg.get("cmd")
    if cmd == "set":
        for name in ("up", "down"):
            conf = msg.get("link", msg.get(name))
            if conf is not None:
                if not isinstance(conf, dict):
                    raise ValueError("link settings are a JSON object")
                links[name].set(conf)
        return {"id": msg.get("id"), "ok": True, "up": links["up"].conf, "down": links["down"].conf}
    if cmd == "counters":
        return {"id": msg.get("id"), "ok": True, "up": links["up"].counters, "down": links["down"].counters,
                "late_at": {"up": links["up"].late_at, "down": links["down"].late_at}}
    raise ValueError(f"unknown cmd {cmd!r}")


async def read_stdin(links):
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while True:
        line = await reader.readline()
        if not line:
            return
        if not line.strip():
            continue
        try:
            answer(control(line, links))
        except (ValueError, TypeError) as e:
            answer({"ok": False, "error": str(e)})


async def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--netns", required=True, help="path of the classroom's network namespace, e.g. /proc/PID/ns/net")
    p.add_argument("--tcp", type=int, action="append", default=[], help="TCP port to forward (repeatable)")
    p.add_argument("--udp", type=int, action="append", default=[], help="UDP port to forward (repeatable)")
    p.add_argument("--seed", type=int, default=1)
    a = p.parse_args()

    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    setns(a.netns)
    tcp_socks = [(port, listening(socket.SOCK_STREAM, port)) for port in a.tcp]
    udp_socks = [(port, listening(socket.SOCK_DGRAM, port)) for port in a.udp]
    setns(f"/proc/self/fd/{own}")
    os.close(own)

    loop = asyncio.get_running_loop()
    links = {"up": Link(loop, a.seed), "down": Link(loop, a.seed + 1)}
    servers = []
    for port, s in tcp_socks:
        servers.append(await asyncio.start_server(tcp_handler(links["up"], links["down"], port), sock=s))
    relays = []
    for port, s in udp_socks:
        r = UdpRelay(loop, links["up"], links["down"], port)
        r.attach(s)
        relays.append(r)
    answer({"ready": True, "tcp": a.tcp, "udp": a.udp})

    async def expire():
        while True:
            await asyncio.sleep(10)
            for r in relays:
                r.expire()
    expiry = asyncio.create_task(expire())
    await read_stdin(links)
    expiry.cancel()


if __name__ == "__main__":
    asyncio.run(main())
