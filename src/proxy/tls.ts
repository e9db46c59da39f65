// Certificates of the HTTPS listener and SNI selection: exact name, then one-label wildcard,
// then the default certificate, else the handshake fails.
import { readFile } from "node:fs/promises";
import { createPrivateKey, X509Certificate } from "node:crypto";
import { createSecureContext, type SecureContext } from "node:tls";
import type { DynamicConfig } from "../config/index.js";
import type { ProxyCertificate } from "./types.js";

/** Certificate files bigger than this are refused (a chain is a few KiB). */
export const MAX_PEM_BYTES = 1024 * 1024;

export interface LoadedCert {
  names: string[];
  context: SecureContext;
  /** the certificate PEM (for `stevedore certs`) */
  pem: string;
}

/** The certificates named by the dynamic config, loaded before a reload swaps it in. */
export interface ConfigCerts {
  sites: LoadedCert[];
  default?: { context: SecureContext; cert: string; key: string };
}

/** undefined when the pair is usable, else why not (no key material in the message). */
export function checkKeyPair(certPem: string, keyPem: string): string | undefined {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(certPem);
  } catch {
    return "certificate does not parse";
  }
  let key;
  try {
    key = createPrivateKey(keyPem);
  } catch {
    return "private key does not parse";
  }
  if (!cert.checkPrivateKey(key)) return "private key does not match the certificate";
  return undefined;
}

