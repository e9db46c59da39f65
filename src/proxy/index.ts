export { ProxyComponent, createProxy, type ProxyOptions } from "./proxy.js";
export { setCommandState, getCommandState, onCommandState, listRoutes, type RouteInfo } from "./state-registry.js";
export type * from "./types.js";
