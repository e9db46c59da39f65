// The ACME protocol client (RFC 8555) on node:https and node:crypto: directory, nonces (badNonce
// retried), account (jwk, then kid), order, authorizations, challenges, finalize, certificate.
import { request as httpsRequest } from "node:https";
import { request as httpRequest } from "node:http";
import { createPublicKey, generateKeyPairSync, type KeyObject } from "node:crypto";
import { rootCertificates } from "node:tls";
import { signJws, publicJwk, thumbprint, type Jwk } from "./jws.js";
import { buildCsr } from "./der.js";
import {
  ACME_ERR, AcmeError, malformed, parseAccount, parseAuthorization, parseDirectory, parseJson, parseOrder, parseProblem, parseRetryAfter,
  type Authorization, type Challenge, type Directory, type Order,
} from "./parse.js";

/** Answers bigger than this are refused (a chain is a few KiB). */
export const MAX_ANSWER_BYTES = 1024 * 1024;
const BAD_NONCE_RETRIES = 5;
const REQUEST_TIMEOUT_MS = 30_000;
const TIMEOUT = "about:blank#stevedore-timeout";

export interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

export interface ClientOptions {
  directoryUrl: string;
  accountKey: KeyObject;
  /** extra trusted roots (PEM), added to Node's defaults */
  ca?: string[];
  email?: string;
  /** how long to wait for an authorization/order to settle */
  pollTimeoutMs?: number;
  /** waits between polls (tests observe them instead of sleeping) */
  sleep?: (ms: number) => Promise<void>;
}

/** Publishes and removes challenge answers (the proxy's listeners serve them). */
export interface Solver {
  /** challenge types in order of preference */
  types: readonly string[];
  present(type: string, host: string, token: string, keyAuthorization: string): void;
  remove(type: string, host: string, token: string): void;
}

/** Node's `ca` option replaces its default roots: the extra ones go on top of them, not instead. */
export function trustedRoots(extra: readonly string[] | undefined): string[] | undefined {
  return extra?.length ? [...rootCertificates, ...extra] : undefined;
}

/** An AcmeError from a challenge the CA could not validate: the next order tries another type. */
export class ChallengeFailed extends AcmeError {
  constructor(
    readonly challengeType: string,
    cause: AcmeError,
  ) {
    super(cause.problem, cause.retryAfterMs);
  }
}

export function newKey(): { privateKey: KeyObject; publicKey: KeyObject } {
  return generateKeyPairSync("ec", { namedCurve: "P-256" });
}

export class AcmeClient {
  private dir: Directory | undefined;
  private nonces: string[] = [];
  private kid: string | undefined;
  private accountP: Promise<string> | undefined;
  private jwk: Jwk;
  private roots: string[] | undefined;
  readonly thumbprint: string;
  /** requests sent (tests count orders) */
  readonly counts = { requests: 0, orders: 0, badNonce: 0 };

  constructor(private opts: ClientOptions) {
    this.jwk = publicJwk(createPublicKey(opts.accountKey));
    this.thumbprint = thumbprint(this.jwk);
    this.roots = trustedRoots(opts.ca);
  }

  keyAuthorization(token: string): string {
    return `${token}.${this.thumbprint}`;
  }

  // ---- transport -----------------------------------------------------------------------

  private send(url: string, method: "GET" | "HEAD" | "POST", body?: string): Promise<Answer> {
    this.counts.requests++;
    return new Promise((resolve, reject) => {
      let u: URL;
      try {
        u = new URL(url);
      } catch {
        return reject(malformed(`bad URL ${url.slice(0, 100)}`));
      }
      const headers: Record<string, string> = { "User-Agent": "stevedore-acme", Accept: "application/json" };
      if (body !== undefined) headers["Content-Type"] = "application/jose+json";
      const req = (u.protocol === "http:" ? httpRequest : httpsRequest)(u, { method, headers, timeout: REQUEST_TIMEOUT_MS, ...(u.protocol === "https:" && this.roots ? { ca: this.roots } : {}) }, (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on("data", (c: Buffer) => {
          size += c.length;
          if (size > MAX_ANSWER_BYTES) res.destroy(malformed("answer too large"));
          else chunks.push(c);
        });
        res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
        res.on("error", reject);
      });
      req.on("timeout", () => req.destroy(new Error("ACME request timed out")));
      req.on("error", (e) => reject(e instanceof AcmeError ? e : new AcmeError({ type: "about:blank#stevedore-connection", detail: `${method} ${u.host}: ${(e as NodeJS.ErrnoException).code ?? e.message}` })));
      req.end(body);
    });
  }

