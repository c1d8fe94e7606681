// Network emulation for one impaired classroom (tests/netem/netem.py does the work).
//
// `startImpairedLink(server)` creates a network namespace for the classroom (held by an
// `unshare -n sleep infinity`, loopback up), and starts the emulator: it listens on
// 127.0.0.1 inside that namespace on the server's HTTP port (TCP), media port (UDP) and
// media port over TCP (ICE-TCP), and forwards to the server on 127.0.0.1 of the test's
// namespace through a bottleneck per direction. A Chromium launched with the returned
// `executablePath` (a wrapper script doing `nsenter --net=...`) sees the server at the
// usual URL, only through the link. Every packet stays on 127.0.0.1 inside the
// namespaces the test created. `close()` stops the emulator and the namespace holder.
//
// Link settings (both directions unless `setLink({up, down})`): rateKbps (0 = unlimited),
// queueMs (bottleneck queue, default 100 ms, tail drop), delayMs (one way: RTT 80 ms is
// 40 each way), lossPct (random UDP loss, seeded), cut (nothing passes; TCP stalls and
// resumes), blockUdp (only TCP passes).

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { launchBrowser } from './browser.js';
import { REPO_ROOT, outPath } from './server.js';
import { sleep } from './wait.js';

const NETEM = path.join(REPO_ROOT, 'tests/netem/netem.py');
const PROBE = path.join(REPO_ROOT, 'tests/netem/probe.py');
const CHROMIUM = process.env.CHROMIUM_BIN || '/usr/bin/chromium';

const running = new Set();
process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

function track(child) {
  running.add(child);
  child.once('exit', () => running.delete(child));
  return child;
}

/** Run a command to completion; resolve with stdout, reject with stderr on failure. */
export function run(cmd, args) {
  return new Promise((resolve, reject) => {
    const child = track(spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] }));
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { err += d; });
    child.once('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`${cmd} ${args.join(' ')} exited ${code}: ${err}`))));
  });
}

/** A new network namespace with loopback up, held by a sleeping process. */
export async function createNamespace() {
  const holder = track(spawn('unshare', ['-n', 'sleep', 'infinity'], { stdio: 'ignore' }));
  const netns = `/proc/${holder.pid}/ns/net`;
  const own = fs.readlinkSync('/proc/self/ns/net');
  for (let i = 0; i < 100 && fs.readlinkSync(netns) === own; i++) await sleep(20);
  await run('nsenter', [`--net=${netns}`, '--', 'ip', 'link', 'set', 'lo', 'up']);
  return { netns, close: () => holder.kill('SIGKILL') };
}

/** Run `cmd args` inside the namespace (e.g. the UDP probe). */
export const runIn = (netns, cmd, args) => run('nsenter', [`--net=${netns}`, '--', cmd, ...args]);

/**
 * Start the emulator for `tcpPorts` and `udpPorts` between a new namespace and ours.
 * Returns { netns, executablePath, setLink(conf), counters(), close() }.
 */
export async function startLink({ tcpPorts = [], udpPorts = [], seed = 1, logName = 'netem' } = {}) {
  const ns = await createNamespace();
  const args = [NETEM, '--netns', ns.netns, '--seed', String(seed)];
  for (const p of tcpPorts) args.push('--tcp', String(p));
  for (const p of udpPorts) args.push('--udp', String(p));
  const log = fs.openSync(outPath(`${logName}.netem.log`), 'a');
  const child = track(spawn('python3', args, { stdio: ['pipe', 'pipe', log] }));
  fs.closeSync(log);
  const lines = readline.createInterface({ input: child.stdout });
  const waiting = [];
  let exited = null;
  lines.on('line', (l) => waiting.shift()?.resolve(l));
  child.once('exit', (c) => {
    exited = new Error(`netem exited (${c}); see out/${logName}.netem.log`);
    for (const w of waiting.splice(0)) w.reject(exited);
  });
  const next = () => new Promise((resolve, reject) => (exited ? reject(exited) : waiting.push({ resolve, reject })));
  const ready = JSON.parse(await next());
  if (!ready.ready) throw new Error(`netem did not start: ${JSON.stringify(ready)}`);
  let id = 0;
  const call = async (msg) => {
    const reply = next();
    child.stdin.write(`${JSON.stringify({ id: ++id, ...msg })}\n`);
    const r = JSON.parse(await reply);
    if (!r.ok) throw new Error(`netem: ${r.error}`);
    return r;
  };
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'classcast-netns-'));
  const executablePath = path.join(dir, 'chromium-in-netns');
  fs.writeFileSync(executablePath, `#!/bin/sh\nexec nsenter --net=${ns.netns} -- ${CHROMIUM} "$@"\n`, { mode: 0o755 });
  return {
    netns: ns.netns,
    executablePath,
    /** Set both directions (`{rateKbps, ...}`) or each (`{up: {...}, down: {...}}`). */
    setLink(conf) {
      return conf.up || conf.down ? call({ cmd: 'set', up: conf.up, down: conf.down }) : call({ cmd: 'set', link: conf });
    },
    /**
     * {up, down}: udp_packets, udp_bytes, tcp_bytes, dropped: {loss, queue, cut, block_udp},
     * late: {max_ms, over_20ms, over_100ms} (datagrams the emulator itself released late);
     * late_at: {up, down}: [epoch ms, ms late] of the first 100 datagrams over 50 ms late.
     */
    async counters() {
      const r = await call({ cmd: 'counters' });
      return { up: r.up, down: r.down, late_at: r.late_at };
    },
    async close() {
      child.stdin.end();
      child.kill('SIGTERM');
      ns.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * An impaired classroom browser for `server` (from startServer): its own namespace, the
 * server's HTTP port, media port (UDP) and media port over TCP forwarded through the link.
 * Returns { browser (as launchBrowser), link (as startLink), close() }.
 */
export async function startImpairedBrowser(server, label, logName, { link: conf, seed } = {}) {
  const link = await startLink({ tcpPorts: [server.httpPort, server.mediaPort], udpPorts: [server.mediaPort], seed, logName });
  if (conf) await link.setLink(conf);
  const browser = await launchBrowser(label, logName, { executablePath: link.executablePath });
  return {
    browser,
    link,
    setLink: (c) => link.setLink(c),
    counters: () => link.counters(),
    async close() {
      await browser.close();
      await link.close();
    },
  };
}

/** Run the UDP probe in `netns` against 127.0.0.1:port; returns its JSON result. */
export async function probeUdp(netns, port, { kbps = 200, size = 1000, seconds = 3 } = {}) {
  const out = await runIn(netns, 'python3', [PROBE, 'send', String(port), '--kbps', String(kbps), '--size', String(size), '--seconds', String(seconds)]);
  return JSON.parse(out.trim().split('\n').at(-1));
}

/** A UDP echo server on 127.0.0.1:port in our namespace; returns { close() }. */
export async function startEcho(port) {
  const child = track(spawn('python3', [PROBE, 'echo', String(port)], { stdio: ['ignore', 'pipe', 'inherit'] }));
  await new Promise((resolve) => child.stdout.once('data', resolve));
  return { close: () => child.kill('SIGKILL') };
}
