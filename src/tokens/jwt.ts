// Compact JWS/JWT on node:crypto: HS256 verify (worker registration) and ES256 sign/verify (users).
import { createHmac, createPrivateKey, sign, timingSafeEqual, verify, type KeyObject } from "node:crypto";

/** Longer tokens are refused before any decoding. */
export const MAX_TOKEN_BYTES = 8 * 1024;
/** Clock difference tolerated between the token's issuer and us, for exp, nbf and iat. */
export const CLOCK_SKEW_SECS = 60;
/** At most this many keys are tried per token (bounds the work one request can cause). */
export const MAX_VERIFY_KEYS = 100;

export interface JwtClaims {
  sub?: string;
  /** seconds since the epoch; floats are accepted */
  exp?: number;
  iat?: number;
  nbf?: number;
  [claim: string]: unknown;
}

/** `invalid` means missing, malformed, wrongly signed or not yet valid (HTTP 401); `expired` means a good token past its exp (498). */
export type JwtResult = { ok: true; claims: JwtClaims } | { ok: false; reason: "invalid" | "expired"; message: string };

export interface VerifyOptions {
  /** Refuse tokens without exp (default true): a token that never expires cannot be withdrawn. */
  requireExp?: boolean;
}

type Alg = "HS256" | "ES256";
const SEGMENT = /^[A-Za-z0-9_-]*$/;

/** Sign `claims` with HMAC-SHA256 (what a registering worker sends). */
export function signHs256(claims: JwtClaims, secret: string | Buffer): string {
  const input = signingInput("HS256", claims);
  return `${input}.${createHmac("sha256", secret).update(input).digest("base64url")}`;
}

/** Verify an HS256 token with the shared secret. `nowMs`: milliseconds since the epoch. */
export function verifyHs256(token: unknown, secret: string | Buffer, nowMs: number, options: VerifyOptions = {}): JwtResult {
  if (secret.length === 0) return invalid("no secret configured");
  const parts = split(token, "HS256");
  if (!parts.ok) return parts;
  const expected = createHmac("sha256", secret).update(parts.input).digest();
  // Both are 32 bytes once the length matches; the length itself is no secret.
  if (parts.signature.length !== expected.length || !timingSafeEqual(parts.signature, expected)) return invalid("bad signature");
  return checkClaims(parts.payload, nowMs, options);
}

/** Sign `claims` with ES256; the signature is JOSE's raw r||s (64 bytes), not DER. */
export function signEs256(claims: JwtClaims, privateKey: KeyObject | string): string {
  const key = typeof privateKey === "string" ? createPrivateKey(privateKey) : privateKey;
  if (!isP256(key) || key.type !== "private") throw new TypeError("ES256 needs a P-256 (prime256v1) private key");
  const input = signingInput("ES256", claims);
  return `${input}.${sign("sha256", Buffer.from(input), { key, dsaEncoding: "ieee-p1363" }).toString("base64url")}`;
}

/** Verify an ES256 token against any of the trusted public keys. Keys that are not P-256 are skipped. */
export function verifyEs256(token: unknown, publicKeys: readonly KeyObject[], nowMs: number, options: VerifyOptions = {}): JwtResult {
  const parts = split(token, "ES256");
  if (!parts.ok) return parts;
  if (parts.signature.length !== 64) return invalid("bad signature");
  const data = Buffer.from(parts.input);
  const signed = publicKeys.slice(0, MAX_VERIFY_KEYS).some((key) => isP256(key) && verifyQuietly(data, key, parts.signature));
  if (!signed) return invalid("bad signature");
  return checkClaims(parts.payload, nowMs, options);
}

export function isP256(key: KeyObject): boolean {
  return key.asymmetricKeyType === "ec" && key.asymmetricKeyDetails?.namedCurve === "prime256v1";
}

function verifyQuietly(data: Buffer, key: KeyObject, signature: Buffer): boolean {
  try {
    return verify("sha256", data, { key, dsaEncoding: "ieee-p1363" }, signature);
  } catch {
    return false;
  }
}

function signingInput(alg: Alg, claims: JwtClaims): string {
  const header = Buffer.from(JSON.stringify({ alg, typ: "JWT" })).toString("base64url");
  return `${header}.${Buffer.from(JSON.stringify(claims)).toString("base64url")}`;
}

type Parts = { ok: true; input: string; payload: string; signature: Buffer };

/** Structure and header checks, before any signature work. The payload is only parsed once signed. */
function split(token: unknown, alg: Alg): Parts | (JwtResult & { ok: false }) {
  if (typeof token !== "string" || token === "") return invalid("no token");
  if (token.length > MAX_TOKEN_BYTES) return invalid(`token longer than ${MAX_TOKEN_BYTES} bytes`);
  const segments = token.split(".");
  if (segments.length !== 3) return invalid("not a compact JWS (three dot-separated parts)");
  const [h, p, s] = segments as [string, string, string];
  const header = decodeJson(h);
  if (!isObject(header)) return invalid("bad header");
  // Exactly the one algorithm this caller expects: no "none", no HS256 token against an ES256 key.
  if (header.alg !== alg) return invalid(`algorithm must be ${alg}`);
  if (header.typ !== undefined && (typeof header.typ !== "string" || header.typ.toUpperCase() !== "JWT")) return invalid("typ must be JWT");
  if (header.crit !== undefined) return invalid("critical header extensions are not supported");
  const signature = decodeSegment(s);
  if (!signature || !decodeSegment(p)) return invalid("bad base64url");
  return { ok: true, input: `${h}.${p}`, payload: p, signature };
}

function checkClaims(payloadSegment: string, nowMs: number, options: VerifyOptions): JwtResult {
  const claims = decodeJson(payloadSegment);
  if (!isObject(claims)) return invalid("claims are not a JSON object");
  for (const name of ["exp", "iat", "nbf"] as const) {
    const v = claims[name];
    if (v !== undefined && (typeof v !== "number" || !Number.isFinite(v))) return invalid(`${name} must be a number`);
  }
  if (claims.sub !== undefined && typeof claims.sub !== "string") return invalid("sub must be a string");
  const now = nowMs / 1000;
  const { exp, iat, nbf } = claims as JwtClaims;
  if (nbf !== undefined && now + CLOCK_SKEW_SECS < nbf) return invalid("token not valid yet (nbf)");
  if (iat !== undefined && now + CLOCK_SKEW_SECS < iat) return invalid("token issued in the future (iat)");
  if (exp === undefined) {
    if (options.requireExp !== false) return invalid("token has no exp");
  } else if (now - CLOCK_SKEW_SECS >= exp) {
    return { ok: false, reason: "expired", message: "token expired" };
  }
  return { ok: true, claims: claims as JwtClaims };
}

/** Strict base64url: only the URL alphabet, no padding, and canonical (the spare bits of the last character are zero). */
function decodeSegment(segment: string): Buffer | undefined {
  if (!SEGMENT.test(segment) || segment.length % 4 === 1) return undefined;
  const bytes = Buffer.from(segment, "base64url");
  return bytes.toString("base64url") === segment ? bytes : undefined;
}

function decodeJson(segment: string): unknown {
  const bytes = decodeSegment(segment);
  if (!bytes || bytes.length === 0) return undefined;
  const text = bytes.toString("utf8");
  if (!Buffer.from(text, "utf8").equals(bytes)) return undefined; // not valid UTF-8
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function invalid(message: string): JwtResult & { ok: false } {
  return { ok: false, reason: "invalid", message };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
