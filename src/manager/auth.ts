// Manager auth: worker secrets (scrypt hashes, a SHA-256 cache of verified pairs, Basic headers) and user ES256 JWT keys.
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, scrypt, timingSafeEqual, type KeyObject } from "node:crypto";
import { chmod, open, readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { writeFileAtomic } from "../store/index.js";
import { isP256, signEs256, verifyEs256 } from "../tokens/index.js";
import { log } from "../log.js";

// ---- worker secrets ----

/** scrypt cost for new hashes: ~16 MiB of memory and tens of milliseconds per check, once per worker and process. */
export const SCRYPT = { N: 1 << 14, r: 8, p: 1, saltBytes: 16, hashBytes: 32 } as const;
/** Bounds on parameters read back from a stored hash, so a bad record cannot make one check use huge memory or time. */
const MAX_SCRYPT_MEMORY = 64 * 1024 * 1024; // scrypt needs 128 * N * r bytes
const MAX_P = 4;
/** Secrets and ids longer than this are refused before any hashing. */
export const MAX_SECRET_BYTES = 1024;

function scryptAsync(secret: string, salt: Buffer, keylen: number, N: number, r: number, p: number): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    scrypt(secret, salt, keylen, { N, r, p, maxmem: 256 * N * r + (1 << 20) }, (err, key) => (err ? reject(err) : resolve(key))),
  );
}

/** A worker secret's stored form: `scrypt$N$r$p$<salt base64>$<hash base64>`. */
export async function hashSecret(secret: string): Promise<string> {
  if (!isSecret(secret)) throw new RangeError(`a worker secret must be 1-${MAX_SECRET_BYTES} bytes`);
  const salt = randomBytes(SCRYPT.saltBytes);
  const hash = await scryptAsync(secret, salt, SCRYPT.hashBytes, SCRYPT.N, SCRYPT.r, SCRYPT.p);
  return `scrypt$${SCRYPT.N}$${SCRYPT.r}$${SCRYPT.p}$${salt.toString("base64")}$${hash.toString("base64")}`;
}

const STORED = /^scrypt\$([1-9][0-9]{0,7})\$([1-9][0-9]?)\$([1-9][0-9]?)\$([A-Za-z0-9+/]{4,88}={0,2})\$([A-Za-z0-9+/]{22,172}={0,2})$/;

/** Check `secret` against a stored hash (always runs scrypt). A malformed stored hash never matches. */
export async function verifySecret(secret: string, stored: string): Promise<boolean> {
  const m = STORED.exec(stored);
  if (!m || !isSecret(secret)) return false;
  const [N, r, p] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (N < 2 || (N & (N - 1)) !== 0 || 128 * N * r > MAX_SCRYPT_MEMORY || p > MAX_P) return false;
  const salt = Buffer.from(m[4]!, "base64");
  const expected = Buffer.from(m[5]!, "base64");
  if (expected.length < 16) return false;
  const actual = await scryptAsync(secret, salt, expected.length, N, r, p);
  return timingSafeEqual(actual, expected);
}

function isSecret(secret: string): boolean {
  return secret.length > 0 && Buffer.byteLength(secret) <= MAX_SECRET_BYTES;
}

/** Too many scrypt checks waiting: answer 503 rather than queue without bound. */
export class AuthBusyError extends Error {
  readonly status = 503;
}

interface Verified {
  /** SHA-256 of id, NUL, secret */
  digest: Buffer;
  /** the stored hash the pair was checked against; a new registration has a new one (fresh salt) */
  storedHash: string;
}

export interface WorkerAuthOptions {
  /** cached workers (default 10,000); the least recently used goes first */
  maxCached?: number;
  /** scrypt checks run at once (default 2: the rest of the thread pool stays free for files) */
  maxConcurrent?: number;
  /** checks allowed to wait for a slot (default 1,000); past that verify() rejects with AuthBusyError */
  maxWaiting?: number;
  /** the slow check; tests count calls through this */
  verifySecret?: (secret: string, stored: string) => Promise<boolean>;
}

