// The meeting point of the proxy's two halves. The command socket (src/proxy/command) owns the
// run-time state and registers its read view here; the data plane reads it from here and
// registers the merged route listing the command socket serves (`stevedore proxy routes`).
// Neither half imports the other.
import { EventEmitter } from "node:events";
import type { ProxyApp, ProxyBackend, ProxyCertificate, ProxyStateView, HttpFront, HttpsFront, RouteInfo } from "./types.js";

export type { RouteInfo };

class EmptyState extends EventEmitter<{ change: [] }> implements ProxyStateView {
  apps(): ReadonlyMap<string, ProxyApp> { return new Map(); }
  httpFronts(): readonly HttpFront[] { return []; }
  httpsFronts(): readonly HttpsFront[] { return []; }
  backends(): readonly ProxyBackend[] { return []; }
  certificates(): ReadonlyMap<string, ProxyCertificate> { return new Map(); }
}

const registry = new EventEmitter<{ state: [ProxyStateView] }>();
let commandState: ProxyStateView = new EmptyState();
let routesProvider: (() => RouteInfo[]) | undefined;

/** The command socket registers its state's read view (filled in place when it loads). */
export function setCommandState(view: ProxyStateView): void {
  commandState = view;
  registry.emit("state", view);
}

export function getCommandState(): ProxyStateView {
  return commandState;
}

/** The proxy follows a replaced view (the command side may register after the proxy started). */
export function onCommandState(fn: (view: ProxyStateView) => void): () => void {
  registry.on("state", fn);
  return () => registry.off("state", fn);
}

/** The data plane registers its table; `undefined` unregisters. */
export function setRoutesProvider(fn: (() => RouteInfo[]) | undefined): void {
  routesProvider = fn;
}

/** The merged routing table with each route's source; `fallback()` (default []) when the data plane does not run. */
export function listRoutes(fallback: () => RouteInfo[] = () => []): RouteInfo[] {
  return routesProvider ? routesProvider() : fallback();
}
