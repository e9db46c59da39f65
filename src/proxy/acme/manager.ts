// The certificate manager: which hosts get ACME certificates, their files under <state_dir>/acme/,
// ordering within seconds, renewal before the window with jitter, back-off after failures (one
// host's failure never holds up another), and the challenge answers the listeners serve.
import { EventEmitter } from "node:events";
import { readFile, readdir, stat, unlink } from "node:fs/promises";
import { join } from "node:path";
import { createPrivateKey, X509Certificate, type KeyObject } from "node:crypto";
import { createSecureContext, type SecureContext } from "node:tls";
import { writeFileAtomic, ensureDir } from "../../store/index.js";
import { log } from "../../log.js";
import { AcmeClient, ChallengeFailed, newKey, type Solver } from "./client.js";
import { AcmeError } from "./parse.js";
import { buildAlpnCert, pem } from "./der.js";

export interface AcmeSettings {
  enabled: boolean;
  email: string;
  directoryUrl: string;
  caFile: string;
  /** 0: a third of the certificate's lifetime */
  renewBeforeDays: number;
  /** challenge types in order of preference */
  challenges: readonly string[];
}

export interface AcmeCert {
  host: string;
  context: SecureContext;
  issuer: string;
  notBefore: number;
  notAfter: number;
  /** when this process got it (or the file's mtime) */
  obtained: number;
}

interface HostState {
  cert?: AcmeCert;
  wanted: boolean;
  busy: boolean;
  failures: number;
  next: number;
  lastError?: string;
  /** renewals in a row that gave a certificate already inside the window */
  eager: number;
  /** 0..1, drawn per certificate: renewals of many hosts do not all fall on one moment */
  jitter: number;
  /** challenge types tried first: advanced past a type the CA could not validate */
  rotate: number;
  /** its files are being removed (expired and no longer wanted) */
  purging?: boolean;
}

export interface CertRow {
  host: string;
  issuer?: string;
  notAfter?: string;
  nextRenewal?: string;
  lastError?: string;
  wanted: boolean;
}

const BACKOFF_BASE_MS = 5_000;
const BACKOFF_MAX_MS = 6 * 3600_000;
const EAGER_BASE_MS = 10_000;
const CONCURRENCY = 4;
const HOST_FILE = /^([a-z0-9.-]{1,253})\.crt$/;

export class AcmeManager extends EventEmitter<{ change: [] }> {
  private hosts = new Map<string, HostState>();
  private http01 = new Map<string, string>();
  private alpn = new Map<string, SecureContext>();
  private client: AcmeClient | undefined;
  private clientKey = "";
  private accountKey: KeyObject | undefined;
  private accountKeyP: Promise<KeyObject> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private running = 0;
  private stopped = false;
  private loaded = false;
  /** orders placed by this process (tests, `certs`) */
  orders = 0;

  constructor(
    private dir: string,
    private settings: () => AcmeSettings,
  ) {
    super();
  }

  /** Load the stored certificates (served at once, before any ACME traffic). */
  async load(): Promise<void> {
    if (this.loaded) return;
    this.loaded = true;
    const certDir = join(this.dir, "certs");
    const names = await readdir(certDir).catch(() => [] as string[]);
    for (const f of names) {
      const m = HOST_FILE.exec(f);
      if (!m) continue;
      const host = m[1]!;
      try {
        const [chain, key, st] = await Promise.all([readFile(join(certDir, f), "utf8"), readFile(join(certDir, `${host}.key`), "utf8"), stat(join(certDir, f))]);
        const cert = toCert(host, chain, key, st.mtimeMs);
        // expired: never served again; a host still wanted gets a new one anyway
        if (cert.notAfter <= Date.now()) await this.removeFiles(host, cert.notAfter);
        else this.state(host).cert = cert;
      } catch (err) {
        log.error("acme certificate file unusable; ordering a new one", { host, error: (err as Error).message });
      }
    }
    if (this.hosts.size) this.emit("change");
  }

  /** Remove an expired certificate's files: the chain first, so a crash between leaves only a key,
   *  which load() never lists (and the next order overwrites). */
  private async removeFiles(host: string, notAfter: number): Promise<void> {
    const certDir = join(this.dir, "certs");
    await unlink(join(certDir, `${host}.crt`)).catch(ignoreMissing);
    await unlink(join(certDir, `${host}.key`)).catch(ignoreMissing);
    log.info("acme certificate expired; files removed", { host, not_after: new Date(notAfter).toISOString() });
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }

  /** The hosts that should have a certificate now; others keep theirs until expiry, unrenewed. */
  want(hosts: Iterable<string>): void {
    const set = new Set(hosts);
    for (const [h, s] of this.hosts) s.wanted = set.has(h);
    for (const h of set) this.state(h).wanted = true;
    this.schedule();
  }

  cert(host: string): AcmeCert | undefined {
    const c = this.hosts.get(host)?.cert;
    return c && c.notAfter > Date.now() ? c : undefined;
  }