/**
 * Worker Basic auth. A pair that verified once is remembered by its SHA-256, so the hot path is one
 * hash and a constant-time compare, never scrypt. Wrong secrets are not cached: each costs a full check,
 * which is why checks are limited in number.
 */
export class WorkerAuth {
  private readonly cache = new Map<string, Verified>(); // worker id -> its verified pair, in LRU order
  private readonly maxCached: number;
  private readonly maxConcurrent: number;
  private readonly maxWaiting: number;
  private readonly slowCheck: (secret: string, stored: string) => Promise<boolean>;
  private running = 0;
  private readonly waiting: (() => void)[] = [];
  /** full (scrypt) checks run so far */
  slowChecks = 0;

  constructor(opts: WorkerAuthOptions = {}) {
    this.maxCached = opts.maxCached ?? 10_000;
    this.maxConcurrent = opts.maxConcurrent ?? 2;
    this.maxWaiting = opts.maxWaiting ?? 1_000;
    this.slowCheck = opts.verifySecret ?? verifySecret;
  }

  /** True when `secret` is the worker's; `storedHash` is its current hash (from registration). */
  async verify(workerId: string, secret: string, storedHash: string): Promise<boolean> {
    if (Buffer.byteLength(workerId) > MAX_SECRET_BYTES || !isSecret(secret)) return false;
    const digest = createHash("sha256").update(workerId).update("\0").update(secret).digest();
    const hit = this.cache.get(workerId);
    if (hit && hit.storedHash === storedHash && timingSafeEqual(hit.digest, digest)) {
      this.cache.delete(workerId); // move to the young end
      this.cache.set(workerId, hit);
      return true;
    }
    const ok = await this.limited(() => this.slowCheck(secret, storedHash));
    // Cache only against the hash we checked; a re-registration meanwhile leaves a harmless non-matching entry.
    if (ok) this.remember(workerId, { digest, storedHash });
    return ok;
  }

  /** Drop a worker's cached pair (re-registration, deletion). A changed stored hash also misses by itself. */
  forget(workerId: string): void {
    this.cache.delete(workerId);
  }

  get cached(): number {
    return this.cache.size;
  }

  private remember(workerId: string, entry: Verified): void {
    this.cache.delete(workerId);
    this.cache.set(workerId, entry);
    while (this.cache.size > this.maxCached) this.cache.delete(this.cache.keys().next().value!);
  }

  private async limited<T>(fn: () => Promise<T>): Promise<T> {
    if (this.running >= this.maxConcurrent) {
      if (this.waiting.length >= this.maxWaiting) throw new AuthBusyError("too many worker authentications in progress");
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    }
    this.running++;
    this.slowChecks++;
    try {
      return await fn();
    } finally {
      this.running--;
      this.waiting.shift()?.();
    }
  }
}

const MAX_AUTH_HEADER = 4096;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** `Authorization: Basic <base64(id:secret)>` → {id, secret}; anything else (other scheme, sloppy base64, no colon, empty id) → undefined. */
export function parseBasicAuth(header: string | undefined): { id: string; secret: string } | undefined {
  if (header === undefined || header.length > MAX_AUTH_HEADER) return undefined;
  const m = /^Basic ([^ ]+)$/i.exec(header.trim());
  if (!m) return undefined;
  const encoded = m[1]!;
  if (encoded.length % 4 !== 0 || !BASE64.test(encoded)) return undefined;
  const bytes = Buffer.from(encoded, "base64");
  if (bytes.toString("base64") !== encoded) return undefined; // non-canonical spare bits
  const text = bytes.toString("utf8");
  if (!Buffer.from(text, "utf8").equals(bytes) || /[\x00-\x1f\x7f]/.test(text)) return undefined;
  const colon = text.indexOf(":");
  if (colon <= 0) return undefined;
  return { id: text.slice(0, colon), secret: text.slice(colon + 1) };
}

