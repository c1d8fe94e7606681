// Self-test of the network emulator (tests/netem, lib/netem.js): a UDP echo in the test's
// namespace, a probe in the emulated classroom's namespace; the probe's measured round
// trip, loss and throughput must match what the link was set to (with tolerances for a
// loaded 2-core machine). Figures are printed.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { freeUdpPort, freeTcpPort } from './lib/server.js';
import { probeUdp, startEcho, startLink, runIn } from './lib/netem.js';
import { sleep } from './lib/wait.js';

test('the emulator imposes delay, loss, rate, cut and UDP block on a UDP echo', async () => {
  const port = await freeUdpPort();
  const echo = await startEcho(port);
  const link = await startLink({ udpPorts: [port], tcpPorts: [await freeTcpPort()], seed: 7, logName: 'netem-selftest' });
  try {
    const clean = await probeUdp(link.netns, port, { kbps: 200, seconds: 2 });
    console.log('clean', JSON.stringify(clean));
    assert.equal(clean.loss, 0, 'no loss on a clean link');

    await link.setLink({ delayMs: 40 });
    const delayed = await probeUdp(link.netns, port, { kbps: 200, seconds: 3 });
    console.log('delay 40 ms each way', JSON.stringify(delayed));
    assert.ok(delayed.rtt_min_ms >= 79, `RTT at least 80 ms (min ${delayed.rtt_min_ms})`);
    assert.ok(delayed.rtt_median_ms < 80 + 25, `RTT about 80 ms (median ${delayed.rtt_median_ms})`);

    await link.setLink({ delayMs: 0, lossPct: 10 });
    const lossy = await probeUdp(link.netns, port, { kbps: 800, size: 200, seconds: 3 });
    console.log('loss 10 % each way', JSON.stringify(lossy));
    // Round trip through two lossy directions: 1 - 0.9^2 = 19 %; 1500 probes.
    assert.ok(lossy.loss > 0.14 && lossy.loss < 0.24, `round-trip loss about 19 % (${lossy.loss})`);

    // The bottleneck upstream only, so one queue shapes the round trip.
    await link.setLink({ up: { lossPct: 0, rateKbps: 400, queueMs: 100 }, down: { lossPct: 0 } });
    const limited = await probeUdp(link.netns, port, { kbps: 1000, seconds: 4 });
    console.log('rate 400 kbit/s upstream, offered 1000', JSON.stringify(limited));
    assert.ok(limited.echo_kbps > 400 * 0.85 && limited.echo_kbps < 400 * 1.1, `echo throughput about 400 kbit/s (${limited.echo_kbps})`);
    assert.ok(limited.loss > 0.5, `the excess is dropped at the bottleneck (${limited.loss})`);
    // 100 ms of queue + 20 ms to serialize one datagram; an unbounded queue would reach seconds.
    assert.ok(limited.rtt_p90_ms < 200, `the queue stays bounded (p90 RTT ${limited.rtt_p90_ms} ms)`);

    await link.setLink({ rateKbps: 0, cut: true });
    const cut = await probeUdp(link.netns, port, { kbps: 100, seconds: 1 });
    console.log('cut', JSON.stringify(cut));
    assert.equal(cut.received, 0);

    await link.setLink({ cut: false, blockUdp: true });
    const blocked = await probeUdp(link.netns, port, { kbps: 100, seconds: 1 });
    assert.equal(blocked.received, 0);
    await link.setLink({ blockUdp: false });
    const back = await probeUdp(link.netns, port, { kbps: 100, seconds: 1 });
    assert.equal(back.loss, 0, 'restored');

    const c = await link.counters();
    console.log('counters', JSON.stringify(c));
    assert.ok(c.up.dropped.loss > 0 && c.down.dropped.loss > 0);
    assert.ok(c.up.dropped.queue > 0, 'queue drops counted upstream');
    assert.ok(c.up.dropped.cut > 0 && c.up.dropped.block_udp > 0);
    await assert.rejects(link.setLink({ rateKbps: -1 }), /rateKbps/);
    await assert.rejects(runIn(link.netns, 'python3', ['-c', `import socket; s=socket.create_connection(("127.0.0.1", ${port}), timeout=1)`]));
  } finally {
    await link.close();
    echo.close();
  }
});

test('TCP through the emulator: delayed, stalled by a cut, resumed in order', async () => {
  const port = await freeTcpPort();
  const { createServer } = await import('node:net');
  const srv = createServer((s) => s.pipe(s));
  await new Promise((r) => srv.listen(port, '127.0.0.1', r));
  const link = await startLink({ tcpPorts: [port], seed: 3, logName: 'netem-selftest' });
  try {
    await link.setLink({ delayMs: 40, rateKbps: 800 });
    const script = `
import socket, time
s = socket.create_connection(("127.0.0.1", ${port}))
t = time.monotonic(); s.sendall(b"x"); s.recv(1); rtt = (time.monotonic() - t) * 1000
data = bytes(range(256)) * 400
t = time.monotonic(); s.sendall(data); got = b""
while len(got) < len(data): got += s.recv(65536)
print(round(rtt, 1), round(len(data) * 8 / (time.monotonic() - t) / 1000), got == data)`;
    const [rtt, kbps, same] = (await runIn(link.netns, 'python3', ['-c', script])).trim().split(' ');
    console.log(`tcp: rtt ${rtt} ms, echo ${kbps} kbit/s, intact ${same}`);
    assert.ok(Number(rtt) >= 79 && Number(rtt) < 130, `TCP RTT about 80 ms (${rtt})`);
    assert.ok(Number(kbps) < 800 * 1.1, `TCP limited to the rate (${kbps} kbit/s)`);
    assert.equal(same, 'True');

    await link.setLink({ cut: true });
    const stalled = runIn(link.netns, 'python3', ['-c', `
import socket, time
s = socket.create_connection(("127.0.0.1", ${port}))
t = time.monotonic(); s.sendall(b"hello"); got = b""
while len(got) < 5: got += s.recv(5)
print(round((time.monotonic() - t) * 1000), got == b"hello")`]);
    await sleep(1500);
    await link.setLink({ cut: false });
    const [waited, intact] = (await stalled).trim().split(' ');
    console.log(`tcp through a 1.5 s cut: answered after ${waited} ms, intact ${intact}`);
    assert.ok(Number(waited) >= 1000, `nothing passed during the cut (python starts within 0.5 s) (${waited} ms)`);
    assert.equal(intact, 'True');
  } finally {
    await link.close();
    srv.close();
  }
});
