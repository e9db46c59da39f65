// `stevedore deployments` and `stevedore deployment`: the catalog through the query socket.
import { deploymentNameError } from "../base/index.js";
import { UsageError, parse, table, type Command } from "./command.js";
import { QUERY_OPTIONS, QUERY_OPTIONS_HELP } from "./query-common.js";
import { fetchQuery, printIds, printJson } from "./services.js";

export const deploymentsCommand: Command = {
  name: "deployments",
  summary: "list deployments via the query socket",
  usage: `usage: stevedore deployments [--json|-q] [--token TOKEN] [--config FILE] [--socket PATH]

Lists the deployments the daemon knows (GET /deployments): those with
containers and those registered (with a query token or a core service);
with -q their names only.
${QUERY_OPTIONS_HELP}`,
  async run(args) {
    const { values, positionals } = parse(args, QUERY_OPTIONS);
    if (positionals.length) throw new UsageError("deployments takes no arguments");
    const body = (await fetchQuery(values, "/deployments")) as { name: string }[];
    if (values.quiet) return printIds(body.map((d) => d.name)), 0;
    if (values.json) return printJson(body), 0;
    process.stdout.write(table(["NAME"], body.map((d) => [d.name])));
    return 0;
  },
};

interface StatusJson {
  deployment: string;
  project_name: string;
  healthy: boolean;
  message: string;
  containers: { id: string; name: string; service: string; image: string; state: string; health: string; status: string; exit_code: number; started_at: string | null }[];
}

export const deploymentCommand: Command = {
  name: "deployment",
  summary: "show one deployment's status via the query socket",
  usage: `usage: stevedore deployment NAME [--json|-q] [--token TOKEN] [--config FILE] [--socket PATH]

Shows the status of deployment NAME (GET /status/NAME): whether it is healthy,
and each of its containers (-q: their ids only). Exit 1 when the deployment is unknown.
The message says "All N containers running" when no container has a health
check, else the health summary (see stevedore(8), HEALTH).
${QUERY_OPTIONS_HELP}`,
  async run(args) {
    const { values, positionals } = parse(args, QUERY_OPTIONS);
    if (positionals.length !== 1) throw new UsageError("deployment takes one deployment name");
    const name = positionals[0]!;
    const bad = deploymentNameError(name);
    if (bad) throw new UsageError(bad);
    const body = (await fetchQuery(values, `/status/${name}`, { 404: `unknown deployment ${name}` })) as StatusJson;
    if (values.quiet) return printIds(body.containers.map((c) => c.id)), 0;
    if (values.json) return printJson(body), 0;
    process.stdout.write(
      `deployment: ${body.deployment}\nproject:    ${body.project_name}\nhealthy:    ${body.healthy ? "yes" : "no"} (${body.message})\n\n` +
        table(
          ["NAME", "SERVICE", "IMAGE", "STATE", "HEALTH", "STATUS", "STARTED"],
          body.containers.map((c) => [c.name, c.service, c.image, c.state, c.health, c.status, c.started_at ?? "-"]),
        ),
    );
    return 0;
  },
};
