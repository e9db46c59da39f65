// The daemon's interfaces, in start order. Each area adds its factory here.
import type { ComponentFactory } from "./context.js";
import { createCoreComponent } from "../core/index.js";

export const COMPONENTS: ComponentFactory[] = [
  createCoreComponent,
];
