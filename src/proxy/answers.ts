// The small text answers the proxy generates itself (no route, no backend, bad request, ...).
import { STATUS_CODES } from "node:http";
import type { Socket } from "node:net";
import { httpDate, type Incoming } from "../http/index.js";
import { headBlock } from "../http/index.js";

const DETAILS: Record<number, string> = {
  404: ": no route for this host and path",
  502: ": the backend could not be reached",
  503: ": no backend available",
  504: ": the backend did not answer in time",
};

const BODIES = new Map<number, Buffer>();

function reasonOf(status: number): string {
  return STATUS_CODES[status] ?? "Error";
}

function bodyOf(status: number): Buffer {
  let body = BODIES.get(status);
  if (!body) BODIES.set(status, (body = Buffer.from(`${status} ${reasonOf(status)}${DETAILS[status] ?? ""}\n`)));
  return body;
}

/** Answer a request with a small text body; an answer already under way is cut instead. */
export function sendStatus(inc: Incoming, status: number): void {
  if (inc.headersSent) return inc.destroy();
  const body = bodyOf(status);
  inc.answer(status, reasonOf(status), ["Date", httpDate(), "Content-Type", "text/plain; charset=utf-8", "Content-Length", String(body.length), "Cache-Control", "no-store"], body);
}

/** The same answer on a raw socket (upgrade requests), which is then closed. */
export function refuseRaw(socket: Socket, status: number): void {
  const body = bodyOf(status);
  const head = headBlock(`HTTP/1.1 ${status} ${reasonOf(status)}`, ["Content-Type", "text/plain; charset=utf-8", "Content-Length", String(body.length), "Connection", "close"]);
  socket.end(head + body.toString("latin1"), "latin1", () => socket.destroy());
}
