// TRANSITIONAL: the one process-wide hand-over hook, for src/core/server.ts only (it has no
// context at hand where it listens). Remove this file once the core API runs on the JSON API
// server, which takes ctx.inherit; every other listener uses DaemonContext.inherit.
import type { Server } from "node:net";
import type { InheritFn } from "./context.js";

let processInherit: InheritFn | undefined;

/** The daemon registers its context's inherit() here at start (undefined: unregister). */
export function setProcessInherit(fn: InheritFn | undefined): void {
  processInherit = fn;
}

/** DaemonContext.inherit of the running daemon; false (bind as usual) when none runs. */
export function listenInherited(server: Server, name: string, address: string): Promise<boolean> {
  return processInherit ? processInherit(server, name, address) : Promise.resolve(false);
}
