// The http floor's entry: JSON replies and errors, body limits, listeners (TCP, Unix, inherited), the HTTP/1.1 parsers and server connections.
export { sendJson, sendError, readBody, readJson, HttpError } from "./json.js";
export { listenUnix, socketIsLive, type UnixListenResult } from "./unix-listener.js";
export { listen } from "./listen.js";
export { type UnixHandover } from "./unix-listener.js";
export { HttpParseError, MessageParser, State, parseFields, headBlock, writeChunk, LAST_CHUNK, type BodySink, type Fields } from "./http1.js";
export { ClientConnSet, Incoming, httpDate, type ServerSettings, type ClientHandlers } from "./server-conn.js";
export { RequestParser, type RequestHead, type RequestSink } from "./request-parser.js";
