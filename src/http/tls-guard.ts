// TLS handshake guard: a handshake finishes within a bounded time, stalled ones never keep new clients out.
import type { Socket } from "node:net";
import type { Server as TlsServer, TLSSocket } from "node:tls";
import { log } from "../log.js";

export interface TlsGuardOptions {
  /** log name ("proxy https", "core API") */
  name: string;
  /** total time from accept to a finished handshake (not an idle time: trickled bytes do not extend it) */
  handshakeMs(): number;
}

/** What a guard counts, for tests and status. */
export interface TlsGuard {
  /** connections whose handshake has not finished */
  pending(): number;
}

const key = (s: { remoteAddress?: string; remotePort?: number }) => `${s.remoteAddress}|${s.remotePort}`;

/**
 * Guard `server`'s handshakes. Node's own handshakeTimeout is an idle time and, on Node 20, only
 * reports (tlsClientError) without destroying the socket; so:
 * - a socket whose handshake has not finished `handshakeMs` after accept is destroyed;
 * - a failed handshake (tlsClientError) is logged at debug (SNI when known, client, error) and destroyed;
 * - at `server.maxConnections`, accepting a connection evicts the oldest unfinished handshake, so a
 *   slot stays free for the next client: stalled handshakes never hold the limit against clients that
 *   finish theirs in milliseconds. Finished connections are never evicted.
 */
export function guardTlsHandshakes(server: TlsServer, opts: TlsGuardOptions): TlsGuard {
  // accept order: the first entry is the oldest unfinished handshake
  const pending = new Map<string, Socket>();
  let open = 0;
  // a failed handshake's socket is already torn down (no remoteAddress): remember it from accept
  const clients = new WeakMap<Socket, string | undefined>();
  server.on("connection", (raw: Socket) => {
    const k = key(raw);
    const client = raw.remoteAddress;
    clients.set(raw, client);
    open++;
    pending.set(k, raw);
    const timer = setTimeout(() => {
      log.debug(`${opts.name} TLS handshake timed out`, { client, after_ms: opts.handshakeMs() });
      raw.destroy();
    }, opts.handshakeMs());
    timer.unref();
    raw.once("close", () => {
      open--;
      clearTimeout(timer);
      if (pending.get(k) === raw) pending.delete(k);
    });
    (raw as Socket & { handshakeTimer?: NodeJS.Timeout }).handshakeTimer = timer;
    const max = server.maxConnections;
    if (max > 0 && open >= max) evictOldest(raw);
  });
  const evictOldest = (except: Socket) => {
    for (const [k, s] of pending) {
      if (s === except) continue;
      pending.delete(k);
      log.debug(`${opts.name} connection limit reached: closing the oldest unfinished TLS handshake`, { client: s.remoteAddress });
      s.destroy();
      return;
    }
  };
  // before the listener's own handler: the handshake is done, the timer must not fire
  server.prependListener("secureConnection", (tls: TLSSocket) => {
    const k = key(tls);
    const raw = pending.get(k);
    if (!raw) return;
    pending.delete(k);
    clearTimeout((raw as Socket & { handshakeTimer?: NodeJS.Timeout }).handshakeTimer);
  });
  server.on("tlsClientError", (err: Error, tls: TLSSocket) => {
    const servername = (tls as TLSSocket & { servername?: string | false | null }).servername;
    // the TLSSocket wraps the accepted socket as _parent (Node internals; fall back to nothing)
    const raw = (tls as TLSSocket & { _parent?: Socket })._parent;
    const client = tls.remoteAddress ?? (raw ? clients.get(raw) : undefined);
    log.debug(`${opts.name} TLS handshake failed`, { sni: typeof servername === "string" ? servername : undefined, client, error: err.message });
    tls.destroy();
  });
  return { pending: () => pending.size };
}
