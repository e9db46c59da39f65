export { sendJson, sendError, readBody, readJson, HttpError } from "./json.js";
export { listenUnix, socketIsLive, type UnixListenResult } from "./unix-listener.js";
export { listen } from "./listen.js";
