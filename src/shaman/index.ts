// Shaman's entry: the service the daemon hands the manager (routes on its listener, GC timer) and the routes.
export { shamanService, type ShamanService } from "./service.js";
export { shamanRoutes, escapeHeader, MAX_CDF_BYTES, type ShamanDeps } from "./routes.js";
