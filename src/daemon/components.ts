// The daemon's interfaces, in start order. Each area adds its factory here.
import type { ComponentFactory } from "./context.js";
import { adminComponent } from "../admin/index.js";
import { createCoreComponent } from "../core/index.js";
import { commandComponent, commandRoutes } from "../proxy/command/index.js";
import { createProxy, listRoutes, setCommandState } from "../proxy/index.js";
import { queryComponent } from "../query/index.js";

export const COMPONENTS: ComponentFactory[] = [
  // first: the proxy's run-time state is loaded before the data plane starts routing.
  // The data plane reads that state through the registry, and answers `proxy routes` with its
  // merged table (command > config > ingress) while it runs.
  (ctx) => {
    const command = commandComponent(ctx);
    setCommandState(command.state);
    command.setRoutesProvider(() => listRoutes(() => commandRoutes(command.state)));
    return command;
  },
  adminComponent,
  createCoreComponent,
  queryComponent,
  (ctx) => createProxy(ctx),
];
