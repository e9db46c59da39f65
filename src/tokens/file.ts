// The tokens file: <state_dir>/tokens.json (0600). Parsing is strict: a file we cannot read
// completely is an error, never "no tokens" (an edit must not drop tokens it did not understand).
import { randomBytes, createHash } from "node:crypto";
import { deploymentNameError, isDeploymentName } from "../base/index.js";

export const TOKENS_FILE = "tokens.json";
export const MAX_TOKENS_FILE_BYTES = 4 * 1024 * 1024;
export const MAX_TOKENS = 10_000;
const TOKEN = /^[0-9a-f]{64}$/;

export interface TokenEntry {
  /** 64 lowercase hex characters (32 random bytes) */
  token: string;
  /** RFC 3339 UTC, when this token was made */
  created: string;
}

/** deployment name → its token */
export type Tokens = Map<string, TokenEntry>;

export class TokensFileError extends Error {}


export function newToken(): string {
  return randomBytes(32).toString("hex");
}

/** SHA-256 of a presented token (hex): the daemon keys its look-up map by this, never by the token. */
export function hashToken(token: string): string {
  return createHash("sha256").update(token).digest("hex");
}

/** Parse the file's bytes. Throws TokensFileError naming what is wrong. */
export function parseTokens(data: Buffer | string): Tokens {
  const text = typeof data === "string" ? data : data.toString("utf8");
  if (text.length > MAX_TOKENS_FILE_BYTES) throw new TokensFileError(`larger than ${MAX_TOKENS_FILE_BYTES} bytes`);
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new TokensFileError(`not valid JSON (${(err as Error).message})`);
  }
  if (!isObject(doc)) throw new TokensFileError("not a JSON object");
  if (doc.version !== 1) throw new TokensFileError(`unsupported version ${JSON.stringify(doc.version)}`);
  const list = doc.tokens;
  if (!isObject(list)) throw new TokensFileError(`"tokens" is not an object`);
  const names = Object.keys(list);
  if (names.length > MAX_TOKENS) throw new TokensFileError(`more than ${MAX_TOKENS} tokens`);
  const tokens: Tokens = new Map();
  for (const name of names) {
    const entry = list[name];
    if (!isDeploymentName(name)) throw new TokensFileError(`invalid deployment name ${JSON.stringify(name)}`);
    if (!isObject(entry) || typeof entry.token !== "string" || !TOKEN.test(entry.token))
      throw new TokensFileError(`deployment ${name}: token must be 64 lowercase hex characters`);
    const created = typeof entry.created === "string" ? entry.created : "";
    tokens.set(name, { token: entry.token, created });
  }
  return tokens;
}

export function serializeTokens(tokens: Tokens): string {
  const sorted = [...tokens.keys()].sort();
  const list: Record<string, TokenEntry> = {};
  for (const name of sorted) {
    const e = tokens.get(name)!;
    list[name] = { token: e.token, created: e.created };
  }
  return JSON.stringify({ version: 1, tokens: list }, null, 2) + "\n";
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
