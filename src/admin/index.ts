// The admin socket's entry: its Component, the client, the line protocol, the status reply.
export { adminComponent, AdminSocket, MAX_ADMIN_CONNECTIONS } from "./server.js";
export { adminCall, AdminUnreachable } from "./client.js";
export { MAX_LINE_BYTES, LINE_TIMEOUT_MS, parseLine, dispatch, LineReader, encodeReply, type Reply, type Handler } from "./protocol.js";
export { statusReply, countSites } from "./commands.js";
export { redact, configReply, REDACTED } from "./introspect.js";
