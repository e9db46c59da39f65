// src/http: HTTP building blocks (our HTTP/1.1 server side, the JSON API server, listeners).
export { HttpError, errorBody, sendJsonBody, refuseJson } from "./json.js";
export { createApiServer, type ApiServer, type ApiServerOptions, type ApiRequest, type ApiResponse, type ApiHandler, type ApiRoute, type ApiLimits, type ApiErrorStatus, type ApiServerState } from "./api-server.js";
export { listenUnix, socketIsLive, type UnixListenResult } from "./unix-listener.js";
export { listen } from "./listen.js";
