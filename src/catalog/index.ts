// The catalog's entry: the live view of deployments and services built from Docker.
export type * from "./types.js";
export { Catalog, type CatalogOptions } from "./catalog.js";
export { WaiterList, type WaitResult, type WaitOutcome } from "./waiters.js";
export { membershipOf, type Membership } from "./membership.js";
export { parseIngress, labelBool, parsePort } from "./ingress.js";
export { compareContainers, publicProjection } from "./container.js";
