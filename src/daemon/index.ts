// The daemon's entry: runDaemon (wiring, lifecycle, signals, reload, hand-over).
export { runDaemon } from "./daemon.js";
