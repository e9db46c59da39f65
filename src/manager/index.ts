// The manager's entry: the daemon component.
export { managerComponent } from "./component.js";
