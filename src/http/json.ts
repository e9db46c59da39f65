// The one JSON error shape of our HTTP APIs ({"error": "..."}), HttpError (THE error for handlers),
// and JSON answers on our own server side (server-conn.ts).
import { STATUS_CODES } from "node:http";
import { httpDate, type Incoming } from "./server-conn.js";

export class HttpError extends Error {
  constructor(readonly status: number, message: string, readonly headers: Record<string, string> = {}) {
    super(message);
  }
}

/** `{"error": message}` */
export function errorBody(message: string): Buffer {
  return Buffer.from(JSON.stringify({ error: message }));
}

/** Answer with a JSON body already serialized (HEAD: the body is not sent). `extra`: name, value, ... */
export function sendJsonBody(inc: Incoming, status: number, body: Buffer, extra?: readonly string[]): void {
  const headers = ["Date", httpDate(), "Content-Type", "application/json", "Content-Length", String(body.length)];
  if (extra) headers.push(...extra);
  inc.answer(status, STATUS_CODES[status] ?? "", headers, body);
}

/** the requests the HTTP layer refuses itself (see ClientHandlers.refuse), in the JSON error shape */
const REFUSED: Record<number, Buffer> = {
  400: errorBody("bad request"),
  408: errorBody("request timeout"),
  417: errorBody("expectation failed"),
  431: errorBody("request headers too large"),
  501: errorBody("unsupported transfer coding"),
};

/** ClientHandlers.refuse for a JSON API */
export function refuseJson(inc: Incoming, status: number): void {
  sendJsonBody(inc, status, REFUSED[status] ?? errorBody((STATUS_CODES[status] ?? "error").toLowerCase()));
}
