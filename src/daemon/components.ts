// The daemon's interfaces, in start order. Each area adds its factory here.
import type { ComponentFactory } from "./context.js";
import { createProxy } from "../proxy/index.js";

export const COMPONENTS: ComponentFactory[] = [
  (ctx) => createProxy(ctx),
];
