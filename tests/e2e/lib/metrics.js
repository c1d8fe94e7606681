// Read the server's Prometheus metrics (/metrics) in tests.

/** Fetch /metrics and return its samples: [{name, labels: {k: v}, value}]. */
export async function scrape(server) {
  const res = await fetch(`${server.url}/metrics`);
  if (res.status !== 200) throw new Error(`/metrics → ${res.status}`);
  const samples = [];
  for (const line of (await res.text()).split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{([^}]*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels = Object.fromEntries([...(m[2] || '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((x) => [x[1], x[2]]));
    samples.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return samples;
}

/** Sum of all samples named `name`, and the value per `label`. */
export async function sumMetric(server, name, label) {
  const per = {};
  let total = 0;
  for (const s of await scrape(server)) {
    if (s.name !== name) continue;
    total += s.value;
    const k = s.labels[label] ?? '';
    per[k] = (per[k] ?? 0) + s.value;
  }
  return { total, per };
}
