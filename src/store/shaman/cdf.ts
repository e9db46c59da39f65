// Checkout Definition Files (Shaman): strict parsing of `{sha256} {size} {path}` lines, every bad line reported.
import { posix } from "node:path";

export interface CdfEntry {
  /** lowercase hex */
  sha: string;
  size: number;
  /** relative, clean, no "..", no NUL */
  path: string;
  /** 1-based line number */
  line: number;
}

export type CdfResult = { ok: true; entries: CdfEntry[] } | { ok: false; errors: string[] };

export interface CdfLimits {
  maxLines: number;
  /** errors reported before the rest is summed up in one line */
  maxErrors: number;
  maxPathBytes: number;
  maxSegmentBytes: number;
}

export const CDF_LIMITS: CdfLimits = { maxLines: 1_000_000, maxErrors: 10_000, maxPathBytes: 4096, maxSegmentBytes: 255 };

export const SHA256_HEX_RE = /^[0-9a-fA-F]{64}$/;
/** a decimal without leading zeros (but "0") */
const SIZE_RE = /^(0|[1-9][0-9]{0,19})$/;
const LINE_RE = /^([^ ]*) ([^ ]*) (.*)$/s;
// eslint-disable-next-line no-control-regex
const CONTROL_RE = /[\x00-\x1f\x7f]/;
const utf8 = new TextDecoder("utf-8", { fatal: true });

/** "" when fine, else why the size field is wrong */
export function sizeProblem(text: string): string {
  if (!SIZE_RE.test(text)) return `size ${JSON.stringify(text.slice(0, 32))} is not a non-negative decimal integer`;
  if (Number(text) > Number.MAX_SAFE_INTEGER) return "size is too large";
  return "";
}

/** "" when `path` may name a file of a checkout, else why not */
export function pathProblem(path: string, limits: CdfLimits = CDF_LIMITS): string {
  if (path === "") return "empty path";
  if (path.includes("\0")) return "NUL in path";
  if (CONTROL_RE.test(path)) return "control character in path";
  if (path.startsWith("/")) return "path must be relative";
  if (path.split("/").includes("..")) return 'path must not contain ".."';
  if (path === "." || posix.normalize(path) !== path || path.endsWith("/")) return "path is not clean";
  if (Buffer.byteLength(path) > limits.maxPathBytes) return `path longer than ${limits.maxPathBytes} bytes`;
  for (const seg of path.split("/")) if (Buffer.byteLength(seg) > limits.maxSegmentBytes) return `path segment longer than ${limits.maxSegmentBytes} bytes`;
  return "";
}

/**
 * Parse a Checkout Definition File. Lines end in LF (a CR before it is dropped); the last line
 * needs no LF. A path may hold spaces (it is the rest of the line). Paths must be distinct, and no
 * path may be a directory of another (so no file of a checkout sits under another file).
 */
export function parseCdf(body: Buffer, limits: CdfLimits = CDF_LIMITS): CdfResult {
  const errors: string[] = [];
  let more = 0;
  const bad = (n: number, reason: string) => {
    if (errors.length < limits.maxErrors) errors.push(`invalid line ${n}: ${reason}`);
    else more++;
  };
  const entries: CdfEntry[] = [];
  const files = new Map<string, number>();
  const dirs = new Map<string, number>();
  let start = 0;
  let n = 0;
  while (start < body.length) {
    let end = body.indexOf(0x0a, start);
    if (end < 0) end = body.length;
    n++;
    if (n > limits.maxLines) {
      errors.push(`more than ${limits.maxLines} lines`);
      break;
    }
    let stop = end;
    if (stop > start && body[stop - 1] === 0x0d) stop--;
    const raw = body.subarray(start, stop);
    start = end + 1;
    let text: string;
    try {
      text = utf8.decode(raw);
    } catch {
      bad(n, "not valid UTF-8");
      continue;
    }
    const m = LINE_RE.exec(text);
    if (!m) {
      bad(n, text === "" ? "empty line" : "expected {sha256} {size} {path}");
      continue;
    }
    const [, sha, size, path] = m as unknown as [string, string, string, string];
    if (!SHA256_HEX_RE.test(sha)) {
      bad(n, "checksum must be 64 hexadecimal characters");
      continue;
    }
    const sp = sizeProblem(size);
    if (sp) {
      bad(n, sp);
      continue;
    }
    const pp = pathProblem(path, limits);
    if (pp) {
      bad(n, pp);
      continue;
    }
    const conflict = conflictOf(path, files, dirs);
    if (conflict) {
      bad(n, conflict);
      continue;
    }
    files.set(path, n);
    for (let i = path.indexOf("/"); i >= 0; i = path.indexOf("/", i + 1)) if (!dirs.has(path.slice(0, i))) dirs.set(path.slice(0, i), n);
    entries.push({ sha: sha.toLowerCase(), size: Number(size), path, line: n });
  }
  if (more) errors.push(`... and ${more} more invalid lines`);
  return errors.length ? { ok: false, errors } : { ok: true, entries };
}

/** why `path` cannot sit next to the paths seen so far ("" when it can) */
function conflictOf(path: string, files: Map<string, number>, dirs: Map<string, number>): string {
  const dup = files.get(path);
  if (dup !== undefined) return `duplicate path (first on line ${dup})`;
  const under = dirs.get(path);
  if (under !== undefined) return `path is a directory of the path on line ${under}`;
  for (let i = path.indexOf("/"); i >= 0; i = path.indexOf("/", i + 1)) {
    const parent = files.get(path.slice(0, i));
    if (parent !== undefined) return `parent ${JSON.stringify(path.slice(0, i))} is a file on line ${parent}`;
  }
  return "";
}
