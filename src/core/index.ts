export { createCoreComponent } from "./server.js";
export { keyPath, readKey } from "./key.js";
