// The daemon's interfaces, in start order. Each area adds its factory here.
import type { ComponentFactory } from "./context.js";
import { adminComponent } from "../admin/index.js";
import { createCoreComponent } from "../core/index.js";
import { commandComponent } from "../proxy/command/index.js";
import { queryComponent } from "../query/index.js";

export const COMPONENTS: ComponentFactory[] = [
  // first: the proxy's run-time state is loaded before the data plane starts routing
  commandComponent,
  adminComponent,
  createCoreComponent,
  queryComponent,
];
