// The TOML subset of stevedore.conf: `key = value` (basic "..." and literal '...' strings,
// integers, booleans, one-line arrays of strings), `# comments`, `[section]` and
// `[[array.of.tables]]`. Collects every error with its line number instead of stopping at
// the first (at most MAX_ERRORS, so a garbage file cannot produce a garbage-sized report).

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
/** more errors than this: report the first ones and say the rest were not listed */
export const MAX_ERRORS = 100;
/** most `[[name]]` tables in one file (all names together) */
export const MAX_ARRAY_TABLES = 10_000;
// TOML forbids control characters other than tab anywhere (strings, comments, bare text).
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u0008\u000a-\u001f\u007f]/;

export function parseToml(text: string): { doc: Document; errors: ParseError[] } {
  const doc: Document = { root: new Map(), sections: new Map(), arrays: new Map() };
  const errors: ParseError[] = [];
  let arrayTables = 0;
  let current = doc.root;
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1); // a UTF-8 byte order mark
  const lines = text.split("\n");
  let lineNo = 0;
  const fail = (message: string) => errors.push({ line: lineNo, message }); // one closure, not one per line
  for (let i = 0; i < lines.length; i++) {
    if (errors.length >= MAX_ERRORS) {
      errors.push({ line: i + 1, message: `too many errors, stopped after ${MAX_ERRORS}` });
      break;
    }
    lineNo = i + 1;
    const raw = lines[i]!.endsWith("\r") ? lines[i]!.slice(0, -1) : lines[i]!;
    if (raw.length > MAX_LINE) { fail(`line longer than ${MAX_LINE} characters`); continue; }
    if (CONTROL.test(raw)) {
      fail("control character (only tab is allowed)");
      if (raw.trimStart().startsWith("[")) current = new Map(); // keys under a broken header are not root keys
      continue;
    }
    const line = stripComment(raw).trim();
    if (line === "") continue;
    if (line.startsWith("[[")) {
      const m = /^\[\[[ \t]*([^\]]*?)[ \t]*\]\]$/.exec(line);
      current = new Map(); // keys after a bad header go nowhere (they are not root keys)
      if (!m || !TABLE_NAME.test(m[1]!)) { fail(`invalid table header ${clip(line)}`); continue; }
      if (++arrayTables > MAX_ARRAY_TABLES) { fail(`more than ${MAX_ARRAY_TABLES} [[tables]]`); continue; }
      const list = doc.arrays.get(m[1]!) ?? [];
      list.push({ line: lineNo, table: current });
      doc.arrays.set(m[1]!, list);
      continue;
    }
    if (line.startsWith("[")) {
      const m = /^\[[ \t]*([^\]]*?)[ \t]*\]$/.exec(line);
      current = new Map();
      if (!m || !TABLE_NAME.test(m[1]!)) { fail(`invalid table header ${clip(line)}`); continue; }
      if (doc.sections.has(m[1]!) || doc.arrays.has(m[1]!)) { fail(`duplicate table [${m[1]}]`); continue; }
      doc.sections.set(m[1]!, { line: lineNo, table: current });
      continue;
    }
    const kv = splitKeyValue(line);
    if ("error" in kv) { fail(kv.error); continue; }
    const parsed = parseValue(kv.value);
    if ("error" in parsed) { fail(`${kv.key}: ${parsed.error}`); continue; }
    if (current.has(kv.key)) { fail(`duplicate key ${kv.key} (first on line ${current.get(kv.key)!.line})`); continue; }
    current.set(kv.key, { value: parsed.value, line: lineNo });
  }
  return { doc, errors };
}

function clip(s: string): string {
  return JSON.stringify(s.length > 60 ? s.slice(0, 60) + "..." : s);
}

