// Small timing helpers shared by the e2e tests: sleep and polling with a deadline.

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Call `fn` (async) every `intervalMs` until it returns a truthy value; return that value.
 * Throws after `timeoutMs` with `what` and the last value seen (or the last error);
 * at once if `fn` throws an error marked `fatal`.
 */
export async function poll(fn, { timeoutMs = 10000, intervalMs = 200, what = 'condition' } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      if (e.fatal) throw e;
      last = `error: ${e.message}`;
    }
    if (Date.now() >= deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last: ${JSON.stringify(last)}`);
    }
    await sleep(intervalMs);
  }
}

/** Median of a list of numbers. */
export function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}
