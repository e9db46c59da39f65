export { runDaemon } from "./daemon.js";
export type { DaemonContext, Component, ComponentFactory } from "./context.js";