  private keepNonce(a: Answer): void {
    const n = a.headers["replay-nonce"];
    if (typeof n === "string" && /^[A-Za-z0-9_-]{1,512}$/.test(n)) this.nonces.push(n);
    if (this.nonces.length > 10) this.nonces.shift();
  }

  async directory(): Promise<Directory> {
    if (!this.dir) {
      const a = await this.send(this.opts.directoryUrl, "GET");
      if (a.status !== 200) throw this.failure(a);
      this.dir = parseDirectory(parseJson(a.body));
    }
    return this.dir;
  }

  private async nonce(): Promise<string> {
    const n = this.nonces.pop();
    if (n) return n;
    const a = await this.send((await this.directory()).newNonce, "HEAD");
    this.keepNonce(a);
    const fresh = this.nonces.pop();
    if (!fresh) throw malformed("newNonce gave no Replay-Nonce");
    return fresh;
  }

  private failure(a: Answer): AcmeError {
    let problem;
    try {
      problem = parseProblem(parseJson(a.body));
    } catch {
      problem = { type: "about:blank", detail: `HTTP ${a.status}` };
    }
    if (problem.status === undefined) problem.status = a.status;
    const ra = a.headers["retry-after"];
    return new AcmeError(problem, parseRetryAfter(typeof ra === "string" ? ra : undefined));
  }

  /** signed POST (payload undefined = POST-as-GET); badNonce answers are retried with the fresh nonce */
  async post(url: string, payload: unknown, useJwk = false): Promise<Answer> {
    for (let attempt = 0; ; attempt++) {
      const nonce = await this.nonce();
      const header = useJwk || !this.kid ? { nonce, url, jwk: this.jwk } : { nonce, url, kid: this.kid };
      const a = await this.send(url, "POST", signJws(this.opts.accountKey, header, payload));
      this.keepNonce(a);
      if (a.status < 400) return a;
      const err = this.failure(a);
      if (err.type === `${ACME_ERR}badNonce` && attempt < BAD_NONCE_RETRIES) {
        this.counts.badNonce++;
        continue;
      }
      throw err;
    }
  }

