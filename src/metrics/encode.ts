// The Prometheus text exposition format, version 0.0.4: HELP and TYPE lines, then the samples;
// histograms as cumulative _bucket{le=...} series ending at +Inf, then _sum and _count.
import { CounterFamily, GaugeFamily, HistogramFamily, type Family, type Registry, type Cell, type HistogramCell } from "./registry.js";

export const CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/** HELP text: backslash and line feed escaped */
export function escapeHelp(s: string): string {
  return s.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
}

/** label values: backslash, double quote and line feed escaped */
export function escapeLabel(s: string): string {
  return s.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

export function formatValue(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (v === Infinity) return "+Inf";
  if (v === -Infinity) return "-Inf";
  return String(v);
}

function labelSet(names: readonly string[], values: readonly string[], extra?: string): string {
  const parts: string[] = [];
  for (let i = 0; i < names.length; i++) parts.push(`${names[i]}="${escapeLabel(values[i] ?? "")}"`);
  if (extra) parts.push(extra);
  return parts.length ? `{${parts.join(",")}}` : "";
}

function encodeFamily(f: Family<unknown>, out: string[]): void {
  const lines: string[] = [];
  if (f instanceof HistogramFamily) {
    for (const { labels, cell } of (f as HistogramFamily).children.values()) {
      const h = cell as HistogramCell;
      let cumulative = 0;
      for (let i = 0; i < h.buckets.length; i++) {
        cumulative += h.counts[i]!;
        lines.push(`${f.name}_bucket${labelSet(f.labelNames, labels, `le="${formatValue(h.buckets[i]!)}"`)} ${cumulative}`);
      }
      lines.push(`${f.name}_bucket${labelSet(f.labelNames, labels, 'le="+Inf"')} ${h.count}`);
      lines.push(`${f.name}_sum${labelSet(f.labelNames, labels)} ${formatValue(h.sum)}`);
      lines.push(`${f.name}_count${labelSet(f.labelNames, labels)} ${h.count}`);
    }
  } else {
    const seen = new Set<string>();
    if (f instanceof GaugeFamily && f.collect)
      for (const [labels, value] of f.collect()) {
        const ls = labelSet(f.labelNames, labels);
        if (seen.has(ls)) continue;
        seen.add(ls);
        lines.push(`${f.name}${ls} ${formatValue(value)}`);
      }
    for (const { labels, cell } of (f as CounterFamily | GaugeFamily).children.values()) {
      const ls = labelSet(f.labelNames, labels);
      if (seen.has(ls)) continue;
      seen.add(ls);
      lines.push(`${f.name}${ls} ${formatValue((cell as Cell).value)}`);
    }
  }
  out.push(`# HELP ${f.name} ${escapeHelp(f.help)}`, `# TYPE ${f.name} ${f.type}`, ...lines);
}

/** The whole registry as one exposition (collect functions run now). */
export function encode(registry: Registry): string {
  registry.refresh();
  const out: string[] = [];
  for (const f of registry.families.values()) encodeFamily(f, out);
  return out.join("\n") + "\n";
}
