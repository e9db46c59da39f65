// WebSocket tunnelling: forward the upgrade request, relay the backend's 101 answer, then pipe
// the two sockets both ways; either end closing (or idling past the timeout) closes both.
import { request } from "node:http";
import type { Duplex } from "node:stream";
import type { Socket } from "node:net";
import type { Route } from "./table.js";
import type { Upstream } from "./upstream.js";
import { filterResponse, type ScannedRequest } from "./headers.js";
import { MAX_ATTEMPTS, type ForwardSettings } from "./forward.js";
import { refuseRaw } from "./answers.js";
import { headBlock } from "../http/index.js";
import type { RequestHead } from "../http/index.js";

export interface TunnelSettings extends ForwardSettings {
  idleMs: number;
}

const statusLine = (status: number, message: string | undefined) => `HTTP/1.1 ${status} ${message ?? ""}`;

/** `tunnels` tracks open client sockets so a stop can close them. */
export function tunnel(req: RequestHead, client: Socket, first: Buffer, route: Route, scan: ScannedRequest, settings: TunnelSettings, tunnels: Set<Duplex>): void {
  let tried: Upstream[] | undefined;
  let attempts = 0;
  let done = false;
  tunnels.add(client);
  client.once("close", () => {
    done = true;
    tunnels.delete(client);
  });
  const fail = (status: number) => {
    if (done) return;
    done = true;
    refuseRaw(client, status);
  };
  const tryNext = () => {
    const member = route.pool.pick(tried, undefined);
    if (!member) return fail(attempts === 0 ? 503 : 502);
    attempts++;
    const up = member.up;
    up.active++;
    let connected = false;
    const upReq = request({ host: up.host, port: up.port, method: req.method, path: req.url, headers: scan.out, agent: false, setHost: false });
    const timer = setTimeout(() => upReq.destroy(), settings.connectTimeoutMs + settings.responseTimeoutMs);
    upReq.once("socket", (s) => s.once("connect", () => (connected = true)));
    upReq.once("close", () => {
      up.active--;
      clearTimeout(timer);
    });
    upReq.on("error", () => {
      if (done) return;
      if (!connected && attempts < MAX_ATTEMPTS) {
        (tried ??= []).push(up);
        return tryNext();
      }
      fail(502);
    });
    upReq.once("upgrade", (upRes, upSocket, upHead) => {
      clearTimeout(timer);
      if (done) return upSocket.destroy();
      client.write(headBlock(statusLine(101, upRes.statusMessage || "Switching Protocols"), filterResponse(upRes.rawHeaders, true)));
      if (upHead.length) client.write(upHead);
      if (first.length) upSocket.write(first);
      const close = () => {
        client.destroy();
        upSocket.destroy();
      };
      for (const s of [client as Socket, upSocket]) {
        s.setTimeout(settings.idleMs);
        s.once("timeout", close);
        s.once("close", close);
        s.once("end", close); // no half-open tunnels: either end finishing closes both
        s.on("error", close);
      }
      upSocket.pipe(client);
      client.pipe(upSocket);
    });
    upReq.once("response", (upRes) => {
      // the backend refused the upgrade: relay its answer and close
      clearTimeout(timer);
      if (done) return upRes.destroy();
      done = true;
      const headers = filterResponse(upRes.rawHeaders);
      headers.push("Connection", "close");
      client.write(headBlock(statusLine(upRes.statusCode ?? 502, upRes.statusMessage), headers));
      client.once("finish", () => client.destroy()); // the listener is half-open: do not wait for the client's end
      upRes.pipe(client);
      upRes.on("error", () => client.destroy());
    });
    upReq.end();
  };
  tryNext();
}
