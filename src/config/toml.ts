// The TOML subset of stevedore.conf: `key = value` (basic strings, integers, booleans,
// arrays of strings), `# comments`, `[section]` and `[[array.of.tables]]`.
// Collects every error with its line number instead of stopping at the first.

export type Scalar = string | number | boolean | string[];
export interface Entry { value: Scalar; line: number }
export type Table = Map<string, Entry>;
export interface Document {
  root: Table;
  /** `[section]` tables by name */
  sections: Map<string, { line: number; table: Table }>;
  /** `[[name]]` tables by name, in file order */
  arrays: Map<string, { line: number; table: Table }[]>;
}
export interface ParseError { line: number; message: string }

const BARE_KEY = /^[A-Za-z0-9_-]+$/;
const TABLE_NAME = /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/;
export const MAX_LINE = 64 * 1024;

export function parseToml(text: string): { doc: Document; errors: ParseError[] } {
  const doc: Document = { root: new Map(), sections: new Map(), arrays: new Map() };
  const errors: ParseError[] = [];
  let current = doc.root;
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const lineNo = i + 1;
    const raw = lines[i]!.replace(/\r$/, "");
    if (raw.length > MAX_LINE) {
      errors.push({ line: lineNo, message: "line too long" });
      continue;
    }
    const line = stripComment(raw).trim();
    if (line === "") continue;
    const fail = (message: string) => errors.push({ line: lineNo, message });
    if (line.startsWith("[[")) {
      const m = /^\[\[\s*([^\]]*?)\s*\]\]$/.exec(line);
      if (!m || !TABLE_NAME.test(m[1]!)) { fail(`invalid table header: ${line}`); current = new Map(); continue; }
      const list = doc.arrays.get(m[1]!) ?? [];
      current = new Map();
      list.push({ line: lineNo, table: current });
      doc.arrays.set(m[1]!, list);
      continue;
    }
    if (line.startsWith("[")) {
      const m = /^\[\s*([^\]]*?)\s*\]$/.exec(line);
      if (!m || !TABLE_NAME.test(m[1]!)) { fail(`invalid table header: ${line}`); current = new Map(); continue; }
      if (doc.sections.has(m[1]!)) { fail(`duplicate table [${m[1]}]`); current = new Map(); continue; }
      current = new Map();
      doc.sections.set(m[1]!, { line: lineNo, table: current });
      continue;
    }
    const eq = line.indexOf("=");
    if (eq < 0) { fail(`expected key = value`); continue; }
    let key = line.slice(0, eq).trim();
    if (key.startsWith('"') && key.endsWith('"') && key.length >= 2) key = key.slice(1, -1);
    if (!BARE_KEY.test(key)) { fail(`invalid key ${JSON.stringify(key)}`); continue; }
    const parsed = parseValue(line.slice(eq + 1).trim());
    if ("error" in parsed) { fail(`${key}: ${parsed.error}`); continue; }
    if (current.has(key)) { fail(`duplicate key ${key}`); continue; }
    current.set(key, { value: parsed.value, line: lineNo });
  }
  return { doc, errors };
}

/** Remove a `#` comment that is not inside a string. */
function stripComment(line: string): string {
  let inString = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (inString) {
      if (c === "\\") i++;
      else if (c === '"') inString = false;
    } else if (c === '"') inString = true;
    else if (c === "#") return line.slice(0, i);
  }
  return line;
}

function parseValue(src: string): { value: Scalar } | { error: string } {
  if (src === "") return { error: "missing value" };
  if (src === "true" || src === "false") return { value: src === "true" };
  if (/^[+-]?(0|[1-9](_?[0-9])*)$/.test(src)) {
    const n = Number(src.replace(/_/g, ""));
    if (!Number.isSafeInteger(n)) return { error: "integer out of range" };
    return { value: n };
  }
  if (src.startsWith('"')) {
    const s = readString(src, 0);
    if ("error" in s) return s;
    if (src.slice(s.end).trim() !== "") return { error: "unexpected text after string" };
    return { value: s.value };
  }
  if (src.startsWith("[")) return parseArray(src);
  return { error: `unsupported value ${JSON.stringify(src.slice(0, 40))} (strings must be "quoted")` };
}

function parseArray(src: string): { value: string[] } | { error: string } {
  const out: string[] = [];
  let i = 1;
  const skip = () => { while (i < src.length && (src[i] === " " || src[i] === "\t")) i++; };
  skip();
  if (src[i] === "]") return src.slice(i + 1).trim() === "" ? { value: out } : { error: "unexpected text after array" };
  for (;;) {
    skip();
    if (src[i] === "]") break; // trailing comma
    if (src[i] !== '"') return { error: "arrays may only hold strings" };
    const s = readString(src, i);
    if ("error" in s) return s;
    out.push(s.value);
    i = s.end;
    skip();
    if (src[i] === ",") { i++; continue; }
    if (src[i] === "]") break;
    return { error: "expected , or ] in array (arrays must be on one line)" };
  }
  return src.slice(i + 1).trim() === "" ? { value: out } : { error: "unexpected text after array" };
}

const ESCAPES: Record<string, string> = { b: "\b", t: "\t", n: "\n", f: "\f", r: "\r", '"': '"', "\\": "\\" };

function readString(src: string, start: number): { value: string; end: number } | { error: string } {
  let out = "";
  for (let i = start + 1; i < src.length; i++) {
    const c = src[i]!;
    if (c === '"') return { value: out, end: i + 1 };
    if (c === "\\") {
      const e = src[i + 1];
      if (e === undefined) break;
      if (e === "u" || e === "U") {
        const len = e === "u" ? 4 : 8;
        const hex = src.slice(i + 2, i + 2 + len);
        if (!/^[0-9a-fA-F]+$/.test(hex) || hex.length !== len) return { error: "invalid unicode escape" };
        const cp = parseInt(hex, 16);
        if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return { error: "invalid unicode escape" };
        out += String.fromCodePoint(cp);
        i += 1 + len;
        continue;
      }
      const rep = ESCAPES[e];
      if (rep === undefined) return { error: `invalid escape \\${e}` };
      out += rep;
      i++;
      continue;
    }
    if (c < " " && c !== "\t") return { error: "control character in string" };
    out += c;
  }
  return { error: "unterminated string" };
}