  private location(a: Answer): string {
    const l = a.headers.location;
    if (typeof l !== "string" || !/^https?:\/\//.test(l)) throw malformed("answer has no Location");
    return l;
  }

  // ---- account and order ---------------------------------------------------------------

  /** newAccount: creates the account or finds the existing one for this key. */
  account(): Promise<string> {
    // one newAccount at a time: concurrent first orders share it
    this.accountP ??= this.newAccount().catch((e: unknown) => {
      this.accountP = undefined;
      throw e;
    });
    return this.accountP;
  }

  private async newAccount(): Promise<string> {
    if (this.kid) return this.kid;
    const payload: Record<string, unknown> = { termsOfServiceAgreed: true };
    if (this.opts.email) payload.contact = [`mailto:${this.opts.email}`];
    const a = await this.post((await this.directory()).newAccount, payload, true);
    const acct = parseAccount(parseJson(a.body));
    if (acct.status !== "valid") throw malformed(`account is ${acct.status}`);
    this.kid = this.location(a);
    return this.kid;
  }

  /** Order, validate and download a certificate for `host`: the PEM chain (leaf first). */
  async obtain(host: string, certKey: KeyObject, solver: Solver): Promise<string> {
    await this.account();
    this.counts.orders++;
    const created = await this.post((await this.directory()).newOrder, { identifiers: [{ type: "dns", value: host }] });
    const orderUrl = this.location(created);
    let order = parseOrder(parseJson(created.body));
    for (const authzUrl of order.authorizations) await this.authorize(authzUrl, solver);
    order = await this.poll(orderUrl, parseOrder, (o) => o.status !== "pending");
    if (order.status !== "ready") throw new AcmeError(order.error ?? { type: "about:blank#stevedore-order", detail: `order is ${order.status}, not ready` });
    const csr = buildCsr([host], certKey, createPublicKey(certKey));
    await this.post(order.finalize, { csr: csr.toString("base64url") });
    order = await this.poll(orderUrl, parseOrder, (o) => o.status !== "processing" && o.status !== "ready");
    if (order.status !== "valid" || !order.certificate) throw new AcmeError(order.error ?? { type: "about:blank#stevedore-order", detail: `order is ${order.status} after finalize` });
    const cert = await this.post(order.certificate, undefined);
    const chain = cert.body.toString("utf8");
    if (!chain.includes("-----BEGIN CERTIFICATE-----")) throw malformed("certificate download is not PEM");
    return chain;
  }

  private async authorize(authzUrl: string, solver: Solver): Promise<void> {
    const authz = parseAuthorization(parseJson((await this.post(authzUrl, undefined)).body));
    if (authz.status === "valid") return; // reused authorization
    if (authz.status !== "pending") throw new AcmeError({ type: "about:blank#stevedore-authz", detail: `authorization for ${authz.identifier} is ${authz.status}` });
    const chal = pick(authz, solver.types);
    if (!chal) throw new AcmeError({ type: `${ACME_ERR}unsupportedIdentifier`, detail: `no challenge of ${solver.types.join(", ")} offered for ${authz.identifier}` });
    const ka = this.keyAuthorization(chal.token);
    solver.present(chal.type, authz.identifier, chal.token, ka);
    try {
      await this.post(chal.url, {});
      const done = await this.poll(authzUrl, parseAuthorization, (a) => a.status !== "pending").catch((e: unknown) => {
        // never settled: the validator may not reach us this way either
        throw e instanceof AcmeError && e.type === TIMEOUT ? new ChallengeFailed(chal.type, e) : e;
      });
      if (done.status !== "valid") {
        const failed = done.challenges.find((c) => c.error);
        throw new ChallengeFailed(chal.type, new AcmeError(failed?.error ?? { type: "about:blank#stevedore-authz", detail: `authorization is ${done.status}` }));
      }
    } finally {
      solver.remove(chal.type, authz.identifier, chal.token);
    }
  }

  /** POST-as-GET `url` until `settled`, up to pollTimeoutMs; the CA's Retry-After is the wait
   *  (bounded only by that deadline), else 100 ms doubling to 2 s */
  private async poll<T>(url: string, parse: (v: unknown) => T, settled: (v: T) => boolean): Promise<T> {
    const until = Date.now() + (this.opts.pollTimeoutMs ?? 60_000);
    const sleep = this.opts.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref()));
    let wait = 100;
    for (;;) {
      const a = await this.post(url, undefined);
      const v = parse(parseJson(a.body));
      if (settled(v)) return v;
      if (Date.now() >= until) throw new AcmeError({ type: TIMEOUT, detail: `${url} did not settle in time` });
      const ra = a.headers["retry-after"];
      const ms = parseRetryAfter(typeof ra === "string" ? ra : undefined) ?? wait;
      await sleep(Math.min(ms, Math.max(until - Date.now(), 0)));
      wait = Math.min(wait * 2, 2000);
    }
  }
}

function pick(authz: Authorization, types: readonly string[]): Challenge | undefined {
  for (const t of types) {
    const c = authz.challenges.find((x) => x.type === t);
    if (c) return c;
  }
  return undefined;
}

export type { Order };
