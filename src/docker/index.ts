// The Docker Engine client's entry: API calls, transport and version negotiation, errors, events.
export { DockerClient } from "./api.js";
export { DockerTransport, compareVersions, MIN_API, MAX_API } from "./client.js";
export { DockerError, DockerUnavailable, isNotFound } from "./errors.js";
export type * from "./types.js";
export { DockerEventStream, LineSplitter, parseEventLine, MAX_EVENT_LINE, type EventStreamHandlers, type EventStreamOptions } from "./events.js";
