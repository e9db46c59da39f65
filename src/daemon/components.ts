// The daemon's interfaces, in start order, and the wiring between them. Each interface adds its line here.
import type { Component, DaemonContext } from "../component/index.js";
import { adminComponent } from "../admin/index.js";
import { createCoreComponent } from "../core/index.js";
import { commandComponent, commandRoutes, createProxy } from "../proxy/index.js";
import { managerComponent } from "../manager/index.js";
import { queryComponent } from "../query/index.js";
import { shamanService } from "../shaman/index.js";
import { metricsComponent } from "./metrics.js";
import { dashboardService } from "../dashboard/index.js";

export function createComponents(ctx: DaemonContext): Component[] {
  // The command socket first: the proxy's run-time state is loaded before the data plane starts
  // routing on it. `stevedore proxy routes` answers the data plane's merged table (command >
  // config > ingress) while it runs, the command state's own routes otherwise.
  const command = commandComponent(ctx);
  const proxy = createProxy(ctx, { commandState: command.state });
  command.setRoutesProvider(() => proxy.runningRoutes() ?? commandRoutes(command.state));
  command.setCertsProvider(() => proxy.certificates());
  // Shaman serves on the manager's listener under its user auth; interfaces do not import each
  // other, so the daemon hands it to the manager.
  // The dashboard too; its host page shows the proxy's routes, handed over here.
  const dashboard = dashboardService(ctx, { routes: () => proxy.runningRoutes() ?? commandRoutes(command.state) });
  return [command, adminComponent(ctx), createCoreComponent(ctx), managerComponent(ctx, { extensions: [shamanService(ctx), dashboard] }), queryComponent(ctx), proxy, metricsComponent(ctx)];
}
