// Run the Python aiortc peers of tests/peers/ from Node tests: start the WHIP publisher,
// follow its status lines (POST, LOCATION, CONNECTED, DELETE), stop it with SIGTERM.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { REPO_ROOT, outPath } from './server.js';
import { poll } from './wait.js';

const PEERS_DIR = path.join(REPO_ROOT, 'tests/peers');
const PYTHON = process.env.CLASSCAST_PEERS_PYTHON || path.join(PEERS_DIR, '.venv/bin/python');

/**
 * Start tests/peers/whip_publish.py against `server` for class `classId` with `token`.
 * Returns { lines, waitLine(prefix, ms) → line, stop() → exit code, child }.
 */
export function startWhipPublisher(server, classId, token, { codec = 'h264', logName = 'whip_publish' } = {}) {
  if (!fs.existsSync(PYTHON)) throw new Error(`${PYTHON} missing: run scripts/install-deps.sh test`);
  const log = fs.createWriteStream(outPath(`${logName}.log`), { flags: 'a' });
  const child = spawn(PYTHON, ['whip_publish.py', '--server', server.url, '--class', classId, '--codec', codec], {
    cwd: PEERS_DIR,
    env: { ...process.env, CLASSCAST_TOKEN: token, PYTHONUNBUFFERED: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines = [];
  let buf = '';
  child.stdout.on('data', (d) => {
    log.write(d);
    buf += d;
    const parts = buf.split('\n');
    buf = parts.pop();
    lines.push(...parts);
  });
  child.stderr.on('data', (d) => log.write(d));
  const exited = new Promise((resolve) => child.once('exit', (code, sig) => resolve(code ?? sig)));
  const alive = () => child.exitCode === null && child.signalCode === null;
  process.on('exit', () => alive() && child.kill('SIGKILL'));

  return {
    child,
    lines,
    /** Wait for a stdout line starting with `prefix`; fails early if the publisher exits. */
    async waitLine(prefix, timeoutMs = 20000) {
      try {
        return await poll(
          () => {
            const line = lines.find((l) => l.startsWith(prefix));
            if (!line && !alive()) throw Object.assign(new Error(`publisher exited (${child.exitCode})`), { fatal: true });
            return line;
          },
          { timeoutMs, intervalMs: 100, what: `publisher line "${prefix}…"` },
        );
      } catch (e) {
        throw new Error(`${e.message}; publisher output: ${lines.join(' | ')}`);
      }
    },
    /** SIGTERM (the publisher then DELETEs its session); resolves to its exit code. */
    async stop() {
      if (alive()) child.kill('SIGTERM');
      const code = await exited;
      log.end();
      return code;
    },
  };
}
