// The http floor's entry: our HTTP/1.1 server side, the JSON API server, JSON errors, listeners (TCP, Unix, inherited).
export { HttpError, errorBody, sendJsonBody, refuseJson } from "./json.js";
export { createApiServer, optionalJsonObject, type ApiServer, type ApiServerOptions, type ApiRequest, type ApiResponse, type ApiHandler, type ApiRoute, type ApiLimits, type ApiErrorStatus, type ApiServerState } from "./api-server.js";
export { listenUnix, socketIsLive, unsafeSocketDir, type UnixListenResult } from "./unix-listener.js";
export { listen, describeBindError, probeBind } from "./listen.js";
export { guardTlsHandshakes, type TlsGuard, type TlsGuardOptions } from "./tls-guard.js";
export { type UnixHandover, type UnixBindHooks } from "./unix-listener.js";
export { HttpParseError, MessageParser, State, parseFields, headBlock, writeChunk, LAST_CHUNK, type BodySink, type Fields } from "./http1.js";
export { ClientConnSet, Incoming, httpDate, type ServerSettings, type ClientHandlers } from "./server-conn.js";
export { RequestParser, type RequestHead, type RequestSink } from "./request-parser.js";
