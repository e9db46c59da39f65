// The daemon's interfaces, in start order. Each area adds its factory here.
import type { ComponentFactory } from "./context.js";
import { adminComponent } from "../admin/index.js";
import { createCoreComponent } from "../core/index.js";

export const COMPONENTS: ComponentFactory[] = [
  adminComponent,
  createCoreComponent,
];