  *certs(): Iterable<AcmeCert> {
    for (const s of this.hosts.values()) if (s.cert && s.cert.notAfter > Date.now()) yield s.cert;
  }

  httpChallenge(token: string): string | undefined {
    return this.http01.get(token);
  }

  alpnChallenge(host: string): SecureContext | undefined {
    return this.alpn.get(host);
  }

  rows(): CertRow[] {
    return [...this.hosts.entries()].sort(([a], [b]) => (a < b ? -1 : 1)).map(([host, s]) => {
      const row: CertRow = { host, wanted: s.wanted };
      if (s.cert) {
        row.issuer = s.cert.issuer;
        row.notAfter = new Date(s.cert.notAfter).toISOString();
      }
      if (s.wanted) row.nextRenewal = new Date(this.dueAt(s)).toISOString();
      if (s.lastError) row.lastError = s.lastError;
      return row;
    });
  }

  // ---- scheduling ------------------------------------------------------------------------

  private state(host: string): HostState {
    let s = this.hosts.get(host);
    if (!s) this.hosts.set(host, (s = { wanted: false, busy: false, failures: 0, next: 0, eager: 0, jitter: Math.random(), rotate: 0 }));
    return s;
  }

  private dueAt(s: HostState): number {
    return dueAt(s, this.settings().renewBeforeDays);
  }

  private schedule(): void {
    if (this.stopped || !this.settings().enabled) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const now = Date.now();
    let soonest = Infinity;
    for (const [host, s] of this.hosts) {
      if (!s.wanted && s.cert && !s.busy) {
        // kept on disk until expiry (a host that flaps gets it back), then removed
        if (s.cert.notAfter <= now) void this.purge(host, s);
        else soonest = Math.min(soonest, s.cert.notAfter);
        continue;
      }
      if (!s.wanted || s.busy) continue;
      const due = this.dueAt(s);
      if (due <= now && this.running < CONCURRENCY) void this.order(host, s);
      else soonest = Math.min(soonest, Math.max(due, now + 1000));
    }
    if (soonest < Infinity) {
      this.timer = setTimeout(() => this.schedule(), Math.min(soonest - now, 2 ** 31 - 1));
      this.timer.unref();
    }
  }

  private async purge(host: string, s: HostState): Promise<void> {
    const expired = s.cert;
    if (s.purging || !expired) return;
    s.purging = true;
    try {
      await this.removeFiles(host, expired.notAfter);
      if (!s.wanted && !s.busy) this.hosts.delete(host);
      else if (s.cert === expired) s.cert = undefined;
    } catch (err) {
      log.warn("acme expired certificate not removed", { host, error: (err as Error).message });
    } finally {
      s.purging = false;
    }
  }

  private async order(host: string, s: HostState): Promise<void> {
    s.busy = true;
    this.running++;
    const renewal = s.cert !== undefined;
    try {
      const client = await this.acme();
      const { privateKey } = newKey();
      this.orders++;
      log.info("acme order", { host, renewal });
      const chain = await client.obtain(host, privateKey, this.solver(s));
      const keyPem = privateKey.export({ format: "pem", type: "pkcs8" }) as string;
      const cert = toCert(host, chain, keyPem, Date.now());
      await ensureDir(join(this.dir, "certs"), 0o700);
      // key first: a crash between the two leaves the old pair mismatched, which load() refuses and re-orders
      await writeFileAtomic(join(this.dir, "certs", `${host}.key`), keyPem, 0o600);
      await writeFileAtomic(join(this.dir, "certs", `${host}.crt`), chain, 0o600);
      s.eager = renewal && this.dueAt({ ...s, cert, next: 0, eager: 0 }) <= cert.obtained + EAGER_BASE_MS ? s.eager + 1 : 0;
      if (s.eager > 0) log.warn("acme renew window is as long as the certificate lifetime; renewals spaced out", { host });
      s.cert = cert;
      s.jitter = Math.random();
      s.failures = 0;
      s.next = 0;
      s.lastError = undefined;
      log.info("acme certificate installed", { host, not_after: new Date(cert.notAfter).toISOString(), issuer: cert.issuer, bad_nonce_retries: client.counts.badNonce });
      this.emit("change");
    } catch (err) {
      s.failures++;
      const retryAfter = err instanceof AcmeError ? err.retryAfterMs ?? 0 : 0;
      const backoff = Math.min(BACKOFF_BASE_MS * 2 ** (s.failures - 1), BACKOFF_MAX_MS) * (0.8 + 0.4 * Math.random());
      const wait = Math.max(backoff, retryAfter);
      s.next = Date.now() + wait;
      s.lastError = (err as Error).message;
      const problem = err instanceof AcmeError ? JSON.stringify(err.problem) : undefined;
      // the CA could not validate this type (port 80 closed, say): the next order tries the next one
      const types = this.settings().challenges;
      if (err instanceof ChallengeFailed && types.length > 1) s.rotate = (types.indexOf(err.challengeType) + 1) % types.length;
      const next_challenge = err instanceof ChallengeFailed ? rotated(types, s.rotate)[0] : undefined;
      log.error("acme order failed; retrying later", { host, error: s.lastError, problem, retry_in_secs: Math.round(wait / 1000), failures: s.failures, next_challenge });
    } finally {
      s.busy = false;
      this.running--;
      this.schedule();
    }
  }

