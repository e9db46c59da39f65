// The daemon's interfaces, in start order. Each area adds its factory here.
import type { ComponentFactory } from "./context.js";
import { commandComponent } from "../proxy/command/index.js";

export const COMPONENTS: ComponentFactory[] = [
  commandComponent,
];