// ---- user keys ----

export const JWT_DIR = "jwt";
export const PRIVATE_KEY_FILE = "es256-private.pem";
export const PUBLIC_KEY_FILE = "es256-public.pem";
const PUBLIC_KEY_NAME = /-public.*\.pem$/;
const MAX_KEY_FILES = 100;
const MAX_KEY_FILE_BYTES = 64 * 1024;
/** Longest lifetime a minted user token may have (one year). */
export const MAX_TOKEN_TTL_SECS = 365 * 24 * 3600;

/** Make the manager's ES256 key pair at first start; repairs a missing public key or a too-open private key. */
export async function ensureKeyPair(stateDir: string): Promise<{ created: boolean }> {
  const dir = join(stateDir, JWT_DIR);
  const privatePath = join(dir, PRIVATE_KEY_FILE);
  const publicPath = join(dir, PUBLIC_KEY_FILE);
  const existing = await readBounded(privatePath);
  if (existing !== undefined) {
    const mode = (await stat(privatePath)).mode & 0o777;
    if (mode !== 0o600) {
      await chmod(privatePath, 0o600);
      log.warn("jwt private key was readable by others; made it 0600", { path: privatePath, mode: mode.toString(8) });
    }
    if ((await readBounded(publicPath)) === undefined) {
      const pub = createPublicKey(createPrivateKey(existing)).export({ type: "spki", format: "pem" });
      await writeFileAtomic(publicPath, pub, 0o644);
    }
    return { created: false };
  }
  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
  // Private first: a crash in between leaves a private key, from which the public one is remade.
  await writeFileAtomic(privatePath, privateKey.export({ type: "pkcs8", format: "pem" }), 0o600);
  await writeFileAtomic(publicPath, publicKey.export({ type: "spki", format: "pem" }), 0o644);
  log.info("made the jwt key pair for user tokens", { dir });
  return { created: true };
}

/** Trusted user-token keys: every `*-public*.pem` in `<stateDir>/jwt/` and in `extraDir` (manager_jwt_keys_dir, "" = none). */
export async function loadUserKeys(stateDir: string, extraDir = ""): Promise<KeyObject[]> {
  const keys: KeyObject[] = [];
  for (const dir of [join(stateDir, JWT_DIR), extraDir].filter((d) => d !== "")) {
    let names: string[];
    try {
      names = (await readdir(dir)).filter((n) => PUBLIC_KEY_NAME.test(n)).sort();
    } catch (err) {
      log.warn("cannot read jwt key directory", { dir, error: (err as Error).message });
      continue;
    }
    for (const name of names) {
      if (keys.length >= MAX_KEY_FILES) {
        log.warn("too many jwt public keys; the rest are ignored", { dir, max: MAX_KEY_FILES });
        return keys;
      }
      const key = await loadPublicKey(join(dir, name));
      if (key) keys.push(key);
    }
  }
  return keys;
}

async function loadPublicKey(path: string): Promise<KeyObject | undefined> {
  try {
    const pem = await readBounded(path);
    if (pem === undefined) return undefined;
    const key = createPublicKey(pem);
    if (isP256(key)) return key;
    log.warn("jwt public key is not ES256 (P-256); ignored", { path });
  } catch (err) {
    log.warn("cannot load jwt public key", { path, error: (err as Error).message });
  }
  return undefined;
}

/** A user token signed with the local private key (for `stevedore jobs`, `stevedore manager token`). */
export async function mintUserToken(stateDir: string, opts: { subject: string; ttlSecs: number; nowMs?: number }): Promise<string> {
  if (!isSubject(opts.subject)) throw new RangeError("subject must be 1-256 printable ASCII characters");
  if (!Number.isInteger(opts.ttlSecs) || opts.ttlSecs < 1 || opts.ttlSecs > MAX_TOKEN_TTL_SECS)
    throw new RangeError(`ttl must be a whole number of seconds from 1 to ${MAX_TOKEN_TTL_SECS}`);
  const path = join(stateDir, JWT_DIR, PRIVATE_KEY_FILE);
  const pem = await readBounded(path);
  if (pem === undefined) throw Object.assign(new Error(`no jwt private key at ${path} (the manager makes it at its first start)`), { code: "ENOENT" });
  const iat = Math.floor((opts.nowMs ?? Date.now()) / 1000);
  return signEs256({ sub: opts.subject, iat, exp: iat + opts.ttlSecs }, pem);
}

