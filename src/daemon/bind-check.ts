// Before a reload succeeds: can every listener whose address it changes bind there?
import { lstat } from "node:fs/promises";
import type { StaticConfig } from "../config/index.js";
import type { Component } from "../component/index.js";
import { parseHostPort } from "../base/index.js";
import { probeBind, socketIsLive } from "../http/index.js";

const TCP_KEY = /_listen$/;
const UNIX_KEYS = new Set(["query_socket_path", "admin_socket_path", "command_socket_path"]);

/**
 * Errors for the changed listener keys (`*_listen`, the daemon's socket paths) whose new address
 * cannot be bound now: a port another process holds (or needs privileges), a live socket of
 * another process or a non-socket file at the path. A port this daemon holds itself is not
 * probed (it is free once the restart releases it).
 */
export async function checkMovedListeners(changed: readonly string[], next: StaticConfig, components: readonly Component[]): Promise<string[]> {
  const values = next as unknown as Record<string, unknown>;
  const own = ownPorts(components);
  const errors: string[] = [];
  for (const key of changed) {
    const value = values[key];
    if (typeof value !== "string" || value === "") continue; // disabled: nothing to bind
    if (TCP_KEY.test(key)) {
      const hp = parseHostPort(value);
      if (!hp || hp.port === 0 || own.has(hp.port)) continue;
      const problem = await probeBind(hp.host, hp.port);
      if (problem) errors.push(`${key} = ${value}: cannot bind: ${problem}`);
    } else if (UNIX_KEYS.has(key)) {
      const st = await lstat(value).catch(() => undefined);
      if (st && !st.isSocket()) errors.push(`${key} = ${value}: exists and is not a socket`);
      else if (st && (await socketIsLive(value))) errors.push(`${key} = ${value}: in use by another process`);
    }
  }
  return errors;
}

function ownPorts(components: readonly Component[]): Set<number> {
  const ports = new Set<number>();
  for (const c of components)
    for (const { server } of c.listeners?.().values() ?? []) {
      const a = server.address();
      if (a && typeof a === "object") ports.add(a.port);
    }
  return ports;
}
