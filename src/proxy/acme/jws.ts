// JWS (RFC 7515, flattened JSON) with ES256 as ACME wants it (RFC 8555 §6.2): `jwk` for new-account,
// `kid` after; the JWK thumbprint (RFC 7638) for key authorizations.
import { createHash, sign, type KeyObject } from "node:crypto";

export interface Jwk {
  crv: string;
  kty: string;
  x: string;
  y: string;
}

export function publicJwk(key: KeyObject): Jwk {
  const j = key.export({ format: "jwk" }) as Partial<Jwk>;
  if (j.kty !== "EC" || j.crv !== "P-256" || !j.x || !j.y) throw new TypeError("ACME account keys are P-256");
  return { crv: "P-256", kty: "EC", x: j.x, y: j.y };
}

/** RFC 7638: SHA-256 over the required members in lexical order, base64url. */
export function thumbprint(jwk: Jwk): string {
  const canon = `{"crv":"${jwk.crv}","kty":"${jwk.kty}","x":"${jwk.x}","y":"${jwk.y}"}`;
  return createHash("sha256").update(canon).digest("base64url");
}

export interface JwsHeader {
  nonce: string;
  url: string;
  jwk?: Jwk;
  kid?: string;
}

/** payload undefined: POST-as-GET (empty payload). */
export function signJws(key: KeyObject, header: JwsHeader, payload: unknown): string {
  const protectedB64 = Buffer.from(JSON.stringify({ alg: "ES256", ...header })).toString("base64url");
  const payloadB64 = payload === undefined ? "" : Buffer.from(JSON.stringify(payload)).toString("base64url");
  const signature = sign("sha256", Buffer.from(`${protectedB64}.${payloadB64}`), { key, dsaEncoding: "ieee-p1363" }).toString("base64url");
  return JSON.stringify({ protected: protectedB64, payload: payloadB64, signature });
}