/** `via`: where the token came from; a cookie rides along on cross-site requests, so its callers get a CSRF check. */
export type UserAuth = { ok: true; subject: string; via: "bearer" | "cookie" } | { ok: false; status: 401 | 498; message: string };

/**
 * The user behind a request: `Authorization: Bearer <jwt>`, else cookie `jwtToken`. A Bearer header is
 * final (a bad one does not fall back to the cookie). The subject is safe for logs and response headers.
 */
export function userFromRequest(authorization: string | undefined, cookie: string | undefined, keys: readonly KeyObject[], nowMs = Date.now(), revoked?: (token: string) => boolean): UserAuth {
  const bearer = bearerToken(authorization);
  const token = bearer ?? cookieValue(cookie, "jwtToken");
  if (token === undefined) return { ok: false, status: 401, message: "missing token" };
  const r = verifyEs256(token, keys, nowMs);
  if (!r.ok) return { ok: false, status: r.reason === "expired" ? 498 : 401, message: r.message };
  if (revoked?.(token)) return { ok: false, status: 401, message: "signed out: this token was revoked" };
  const sub = r.claims.sub;
  if (!isSubject(sub)) return { ok: false, status: 401, message: "token subject must be 1-256 printable ASCII characters" };
  return { ok: true, subject: sub, via: bearer === undefined ? "cookie" : "bearer" };
}

/** The token userFromRequest looks at: the Bearer one, else the jwtToken cookie. */
export function userToken(authorization: string | undefined, cookie: string | undefined): string | undefined {
  return bearerToken(authorization) ?? cookieValue(cookie, "jwtToken");
}

function isSubject(s: unknown): s is string {
  return typeof s === "string" && /^[\x20-\x7e]{1,256}$/.test(s) && s.trim() !== "";
}

function bearerToken(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  const m = /^Bearer +(\S+) *$/i.exec(header);
  if (m) return m[1];
  return /^Bearer\b/i.test(header) ? "" : undefined; // "Bearer" with nothing usable: an (invalid) empty token
}

const MAX_COOKIE_HEADER = 16 * 1024;

function cookieValue(header: string | undefined, name: string): string | undefined {
  if (header === undefined || header.length > MAX_COOKIE_HEADER) return undefined;
  for (const part of header.split(";")) {
    const eq = part.indexOf("=");
    if (eq < 0 || part.slice(0, eq).trim() !== name) continue;
    const value = part.slice(eq + 1).trim();
    return value.length >= 2 && value.startsWith('"') && value.endsWith('"') ? value.slice(1, -1) : value;
  }
  return undefined;
}

/** A key file's text; undefined when it does not exist. Larger files are an error (keys are small). */
async function readBounded(path: string): Promise<string | undefined> {
  const fh = await open(path, "r").catch((err: NodeJS.ErrnoException) => {
    if (err.code === "ENOENT") return undefined;
    throw err;
  });
  if (!fh) return undefined;
  try {
    const buf = Buffer.alloc(MAX_KEY_FILE_BYTES + 1);
    let length = 0;
    while (length < buf.length) {
      const { bytesRead } = await fh.read(buf, length, buf.length - length);
      if (bytesRead === 0) break;
      length += bytesRead;
    }
    if (length > MAX_KEY_FILE_BYTES) throw new RangeError(`${path} is larger than ${MAX_KEY_FILE_BYTES} bytes`);
    return buf.subarray(0, length).toString("utf8");
  } finally {
    await fh.close();
  }
}
