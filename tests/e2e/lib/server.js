// Start and stop a classcast server for one test file.
//
// The server runs `target/release/classcast serve` (override with CLASSCAST_BIN) on
// 127.0.0.1 with free ports, a fresh temp data dir and random admin key / token secret.
// Its stdout+stderr go to tests/e2e/out/<name>.log (appended across restarts).
// `restart()` stops it and starts it again with the same data dir, ports and secrets.

import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { sleep } from './wait.js';

export const E2E_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const REPO_ROOT = path.resolve(E2E_DIR, '../..');
export const OUT_DIR = path.join(E2E_DIR, 'out');

const BIN = process.env.CLASSCAST_BIN || path.join(REPO_ROOT, 'target/release/classcast');

/** A free TCP port on 127.0.0.1 (bound then released). */
export function freeTcpPort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** A free UDP port on 127.0.0.1 (bound then released). */
export function freeUdpPort() {
  return new Promise((resolve, reject) => {
    const sock = dgram.createSocket('udp4');
    sock.once('error', reject);
    sock.bind(0, '127.0.0.1', () => {
      const { port } = sock.address();
      sock.close(() => resolve(port));
    });
  });
}

/** Path of a per-test output file in tests/e2e/out/. */
export function outPath(file) {
  fs.mkdirSync(OUT_DIR, { recursive: true });
  return path.join(OUT_DIR, file);
}

/** Last `n` lines of a file, for error messages. */
export function tailFile(file, n = 40) {
  try {
    return fs.readFileSync(file, 'utf8').split('\n').slice(-n).join('\n');
  } catch {
    return '';
  }
}

const running = new Set();
process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

/**
 * Start a server. `name` names the log file (out/<name>.log); `args` are extra flags
 * (e.g. ['--fault-injection', 'true']); `dataDir` replaces the fresh temp data dir.
 * Returns { url, wsUrl, httpPort, mediaPort, adminKey, tokenSecret, dataDir, logPath,
 *           restart(), stop(), kill9(), alive() }.
 */
export async function startServer(name, { args: extraArgs = [], dataDir } = {}) {
  if (!fs.existsSync(BIN)) {
    throw new Error(`server binary not found: ${BIN} (run \`cargo build --release\` or set CLASSCAST_BIN)`);
  }
  const httpPort = await freeTcpPort();
  const mediaPort = await freeUdpPort();
  const s = {
    name,
    httpPort,
    mediaPort,
    url: `http://127.0.0.1:${httpPort}`,
    wsUrl: `ws://127.0.0.1:${httpPort}/ws`,
    adminKey: randomBytes(18).toString('hex'),
    tokenSecret: randomBytes(32).toString('hex'),
    dataDir: dataDir || fs.mkdtempSync(path.join(os.tmpdir(), `classcast-${name}-`)),
    logPath: outPath(`${name}.log`),
    child: null,
  };
  fs.writeFileSync(s.logPath, '');

  s.alive = () => s.child !== null && s.child.exitCode === null && s.child.signalCode === null;

  s.start = async () => {
    const args = [
      'serve',
      '--http', `127.0.0.1:${s.httpPort}`,
      '--media-port', String(s.mediaPort),
      '--advertise', '127.0.0.1',
      '--data-dir', s.dataDir,
      '--admin-key', s.adminKey,
      '--token-secret', s.tokenSecret,
      ...extraArgs,
    ];
    const log = fs.openSync(s.logPath, 'a');
    fs.writeSync(log, `\n=== ${new Date().toISOString()} ${BIN} ${args.join(' ')}\n`);
    const child = spawn(BIN, args, {
      cwd: REPO_ROOT,
      stdio: ['ignore', log, log],
      env: { RUST_LOG: 'info', RUST_BACKTRACE: '1', ...process.env },
    });
    fs.closeSync(log);
    s.child = child;
    running.add(child);
    child.once('exit', () => running.delete(child));
    await waitHealthy(s);
  };

  s.stop = async () => {
    const child = s.child;
    if (!child || !s.alive()) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    const timeout = sleep(5000).then(() => 'timeout');
    if ((await Promise.race([exited, timeout])) === 'timeout') {
      child.kill('SIGKILL');
      await exited;
    }
  };

  /** Kill the server the hard way (no shutdown of any kind), like a power cut. */
  s.kill9 = async () => {
    const child = s.child;
    if (!child || !s.alive()) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
  };

  s.restart = async () => {
    await s.stop();
    await s.start();
  };

  await s.start();
  return s;
}

async function waitHealthy(s, timeoutMs = 30000) {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer';
  while (Date.now() < deadline) {
    if (!s.alive()) {
      throw new Error(`server exited (code ${s.child.exitCode}, signal ${s.child.signalCode}) before /healthz; log tail:\n${tailFile(s.logPath)}`);
    }
    try {
      const res = await fetch(`${s.url}/healthz`);
      if (res.status === 200) return;
      last = `HTTP ${res.status}`;
    } catch (e) {
      last = e.cause?.code || e.message;
    }
    await sleep(100);
  }
  throw new Error(`server not healthy after ${timeoutMs} ms (${last}); log tail:\n${tailFile(s.logPath)}`);
}
