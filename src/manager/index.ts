// The manager's entry: the daemon component.
export { managerComponent, type ManagerExtension, type ManagerExtensionApi, type ManagerOptions } from "./component.js";
export type { UserAuth } from "./auth.js";
