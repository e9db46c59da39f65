// A strict parser of the Prometheus text exposition format 0.0.4 (test-only): every line checked,
// families contiguous, TYPE before samples, label escapes, histogram buckets cumulative to +Inf.
export interface PromSample {
  name: string;
  labels: Record<string, string>;
  value: number;
}
export interface PromFamily {
  name: string;
  type: "counter" | "gauge" | "histogram" | "summary" | "untyped";
  help?: string;
  samples: PromSample[];
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*/;

function parseValue(s: string, where: string): number {
  if (s === "+Inf") return Infinity;
  if (s === "-Inf") return -Infinity;
  if (s === "NaN") return NaN;
  if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(s)) throw new Error(`${where}: bad value ${JSON.stringify(s)}`);
  return Number(s);
}

function parseLabels(s: string, where: string): [Record<string, string>, string] {
  const labels: Record<string, string> = {};
  let rest = s.slice(1);
  for (;;) {
    if (rest.startsWith("}")) return [labels, rest.slice(1)];
    const m = LABEL.exec(rest);
    if (!m) throw new Error(`${where}: bad label name`);
    const name = m[0];
    rest = rest.slice(name.length);
    if (!rest.startsWith('="')) throw new Error(`${where}: expected =" after ${name}`);
    rest = rest.slice(2);
    let value = "";
    for (;;) {
      const c = rest[0];
      if (c === undefined) throw new Error(`${where}: unterminated label value`);
      if (c === "\n") throw new Error(`${where}: raw line feed in label value`);
      rest = rest.slice(1);
      if (c === '"') break;
      if (c === "\\") {
        const e = rest[0];
        rest = rest.slice(1);
        if (e === "\\") value += "\\";
        else if (e === '"') value += '"';
        else if (e === "n") value += "\n";
        else throw new Error(`${where}: bad escape \\${e}`);
      } else value += c;
    }
    if (name in labels) throw new Error(`${where}: label ${name} twice`);
    labels[name] = value;
    if (rest.startsWith(",")) rest = rest.slice(1);
    else if (!rest.startsWith("}")) throw new Error(`${where}: expected , or }`);
  }
}

function familyOf(sample: string, families: Map<string, PromFamily>): PromFamily | undefined {
  if (families.has(sample)) return families.get(sample);
  for (const suffix of ["_bucket", "_sum", "_count"])
    if (sample.endsWith(suffix)) {
      const f = families.get(sample.slice(0, -suffix.length));
      if (f && (f.type === "histogram" || f.type === "summary")) return f;
    }
  return undefined;
}

