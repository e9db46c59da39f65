// The small text answers the proxy generates itself (no route, no backend, bad request, ...).
import { httpDate, type Incoming } from "../http/server-conn.js";

const REASONS: Record<number, string> = {
  400: "Bad Request",
  404: "Not Found",
  408: "Request Timeout",
  417: "Expectation Failed",
  431: "Request Header Fields Too Large",
  501: "Not Implemented",
  502: "Bad Gateway",
  503: "Service Unavailable",
  504: "Gateway Timeout",
};

const DETAILS: Record<number, string> = {
  404: ": no route for this host and path",
  502: ": the backend could not be reached",
  503: ": no backend available",
  504: ": the backend did not answer in time",
};

const BODIES = new Map<number, Buffer>();

export function reasonOf(status: number): string {
  return REASONS[status] ?? "Error";
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

/** The same answer as raw bytes for a socket that is closed after it (upgrade requests). */
export function rawStatus(status: number): string {
  const body = bodyOf(status);
  return `HTTP/1.1 ${status} ${reasonOf(status)}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body.toString("latin1")}`;
}
