// The state file format (SAVE_STATE, LOAD_STATE and the automatic <state_dir>/proxy-state):
// the requests that rebuild the state, one JSON request per line, each line ending in "\n\0",
// ids SAVE-<n>, in the spec's shape {id, version, data: {type, data}}.
import { open } from "node:fs/promises";
import { writeFileAtomic } from "../../store/index.js";
import { decodeRequest } from "./decode.js";
import { isStateOrder, type StateOrder } from "./messages.js";
import type { ProxyState } from "./state.js";
import { formatHostPort } from "../../base/index.js";

export const MAX_STATE_FILE_BYTES = 256 * 1024 * 1024;

/** One state order as a spec-shaped request. */
export function encodeOrder(order: StateOrder, id: string): Record<string, unknown> {
  return { id, version: 0, data: { type: order.type, data: payloadOf(order) } };
}

function payloadOf(o: StateOrder): unknown {
  switch (o.type) {
    case "ADD_APPLICATION":
      return { app_id: o.app.appId, sticky_session: o.app.stickySession, https_redirect: o.app.httpsRedirect, load_balancing_policy: o.app.loadBalancing };
    case "REMOVE_APPLICATION":
      return { app_id: o.appId };
    case "ADD_HTTP_FRONT":
    case "REMOVE_HTTP_FRONT":
      return { app_id: o.front.appId, hostname: o.front.hostname, path_begin: o.front.pathBegin };
    case "ADD_HTTPS_FRONT":
    case "REMOVE_HTTPS_FRONT":
      return { app_id: o.front.appId, hostname: o.front.hostname, path_begin: o.front.pathBegin, fingerprint: o.front.fingerprint };
    case "ADD_BACKEND":
    case "REMOVE_BACKEND": {
      const b = o.backend;
      return { app_id: b.appId, ...(b.backendId !== undefined && { backend_id: b.backendId }), address: formatHostPort(b.ip, b.port) };
    }
    case "ADD_CERTIFICATE":
      return { certificate: o.cert.certificate, certificate_chain: o.cert.chain, key: o.cert.key, names: o.cert.names };
    case "REMOVE_CERTIFICATE":
      return o.fingerprint;
  }
}

export function serializeState(state: ProxyState): { text: string; count: number } {
  const orders = state.toOrders();
  const text = orders.map((o, i) => JSON.stringify(encodeOrder(o, `SAVE-${i + 1}`)) + "\n\0").join("");
  return { text, count: orders.length };
}

export async function saveState(state: ProxyState, path: string): Promise<number> {
  const { text, count } = serializeState(state);
  await writeFileAtomic(path, text, 0o600);
  return count;
}

export type ParsedFile = { ok: true; orders: StateOrder[] } | { ok: false; message: string };

/** Decode every record of a state file; the first bad one fails the whole file. */
export function parseStateFile(text: string): ParsedFile {
  const records = text.split("\0");
  const orders: StateOrder[] = [];
  for (const [i, raw] of records.entries()) {
    const record = raw.trim();
    if (record === "") {
      if (i === records.length - 1) break; // after the last "\0"
      return { ok: false, message: `line ${i + 1}: empty record` };
    }
    const d = decodeRequest(record);
    // JSON.parse's message quotes the input: a file that is not a state file (LOAD_STATE /etc/shadow)
    // must not have its content echoed back
    if (!d.ok) return { ok: false, message: `line ${i + 1}: ${d.message.startsWith("invalid JSON") ? "not a JSON command: not a state file" : d.message}` };
    if (!isStateOrder(d.order)) return { ok: false, message: `line ${i + 1}: ${d.order.type} is not a state change` };
    orders.push(d.order);
  }
  return { ok: true, orders };
}

/** Validate a whole file against a copy of `state`; nothing is applied when any record fails. */
export function mergeOrders(state: ProxyState, orders: StateOrder[]): { ok: true; next: ProxyState; changes: number } | { ok: false; message: string } {
  const next = state.clone();
  let changes = 0;
  for (const [i, order] of orders.entries()) {
    const out = next.apply(order);
    if (!out.ok) return { ok: false, message: `line ${i + 1}: ${order.type}: ${out.message}` };
    if (out.changed) changes++;
  }
  return { ok: true, next, changes };
}

export async function readStateFile(path: string): Promise<ParsedFile> {
  let bytes: Buffer;
  try {
    const fh = await open(path, "r");
    try {
      const st = await fh.stat();
      if (!st.isFile()) return { ok: false, message: `${path} is not a regular file` };
      if (st.size > MAX_STATE_FILE_BYTES) return { ok: false, message: `${path} is larger than ${MAX_STATE_FILE_BYTES} bytes` };
      bytes = await fh.readFile();
    } finally {
      await fh.close();
    }
  } catch (err) {
    return { ok: false, message: `cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` };
  }
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    return { ok: false, message: `${path} is not valid UTF-8` };
  }
  const parsed = parseStateFile(text);
  return parsed.ok ? parsed : { ok: false, message: `${path}: ${parsed.message}` };
}