  private solver(s: HostState): Solver {
    return {
      types: rotated(this.settings().challenges, s.rotate),
      present: (type, host, token, ka) => {
        log.info("acme challenge", { host, type });
        if (type === "http-01") this.http01.set(token, ka);
        else if (type === "tls-alpn-01") {
          const { privateKey, publicKey } = newKey();
          const cert = pem("CERTIFICATE", buildAlpnCert(host, ka, privateKey, publicKey));
          this.alpn.set(host, createSecureContext({ cert, key: privateKey.export({ format: "pem", type: "pkcs8" }) as string }));
        }
      },
      remove: (type, host, token) => {
        if (type === "http-01") this.http01.delete(token);
        else this.alpn.delete(host);
      },
    };
  }

  /** the client for the current settings; the account key is made once and kept in account.key */
  private async acme(): Promise<AcmeClient> {
    const st = this.settings();
    const key = `${st.directoryUrl}\0${st.email}\0${st.caFile}`;
    if (this.client && this.clientKey === key) return this.client;
    // concurrent first orders share one account key (made once)
    this.accountKeyP ??= this.loadAccountKey().catch((e: unknown) => {
      this.accountKeyP = undefined;
      throw e;
    });
    this.accountKey = await this.accountKeyP;
    if (this.client && this.clientKey === key) return this.client;
    // added to Node's built-in roots by the client (trustedRoots), as documented
    const ca = st.caFile ? [await readFile(st.caFile, "utf8")] : undefined;
    this.client = new AcmeClient({ directoryUrl: st.directoryUrl, accountKey: this.accountKey, email: st.email || undefined, ca });
    this.clientKey = key;
    return this.client;
  }

  private async loadAccountKey(): Promise<KeyObject> {
    const path = join(this.dir, "account.key");
    const text = await readFile(path, "utf8").catch((e: NodeJS.ErrnoException) => {
      if (e.code === "ENOENT") return undefined;
      throw e;
    });
    if (text !== undefined) return createPrivateKey(text);
    const { privateKey } = newKey();
    await ensureDir(this.dir, 0o700);
    await writeFileAtomic(path, privateKey.export({ format: "pem", type: "pkcs8" }) as string, 0o600);
    log.info("acme account key created", { path });
    return privateKey;
  }
}

function ignoreMissing(e: NodeJS.ErrnoException): void {
  if (e.code !== "ENOENT") throw e;
}

/** `types` starting at index `from` (wrapping): the challenge order of a host's next order */
export function rotated(types: readonly string[], from: number): string[] {
  const i = types.length ? ((from % types.length) + types.length) % types.length : 0;
  return [...types.slice(i), ...types.slice(0, i)];
}

/** What dueAt reads of a host. */
export interface DueState {
  cert?: Pick<AcmeCert, "notBefore" | "notAfter" | "obtained">;
  next: number;
  eager: number;
  jitter: number;
}

/** When a host's next order is due (ms since the epoch): at once when it has no certificate, else
 *  `renewBeforeDays` (0: a third of the lifetime) before expiry, earlier by jitter × a tenth of that
 *  window (at most a day); never before a back-off ends (`next`), and a window as long as the
 *  lifetime is spaced out from when the certificate was obtained (10 s doubling per `eager`, ≤ 1 day). */
export function dueAt(s: DueState, renewBeforeDays: number): number {
  let due = 0;
  if (s.cert) {
    const life = s.cert.notAfter - s.cert.notBefore;
    const window = renewBeforeDays > 0 ? renewBeforeDays * 86400_000 : life / 3;
    due = s.cert.notAfter - window - s.jitter * Math.min(window / 10, 86400_000);
    // a window as long as the lifetime would renew at once, again and again: space them out
    due = Math.max(due, s.cert.obtained + Math.min(EAGER_BASE_MS * 2 ** s.eager, 86400_000));
  }
  return Math.max(due, s.next);
}

function toCert(host: string, chain: string, keyPem: string, obtained: number): AcmeCert {
  const leaf = new X509Certificate(chain);
  const key = createPrivateKey(keyPem);
  if (!leaf.checkPrivateKey(key)) throw new Error("key does not match the certificate");
  if (!leaf.checkHost(host)) throw new Error("certificate does not name the host");
  const cn = /CN=([^\n]+)/.exec(leaf.issuer);
  return {
    host,
    context: createSecureContext({ cert: chain, key: keyPem }),
    issuer: cn ? cn[1]! : leaf.issuer.replace(/\n/g, ", "),
    notBefore: Date.parse(leaf.validFrom),
    notAfter: Date.parse(leaf.validTo),
    obtained,
  };
}
