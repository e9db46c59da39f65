// The query socket's entry: its Component, the HTTP server, the revision bodies, the client.
export { queryComponent } from "./component.js";
export { QueryServer, LIMITS, type QueryServerOptions } from "./server.js";
export { RevisionBodies } from "./bodies.js";
export { queryGet, QueryClientError } from "./client.js";
