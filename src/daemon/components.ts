// The daemon's interfaces, in start order. Each area adds its factory here.
import type { ComponentFactory } from "./context.js";
import { queryComponent } from "../query/index.js";

export const COMPONENTS: ComponentFactory[] = [
  queryComponent,
];
