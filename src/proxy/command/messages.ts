// The command protocol's requests after decoding (every accepted wire shape maps to one of these)
// and the answers (stevedore(8), PROXY, Command socket).
import type { HttpFront, HttpsFront, LoadBalancing } from "../types.js";

export type Status = "Ok" | "Error" | "Processing";

export interface Answer {
  id: string;
  version: 0;
  status: Status;
  message: string;
  data?: unknown;
}

export function answer(id: string, status: Status, message: string, data?: unknown): Answer {
  return data === undefined ? { id, version: 0, status, message } : { id, version: 0, status, message, data };
}

export interface BackendSpec {
  appId: string;
  /** undefined when the request named none: then it is "ip:port" and removal matches by address */
  backendId: string | undefined;
  ip: string;
  port: number;
}

export interface CertificateSpec {
  certificate: string;
  chain: string[];
  key: string;
  /** [] = take the names from the certificate */
  names: string[];
}

export interface AppSpec {
  appId: string;
  stickySession: boolean;
  httpsRedirect: boolean;
  loadBalancing: LoadBalancing;
}

/** A request that changes the state (what SAVE_STATE writes and LOAD_STATE accepts). */
export type StateOrder =
  | { type: "ADD_APPLICATION"; app: AppSpec }
  | { type: "REMOVE_APPLICATION"; appId: string }
  | { type: "ADD_HTTP_FRONT" | "REMOVE_HTTP_FRONT"; front: HttpFront }
  | { type: "ADD_HTTPS_FRONT"; front: HttpsFront }
  | { type: "REMOVE_HTTPS_FRONT"; front: HttpFront & { fingerprint: string | undefined } }
  | { type: "ADD_BACKEND" | "REMOVE_BACKEND"; backend: BackendSpec }
  | { type: "ADD_CERTIFICATE"; cert: CertificateSpec }
  | { type: "REMOVE_CERTIFICATE"; fingerprint: string };

export type MasterOrder =
  | { type: "SAVE_STATE" | "LOAD_STATE"; path: string }
  | { type: "DUMP_STATE" | "STATUS" | "SOFT_STOP" | "HARD_STOP" | "UPGRADE_MASTER" | "ROUTES" | "CERTS" };

export type Order = StateOrder | MasterOrder;

export const STATE_ORDER_TYPES = new Set<string>([
  "ADD_APPLICATION", "REMOVE_APPLICATION",
  "ADD_HTTP_FRONT", "REMOVE_HTTP_FRONT", "ADD_HTTPS_FRONT", "REMOVE_HTTPS_FRONT",
  "ADD_BACKEND", "REMOVE_BACKEND", "ADD_CERTIFICATE", "REMOVE_CERTIFICATE",
]);
export const MASTER_ORDER_TYPES = new Set<string>([
  "SAVE_STATE", "LOAD_STATE", "DUMP_STATE", "STATUS", "SOFT_STOP", "HARD_STOP", "UPGRADE_MASTER", "ROUTES", "CERTS",
]);

export function isStateOrder(o: Order): o is StateOrder {
  return STATE_ORDER_TYPES.has(o.type);
}