async function readPem(path: string, what: string, errors: string[]): Promise<string | undefined> {
  try {
    const data = await readFile(path);
    if (data.length > MAX_PEM_BYTES) {
      errors.push(`${what} ${path}: larger than ${MAX_PEM_BYTES} bytes`);
      return undefined;
    }
    return data.toString("utf8");
  } catch (err) {
    errors.push(`${what} ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    return undefined;
  }
}

async function loadPair(certPath: string, keyPath: string, what: string, errors: string[]): Promise<{ context: SecureContext; cert: string; key: string } | undefined> {
  const cert = await readPem(certPath, `${what} certificate`, errors);
  const key = await readPem(keyPath, `${what} key`, errors);
  if (cert === undefined || key === undefined) return undefined;
  const problem = checkKeyPair(cert, key);
  if (problem) {
    errors.push(`${what} ${certPath}: ${problem}`);
    return undefined;
  }
  try {
    return { context: createSecureContext({ cert, key }), cert, key };
  } catch (err) {
    errors.push(`${what} ${certPath}: ${(err as Error).message}`);
    return undefined;
  }
}

/** Load every certificate file the config names. Any error fails the reload. */
export async function loadConfigCerts(dyn: DynamicConfig): Promise<{ certs: ConfigCerts; errors: string[] }> {
  const errors: string[] = [];
  const certs: ConfigCerts = { sites: [] };
  for (const site of dyn.sites) {
    if (!site.tls_cert) continue;
    const pair = await loadPair(site.tls_cert, site.tls_key, `[[site]] ${site.hostname}`, errors);
    if (pair) certs.sites.push({ names: [site.hostname.toLowerCase()], context: pair.context, pem: pair.cert });
  }
  if (dyn.proxy_default_cert) {
    const pair = await loadPair(dyn.proxy_default_cert, dyn.proxy_default_key, "proxy_default_cert", errors);
    if (pair) certs.default = pair;
  }
  return { certs, errors };
}

/** The ALPN protocol of a TLS-ALPN-01 validator (RFC 8737). */
export const ACME_TLS = "acme-tls/1";
const CHALLENGE_SERVED = "challenge";
const OWN_SERVED = "own";

/** The SNI lookup built with each routing table. */
export class SniIndex {
  private exact = new Map<string, SecureContext>();
  private wildcard = new Map<string, SecureContext>();
  private fallback: SecureContext | undefined;
  /** secure contexts of command-socket certificates, by fingerprint, reused across rebuilds */
  private cache = new Map<string, SecureContext>();

  /** hand-installed names (command socket, config), exact and wildcard: these win over ACME */
  private hand = { exact: new Set<string>(), wildcard: new Set<string>() };
  /** TLS-ALPN-01 answers by host name (set by the ACME manager while a challenge is pending) */
  challenge: (servername: string) => SecureContext | undefined = () => undefined;
  /** per handshake: the ALPN offer (acme-tls/1 or not), or which certificate SNI served before ALPN was known */
  private offers = new WeakMap<object, boolean | typeof CHALLENGE_SERVED | typeof OWN_SERVED>();

  rebuild(command: ReadonlyMap<string, ProxyCertificate>, config: ConfigCerts, acme: Iterable<{ host: string; context: SecureContext }> = []): void {
    const exact = new Map<string, SecureContext>();
    const wildcard = new Map<string, SecureContext>();
    const cache = new Map<string, SecureContext>();
    const add = (names: readonly string[], ctx: SecureContext) => {
      for (const raw of names) {
        const name = raw.toLowerCase();
        if (name.startsWith("*.")) {
          if (!wildcard.has(name.slice(2))) wildcard.set(name.slice(2), ctx);
        } else if (!exact.has(name)) exact.set(name, ctx);
      }
    };
    for (const [fp, cert] of command) {
      let ctx = this.cache.get(fp);
      if (!ctx) {
        try {
          ctx = createSecureContext({ cert: [cert.certificate, ...cert.chain].join("\n"), key: cert.key });
        } catch {
          continue; // the command side validated it; a context that still fails is skipped
        }
      }
      cache.set(fp, ctx);
      add(cert.names, ctx);
    }
    for (const site of config.sites) add(site.names, site.context);
    this.hand = { exact: new Set(exact.keys()), wildcard: new Set(wildcard.keys()) };
    for (const c of acme) add([c.host], c.context); // after the hand-installed ones: those win
    this.exact = exact;
    this.wildcard = wildcard;
    this.cache = cache;
    this.fallback = config.default?.context;
  }

  /** a hand-installed certificate (command socket or config, not the default) covers this name */
  handInstalled(name: string): boolean {
    const dot = name.indexOf(".");
    return this.hand.exact.has(name) || (dot > 0 && this.hand.wildcard.has(name.slice(dot + 1)));
  }

  /** a certificate for this name other than the default one */
  hasNamed(name: string): boolean {
    if (name.startsWith("*.")) return this.wildcard.has(name.slice(2));
    const dot = name.indexOf(".");
    return this.exact.has(name) || (dot > 0 && this.wildcard.has(name.slice(dot + 1)));
  }

  select(servername: string): SecureContext | undefined {
    const name = servername.toLowerCase();
    const exact = this.exact.get(name);
    if (exact) return exact;
    const dot = name.indexOf(".");
    if (dot > 0) {
      const wild = this.wildcard.get(name.slice(dot + 1));
      if (wild) return wild;
    }
    return this.fallback;
  }

  /**
   * The TLS-ALPN-01 challenge certificate goes only to a validator. node:tls negotiates ALPN before SNI in
   * TLS 1.3 (`alpn` below has then recorded the offer on the socket), after it in TLS 1.2. A client that
   * offered acme-tls/1 gets the challenge; one whose offer is not known yet gets it only for a host with no
   * certificate of its own, so a renewal never shows ordinary clients the self-signed certificate.
   */
  sni(socket: object, servername: string, cb: (err: Error | null, ctx?: SecureContext) => void): void {
    const name = servername.toLowerCase();
    const offer = this.offers.get(socket);
    const challenge = offer === false ? undefined : this.challenge(name);
    if (challenge && (offer === true || !this.hasNamed(name))) {
      this.offers.set(socket, CHALLENGE_SERVED);
      return cb(null, challenge);
    }
    const ctx = this.select(name);
    if (!ctx) return cb(new Error("no certificate for this name"));
    if (offer === undefined) this.offers.set(socket, OWN_SERVED);
    cb(null, ctx);
  }

  /** node:tls's ALPNCallback: http/1.1, or acme-tls/1 for a validator when TLS-ALPN-01 is on (else a fatal alert) */
  alpn(socket: object, protocols: readonly string[], acmeTls: boolean): string | undefined {
    const sniFirst = this.offers.get(socket);
    if (acmeTls && protocols.includes(ACME_TLS)) {
      // TLS 1.2 chose the host's own certificate before the offer was known: refuse rather than answer wrongly
      if (sniFirst === OWN_SERVED) return undefined;
      if (sniFirst === undefined) this.offers.set(socket, true);
      return ACME_TLS;
    }
    if (sniFirst === undefined) this.offers.set(socket, false);
    return protocols.includes("http/1.1") ? "http/1.1" : undefined;
  }
}
