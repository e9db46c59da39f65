// Certificates as the command socket stores them: keyed by the lowercase hex SHA-256 of the leaf's
// DER; the key must parse and match the leaf; names come from the request or the certificate.
import { X509Certificate, createHash, createPrivateKey } from "node:crypto";
import { isHostPattern } from "../../base/index.js";
import type { ProxyCertificate } from "../types.js";
import type { CertificateSpec } from "./messages.js";

export function fingerprintOf(cert: X509Certificate): string {
  return createHash("sha256").update(cert.raw).digest("hex");
}

/** Parse and check a certificate request; a string is the error (nothing is stored then). */
export function parseCertificate(spec: CertificateSpec): ProxyCertificate | string {
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(spec.certificate);
  } catch {
    return "certificate does not parse as a PEM X.509 certificate";
  }
  for (const [i, pem] of spec.chain.entries()) {
    try {
      new X509Certificate(pem);
    } catch {
      return `certificate_chain[${i}] does not parse as a PEM X.509 certificate`;
    }
  }
  let matches: boolean;
  try {
    matches = leaf.checkPrivateKey(createPrivateKey(spec.key));
  } catch {
    return "key does not parse as a PEM private key";
  }
  if (!matches) return "key does not match the certificate";
  const names = spec.names.length ? spec.names : namesOf(leaf);
  return { fingerprint: fingerprintOf(leaf), certificate: spec.certificate, chain: spec.chain, key: spec.key, names: [...new Set(names)] };
}

/** DNS names of the SAN extension, else the subject CN; only valid host patterns, lower-cased. */
export function namesOf(cert: X509Certificate): string[] {
  const san = (cert.subjectAltName ?? "")
    .split(", ")
    .filter((e) => e.startsWith("DNS:"))
    .map((e) => e.slice(4).toLowerCase());
  const cn = /(?:^|\n)CN=([^\n]+)/.exec(cert.subject)?.[1]?.toLowerCase();
  const names = san.length ? san : cn ? [cn] : [];
  return names.filter((n) => isHostPattern(n));
}
