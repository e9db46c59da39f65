export type * from "./types.js";
export { Catalog, type CatalogOptions } from "./catalog.js";
