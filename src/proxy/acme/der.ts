// DER by hand for the two documents ACME needs from us: the CSR (PKCS#10) of finalize and the
// self-signed TLS-ALPN-01 certificate carrying the acmeIdentifier extension (RFC 8737).
import { createHash, randomBytes, sign, type KeyObject } from "node:crypto";

function len(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

export function tlv(tag: number, ...parts: Buffer[]): Buffer {
  const body = Buffer.concat(parts);
  return Buffer.concat([Buffer.from([tag]), len(body.length), body]);
}

export const seq = (...p: Buffer[]) => tlv(0x30, ...p);
export const set = (...p: Buffer[]) => tlv(0x31, ...p);
export const octets = (b: Buffer) => tlv(0x04, b);
export const utf8 = (s: string) => tlv(0x0c, Buffer.from(s, "utf8"));
export const bool = (v: boolean) => tlv(0x01, Buffer.from([v ? 0xff : 0]));
export const bits = (b: Buffer) => tlv(0x03, Buffer.from([0]), b);
/** explicit context tag [n], constructed */
export const ctx = (n: number, ...p: Buffer[]) => tlv(0xa0 | n, ...p);

/** a non-negative INTEGER from big-endian bytes (a leading 0 keeps it positive) */
export function uint(b: Buffer | number): Buffer {
  let v = typeof b === "number" ? Buffer.from([b]) : b;
  let i = 0;
  while (i < v.length - 1 && v[i] === 0) i++;
  v = v.subarray(i);
  return tlv(0x02, v[0]! & 0x80 ? Buffer.concat([Buffer.from([0]), v]) : v);
}

export function oid(dotted: string): Buffer {
  const n = dotted.split(".").map(Number);
  const out: number[] = [n[0]! * 40 + n[1]!];
  for (const v of n.slice(2)) {
    const chunk: number[] = [v & 0x7f];
    for (let x = Math.floor(v / 128); x > 0; x = Math.floor(x / 128)) chunk.unshift((x & 0x7f) | 0x80);
    out.push(...chunk);
  }
  return tlv(0x06, Buffer.from(out));
}

const ECDSA_SHA256 = seq(oid("1.2.840.10045.4.3.2"));
const CN = "2.5.4.3";
const SAN = "2.5.29.17";
const EXTENSION_REQUEST = "1.2.840.113549.1.9.14";
const ACME_IDENTIFIER = "1.3.6.1.5.5.7.1.31";

function name(cn: string): Buffer {
  // a CN longer than 64 characters is not allowed (RFC 5280 ub-common-name): leave it out
  return cn.length <= 64 ? seq(set(seq(oid(CN), utf8(cn)))) : seq();
}

function sanExtension(hosts: readonly string[]): Buffer {
  return seq(oid(SAN), octets(seq(...hosts.map((h) => tlv(0x82, Buffer.from(h, "ascii"))))));
}

function spki(key: KeyObject): Buffer {
  return key.export({ format: "der", type: "spki" }) as Buffer;
}

/** PKCS#10 request for `hosts` (first is the CN), signed ECDSA-SHA256 by the P-256 `key`. */
export function buildCsr(hosts: readonly string[], key: KeyObject, pub: KeyObject): Buffer {
  const attrs = ctx(0, seq(oid(EXTENSION_REQUEST), set(seq(sanExtension(hosts)))));
  const info = seq(uint(0), name(hosts[0]!), spki(pub), attrs);
  return seq(info, ECDSA_SHA256, bits(sign("sha256", info, key)));
}

function utcTime(d: Date): Buffer {
  const p = (n: number) => String(n).padStart(2, "0");
  const s = `${p(d.getUTCFullYear() % 100)}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}Z`;
  return tlv(0x17, Buffer.from(s, "ascii"));
}

/** The TLS-ALPN-01 certificate: self-signed, SAN = host, critical acmeIdentifier = SHA-256(keyAuthorization). */
export function buildAlpnCert(host: string, keyAuthorization: string, key: KeyObject, pub: KeyObject, now = Date.now()): Buffer {
  const digest = createHash("sha256").update(keyAuthorization).digest();
  const exts = seq(sanExtension([host]), seq(oid(ACME_IDENTIFIER), bool(true), octets(octets(digest))));
  const tbs = seq(
    ctx(0, uint(2)),
    uint(Buffer.concat([Buffer.from([1]), randomBytes(15)])),
    ECDSA_SHA256,
    name(host),
    seq(utcTime(new Date(now - 3600_000)), utcTime(new Date(now + 7 * 86400_000))),
    name(host),
    spki(pub),
    ctx(3, exts),
  );
  return seq(tbs, ECDSA_SHA256, bits(sign("sha256", tbs, key)));
}

export function pem(label: string, der: Buffer): string {
  const b64 = der.toString("base64").replace(/.{1,64}/g, "$&\n");
  return `-----BEGIN ${label}-----\n${b64}-----END ${label}-----\n`;
}
