// Which configured listeners are unavailable, each as one line an operator can act on.
import type { Component } from "../component/index.js";

type Status = Record<string, unknown>;

/** "core 127.0.0.1:8000: address already in use", one per unavailable listener (nested ones
 *  — the proxy's http and https — each on their own). [] when every configured one is up. */
export function unavailableListeners(components: readonly Component[]): string[] {
  const out: string[] = [];
  for (const c of components) {
    let s: Status;
    try {
      s = c.status();
    } catch (err) {
      out.push(`${c.name}: ${(err as Error).message}`);
      continue;
    }
    const nested = Object.entries(s).filter(([, v]) => isStatus(v) && v.state === "unavailable") as [string, Status][];
    if (nested.length) for (const [key, v] of nested) out.push(describe(`${c.name} ${key}`, v));
    else if (s.state === "unavailable") out.push(describe(c.name, s));
  }
  return out;
}

function isStatus(v: unknown): v is Status {
  return v !== null && typeof v === "object" && "state" in v;
}

function describe(name: string, s: Status): string {
  const reason = String(s.reason ?? s.error ?? "unavailable");
  const address = typeof s.address === "string" ? s.address : "";
  // reasons usually begin with the address already ("127.0.0.1:80: address already in use")
  return address && !reason.includes(address) ? `${name} ${address}: ${reason}` : `${name}: ${reason}`;
}
