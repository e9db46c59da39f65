// The manager's entry: the daemon component.
export { managerComponent, type ManagerExtension, type ManagerOptions } from "./component.js";