/** `key = value` where key is bare or quoted (a quoted key may hold "=" but must still be a bare-key word). */
function splitKeyValue(line: string): { key: string; value: string } | { error: string } {
  let key: string;
  let rest: string;
  if (line[0] === '"' || line[0] === "'") {
    const s = line[0] === '"' ? readBasic(line, 0) : readLiteral(line, 0);
    if ("error" in s) return { error: `key: ${s.error}` };
    key = s.value;
    rest = line.slice(s.end).trimStart();
    if (rest[0] !== "=") return { error: "expected key = value" };
    rest = rest.slice(1);
  } else {
    const eq = line.indexOf("=");
    if (eq < 0) return { error: `expected key = value, got ${clip(line)}` };
    key = line.slice(0, eq).trim();
    rest = line.slice(eq + 1);
  }
  if (!BARE_KEY.test(key)) return { error: `invalid key ${clip(key)}${key.includes(".") ? " (dotted keys are not supported)" : ""}` };
  return { key, value: rest.trim() };
}

/** Remove a `#` comment that is not inside a string. */
function stripComment(line: string): string {
  let quote = "";
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quote) {
      if (c === "\\" && quote === '"') i++;
      else if (c === quote) quote = "";
    } else if (c === '"' || c === "'") quote = c;
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
    return { value: n === 0 ? 0 : n }; // no -0
  }
  if (src.startsWith('"""') || src.startsWith("'''")) return { error: "multi-line strings are not supported" };
  if (src[0] === '"' || src[0] === "'") {
    const s = src[0] === '"' ? readBasic(src, 0) : readLiteral(src, 0);
    if ("error" in s) return s;
    if (src.slice(s.end).trim() !== "") return { error: "unexpected text after string" };
    return { value: s.value };
  }
  if (src.startsWith("[")) return parseArray(src);
  return { error: `unsupported value ${clip(src)} (strings must be "quoted"; floats, dates and inline tables are not supported)` };
}

function skipBlank(src: string, i: number): number {
  while (i < src.length && (src[i] === " " || src[i] === "\t")) i++;
  return i;
}

function parseArray(src: string): { value: string[] } | { error: string } {
  const out: string[] = [];
  let i = 1;
  for (;;) {
    i = skipBlank(src, i);
    if (src[i] === "]") break; // empty array or trailing comma
    if (src[i] !== '"' && src[i] !== "'") return { error: i >= src.length ? "unterminated array (arrays must be on one line)" : "arrays may only hold strings" };
    const s = src[i] === '"' ? readBasic(src, i) : readLiteral(src, i);
    if ("error" in s) return s;
    out.push(s.value);
    i = skipBlank(src, s.end);
    if (src[i] === ",") { i++; continue; }
    if (src[i] === "]") break;
    return { error: "expected , or ] in array (arrays must be on one line)" };
  }
  return src.slice(i + 1).trim() === "" ? { value: out } : { error: "unexpected text after array" };
}

const ESCAPES: Record<string, string> = { b: "\b", t: "\t", n: "\n", f: "\f", r: "\r", e: "\x1b", '"': '"', "\\": "\\" };

/** A basic string "..." starting at src[start]. */
function readBasic(src: string, start: number): { value: string; end: number } | { error: string } {
  // fast path: no escape before the closing quote (control characters were refused per line)
  const close = src.indexOf('"', start + 1);
  const escape = src.indexOf("\\", start + 1);
  if (close >= 0 && (escape < 0 || escape > close)) return { value: src.slice(start + 1, close), end: close + 1 };
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
        if (hex.length !== len || !/^[0-9a-fA-F]+$/.test(hex)) return { error: "invalid unicode escape" };
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
    out += c;
  }
  return { error: "unterminated string" };
}

/** A literal string '...' (no escapes) starting at src[start]. */
function readLiteral(src: string, start: number): { value: string; end: number } | { error: string } {
  const close = src.indexOf("'", start + 1);
  if (close < 0) return { error: "unterminated string" };
  return { value: src.slice(start + 1, close), end: close + 1 };
}
