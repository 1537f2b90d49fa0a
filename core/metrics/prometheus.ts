/** Prometheus text exposition of gateway state, built fresh on each scrape. */
export interface MetricSample {
  name: string;
  help: string;
  type: 'counter' | 'gauge';
  values: Array<{ labels?: Record<string, string>; value: number }>;
}

export function renderPrometheus(samples: readonly MetricSample[]): string {
  let out = '';
  for (const s of samples) {
    out += `# HELP ${s.name} ${s.help}\n# TYPE ${s.name} ${s.type}\n`;
    for (const v of s.values) {
      const labels = v.labels && Object.keys(v.labels).length
        ? `{${Object.entries(v.labels).map(([k, val]) => `${k}="${val.replace(/["\\\n]/g, (ch) => (ch === '\n' ? '\\n' : `\\${ch}`))}"`).join(',')}}`
        : '';
      out += `${s.name}${labels} ${Number.isFinite(v.value) ? v.value : 0}\n`;
    }
  }
  return out;
}
