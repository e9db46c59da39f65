// Header rewriting between client and upstream, on raw header arrays (name, value, ...):
// one pass, no header objects. Hop-by-hop headers are dropped (Connection and the names it
// lists, Keep-Alive, Proxy-*, TE, Trailer, Transfer-Encoding, Upgrade), except that a WebSocket
// upgrade keeps `Connection: Upgrade` + `Upgrade: websocket`.

export interface ScannedRequest {
  /** headers for the upstream request */
  out: string[];
  /** the Host header; undefined when missing or repeated */
  host: string | undefined;
  /** the Cookie header(s), joined */
  cookie: string | undefined;
  /** the Upgrade header asks for a WebSocket */
  websocket: boolean;
}

/** Lower-case names from a Connection header other than the usual tokens, or undefined. */
function connectionNames(raw: readonly string[]): string[] | undefined {
  let names: string[] | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const k = raw[i]!;
    if (k.length !== 10 || k.toLowerCase() !== "connection") continue;
    for (const token of raw[i + 1]!.split(",")) {
      const t = token.trim().toLowerCase();
      if (t === "" || t === "keep-alive" || t === "close" || t === "upgrade") continue;
      (names ??= []).push(t);
    }
  }
  return names;
}

export function scanRequest(raw: readonly string[], clientIp: string, proto: "http" | "https"): ScannedRequest {
  const named = connectionNames(raw);
  const out: string[] = [];
  let host: string | undefined;
  let hostCount = 0;
  let chunked = false;
  let cookie: string | undefined;
  let xff: string | undefined;
  let upgrade: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const k = raw[i]!;
    const v = raw[i + 1]!;
    const lk = k.toLowerCase();
    switch (lk) {
      case "host":
        host = v;
        hostCount++;
        out.push(k, v);
        continue;
      case "content-length": // framing: kept even if Connection names it
        out.push(k, v);
        continue;
      case "transfer-encoding": // the parser admitted only "chunked"
        chunked = true;
        continue;
      case "cookie":
        cookie = cookie === undefined ? v : `${cookie}; ${v}`;
        out.push(k, v);
        continue;
      case "x-forwarded-for":
        xff = xff === undefined ? v : `${xff}, ${v}`;
        continue;
      case "upgrade":
        upgrade = v;
        continue;
      // answered by this proxy (100-continue) or set below
      case "expect":
      case "x-forwarded-proto":
      case "x-forwarded-host":
      case "connection":
      case "keep-alive":
      case "te":
      case "trailer":
        continue;
    }
    if (lk.startsWith("proxy-")) continue;
    if (named !== undefined && named.includes(lk)) continue;
    out.push(k, v);
  }
  if (hostCount !== 1) host = undefined;
  out.push("X-Forwarded-For", xff === undefined ? clientIp : `${xff}, ${clientIp}`, "X-Forwarded-Proto", proto);
  if (host !== undefined) out.push("X-Forwarded-Host", host);
  const websocket = upgrade !== undefined && upgrade.trim().toLowerCase() === "websocket";
  if (websocket) out.push("Connection", "Upgrade", "Upgrade", "websocket");
  // the body is re-framed upstream; say so explicitly (GET with a chunked body is legal)
  if (chunked) out.push("Transfer-Encoding", "chunked");
  return { out, host, cookie, websocket };
}

/** Response headers for the client: hop-by-hop ones dropped (src/http/server-conn.ts re-frames the body). */
export function filterResponse(raw: readonly string[], keepUpgrade = false): string[] {
  const named = connectionNames(raw);
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const k = raw[i]!;
    const lk = k.toLowerCase();
    switch (lk) {
      case "connection":
      case "upgrade":
        if (keepUpgrade) out.push(k, raw[i + 1]!);
        continue;
      case "keep-alive":
      case "te":
      case "trailer":
      case "transfer-encoding":
        continue;
    }
    if (lk.startsWith("proxy-")) continue;
    if (named !== undefined && named.includes(lk)) continue;
    out.push(k, raw[i + 1]!);
  }
  return out;
}

/** The value of one cookie in a Cookie header, undefined when absent. */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  if (header === undefined) return undefined;
  let at = 0;
  while (at < header.length) {
    const semi = header.indexOf(";", at);
    const end = semi < 0 ? header.length : semi;
    const eq = header.indexOf("=", at);
    if (eq > 0 && eq < end && header.slice(at, eq).trim() === name) {
      const value = header.slice(eq + 1, end).trim();
      try {
        return decodeURIComponent(value);
      } catch {
        return undefined;
      }
    }
    at = end + 1;
  }
  return undefined;
}

/** The client address for X-Forwarded-For (IPv4-mapped IPv6 shown as IPv4). */
export function clientAddress(addr: string | undefined): string {
  if (!addr) return "unknown";
  return addr.startsWith("::ffff:") && addr.includes(".") ? addr.slice(7) : addr;
}