/** Parse strictly; throws with the line number on the first violation. */
export function parseExposition(text: string): Map<string, PromFamily> {
  if (!text.endsWith("\n")) throw new Error("exposition must end with a line feed");
  const families = new Map<string, PromFamily>();
  const finished = new Set<string>();
  let current: PromFamily | undefined;
  const seen = new Set<string>();
  const lines = text.slice(0, -1).split("\n");
  lines.forEach((line, i) => {
    const where = `line ${i + 1}`;
    if (line === "") throw new Error(`${where}: empty line`);
    const switchTo = (f: PromFamily) => {
      if (current === f) return;
      if (current) finished.add(current.name);
      if (finished.has(f.name)) throw new Error(`${where}: family ${f.name} is not contiguous`);
      current = f;
    };
    if (line.startsWith("#")) {
      const m = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$/.exec(line);
      if (!m) {
        if (/^# (HELP|TYPE)\b/.test(line)) throw new Error(`${where}: malformed ${line}`);
        return; // a plain comment
      }
      const [, kind, name, rest] = m as unknown as [string, string, string, string];
      let f = families.get(name);
      if (!f) families.set(name, (f = { name, type: "untyped", samples: [] }));
      switchTo(f);
      if (kind === "HELP") {
        if (f.help !== undefined) throw new Error(`${where}: second HELP for ${name}`);
        if (/\\[^\\n]/.test(rest.replace(/\\\\/g, ""))) throw new Error(`${where}: bad escape in HELP`);
        f.help = rest.replace(/\\(\\|n)/g, (_, e: string) => (e === "n" ? "\n" : "\\"));
      } else {
        if (!["counter", "gauge", "histogram", "summary", "untyped"].includes(rest)) throw new Error(`${where}: bad type ${rest}`);
        if (f.samples.length) throw new Error(`${where}: TYPE after samples of ${name}`);
        if ((f as { typed?: boolean }).typed) throw new Error(`${where}: second TYPE for ${name}`);
        (f as { typed?: boolean }).typed = true;
        f.type = rest as PromFamily["type"];
      }
      return;
    }
    const nm = NAME.exec(line);
    if (!nm) throw new Error(`${where}: bad metric name`);
    const name = nm[0];
    let rest = line.slice(name.length);
    let labels: Record<string, string> = {};
    if (rest.startsWith("{")) [labels, rest] = parseLabels(rest, where);
    if (!rest.startsWith(" ")) throw new Error(`${where}: expected a space before the value`);
    const parts = rest.slice(1).split(" ");
    if (parts.length > 2 || parts.some((p) => p === "")) throw new Error(`${where}: bad value/timestamp`);
    const value = parseValue(parts[0]!, where);
    if (parts[1] !== undefined && !/^-?\d+$/.test(parts[1])) throw new Error(`${where}: bad timestamp`);
    let f = familyOf(name, families);
    if (!f) families.set(name, (f = { name, type: "untyped", samples: [] }));
    switchTo(f);
    const key = name + JSON.stringify(Object.entries(labels).sort());
    if (seen.has(key)) throw new Error(`${where}: duplicate series ${key}`);
    seen.add(key);
    if (f.type === "counter" && (value < 0 || Number.isNaN(value))) throw new Error(`${where}: counter ${name} negative`);
    if (f.type === "histogram" && name.endsWith("_bucket") && !("le" in labels)) throw new Error(`${where}: bucket without le`);
    f.samples.push({ name, labels, value });
  });
  for (const f of families.values()) if (f.type === "histogram") checkHistogram(f);
  return families;
}

function checkHistogram(f: PromFamily): void {
  const groups = new Map<string, PromSample[]>();
  for (const s of f.samples) {
    const { le: _le, ...rest } = s.labels;
    const k = JSON.stringify(Object.entries(rest).sort());
    let g = groups.get(k);
    if (!g) groups.set(k, (g = []));
    g.push(s);
  }
  for (const [k, g] of groups) {
    const buckets = g.filter((s) => s.name === `${f.name}_bucket`);
    const count = g.find((s) => s.name === `${f.name}_count`);
    const sum = g.find((s) => s.name === `${f.name}_sum`);
    if (!count || !sum) throw new Error(`${f.name}${k}: _count or _sum missing`);
    let prevLe = -Infinity;
    let prev = 0;
    for (const b of buckets) {
      const le = parseValue(b.labels.le!, f.name);
      if (!(le > prevLe)) throw new Error(`${f.name}${k}: le not increasing`);
      if (b.value < prev) throw new Error(`${f.name}${k}: buckets not cumulative`);
      prevLe = le;
      prev = b.value;
    }
    if (prevLe !== Infinity) throw new Error(`${f.name}${k}: no +Inf bucket`);
    if (prev !== count.value) throw new Error(`${f.name}${k}: +Inf bucket ${prev} != _count ${count.value}`);
  }
}

/** The value of one series (labels must match exactly those given, in any order). */
export function sampleValue(fams: Map<string, PromFamily>, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const f of fams.values())
    for (const s of f.samples)
      if (s.name === name && Object.keys(s.labels).length === Object.keys(labels).length && Object.entries(labels).every(([k, v]) => s.labels[k] === v)) return s.value;
  return undefined;
}
