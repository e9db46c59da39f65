// The proxy's entry: the data plane (ProxyComponent) and the command socket (its Component, the
// client the CLI uses, the message and state shapes). The daemon wires the two halves together.
export { ProxyComponent, createProxy, type ProxyOptions } from "./proxy.js";
export type * from "./types.js";
export { CommandComponent, commandComponent, commandRoutes, STATE_FILE, type RoutesProvider } from "./command/index.js";
export { CommandClient } from "./command/client.js";
export type { Answer } from "./command/messages.js";
export type { StateDump } from "./command/state.js";
