// The core API's entry: its Component and the core key.
export { createCoreComponent } from "./server.js";
export { keyPath, readKey } from "./key.js";
