export type * from "./types.js";
export { Catalog, type CatalogOptions } from "./catalog.js";
export { WaiterList, type WaitResult, type WaitOutcome } from "./waiters.js";
