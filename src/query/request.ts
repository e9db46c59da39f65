// Parsing of what a query client sends: the Authorization header and the query strings.
// Pure functions (fuzzed in test/query/parse.test.ts).

export type Auth = { token: string } | { error: "missing or invalid Authorization header" };

const BAD_HEADER = { error: "missing or invalid Authorization header" } as const;

/** `Bearer <token>`: scheme case-insensitive, surrounding spaces trimmed; anything else is a bad header. */
export function parseAuthorization(header: string | undefined): Auth {
  if (header === undefined || header.length > 1024) return BAD_HEADER;
  const h = header.trim();
  const sp = h.search(/[ \t]/);
  if (sp !== 6 || h.slice(0, 6).toLowerCase() !== "bearer") return BAD_HEADER;
  const token = h.slice(7).trim();
  if (token === "" || /[\s]/.test(token)) return BAD_HEADER;
  return { token };
}

export class BadRequest extends Error {}

/** Query string → params; a parameter given twice is an error (which one would we honour?). */
export function parseQuery(query: string): Map<string, string> {
  const out = new Map<string, string>();
  if (query === "") return out;
  if (query.length > 2048) throw new BadRequest("query string too long");
  let params: URLSearchParams;
  try {
    params = new URLSearchParams(query);
  } catch {
    throw new BadRequest("malformed query string");
  }
  for (const [k, v] of params) {
    if (out.has(k)) throw new BadRequest(`parameter ${k} given more than once`);
    out.set(k, v);
  }
  return out;
}

/** `ingress`: true, 1 or yes (any case) filter; absent means all; any other value is an error. */
export function parseIngressParam(params: Map<string, string>): boolean {
  const v = params.get("ingress");
  if (v === undefined) return false;
  if (/^(true|1|yes)$/i.test(v)) return true;
  throw new BadRequest(`invalid ingress value ${JSON.stringify(v)}: use true, 1 or yes`);
}

const MAX_SINCE = 10_000_000_000; // Unix seconds far in the future, still exact

export interface PollParams {
  since: number | undefined;
  timeoutSecs: number;
}

export function parsePollParams(params: Map<string, string>, defaultTimeout: number): PollParams {
  const since = params.get("since");
  const timeout = params.get("timeout");
  const out: PollParams = { since: undefined, timeoutSecs: defaultTimeout };
  if (since !== undefined) {
    if (!/^[0-9]{1,11}$/.test(since) || Number(since) > MAX_SINCE) throw new BadRequest("since must be a non-negative integer (Unix seconds)");
    out.since = Number(since);
  }
  if (timeout !== undefined) {
    if (!/^[0-9]{1,3}$/.test(timeout) || Number(timeout) < 1 || Number(timeout) > 290) throw new BadRequest("timeout must be an integer from 1 to 290 (seconds)");
    out.timeoutSecs = Number(timeout);
  }
  return out;
}
