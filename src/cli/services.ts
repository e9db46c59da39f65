// `stevedore services`: a deployment's services through the query socket, and the shared query fetch.
import { queryGet, QueryClientError } from "../query/index.js";
import { CommandError, UsageError, parse, table, type Command } from "./command.js";
import { QUERY_OPTIONS, QUERY_OPTIONS_HELP, findToken, loadCliConfig, querySocket } from "./query-common.js";

interface ServiceJson {
  deployment: string;
  service: string;
  container_id: string;
  container_name: string;
  running: boolean;
  ingress?: { enabled: boolean; subdomain?: string; port?: number; websocket?: boolean; healthcheck?: string };
}

/** GET a path of the query socket with the config/token rules of every query command. */
export async function fetchQuery(values: { token?: string; config?: string; socket?: string }, path: string, messages: Record<number, string> = {}): Promise<unknown> {
  const config = loadCliConfig(values.config);
  const socket = querySocket(config, values.socket);
  const token = await findToken(values.token, config);
  try {
    return await queryGet(socket, path, token);
  } catch (err) {
    if (err instanceof QueryClientError) throw new CommandError(messages[err.status] ?? err.message);
    throw err;
  }
}

/** -q: one id a line (nothing at all for none, so `xargs` and `$(...)` work). */
export function printIds(ids: string[]): void {
  process.stdout.write(ids.map((id) => id + "\n").join(""));
}

export function printJson(body: unknown): void {
  process.stdout.write(JSON.stringify(body, null, 2) + "\n");
}

function ingressText(i: ServiceJson["ingress"]): string {
  if (!i) return "-";
  if (!i.enabled) return "disabled";
  const parts = [`${i.subdomain ?? "?"}:${i.port ?? "?"}`];
  if (i.websocket) parts.push("websocket");
  if (i.healthcheck) parts.push(`health=${i.healthcheck}`);
  return parts.join(" ");
}

export const servicesCommand: Command = {
  name: "services",
  summary: "list services (containers) via the query socket",
  usage: `usage: stevedore services [--ingress] [--json|-q] [--token TOKEN] [--config FILE] [--socket PATH]

Lists every container of every deployment, from the daemon's query socket
(GET /services). With --ingress only those with stevedore.ingress.enabled;
with -q only their container ids.
  --ingress        only services with ingress enabled
${QUERY_OPTIONS_HELP}`,
  async run(args) {
    const { values, positionals } = parse(args, { ...QUERY_OPTIONS, ingress: { type: "boolean" } });
    if (positionals.length) throw new UsageError("services takes no arguments");
    const body = (await fetchQuery(values, values.ingress ? "/services?ingress=true" : "/services")) as ServiceJson[];
    if (values.quiet) return printIds(body.map((s) => s.container_id)), 0;
    if (values.json) return printJson(body), 0;
    const rows = body.map((s) => [s.deployment, s.service, s.container_name, s.container_id, s.running ? "yes" : "no", ingressText(s.ingress)]);
    process.stdout.write(table(["DEPLOYMENT", "SERVICE", "CONTAINER", "ID", "RUNNING", "INGRESS"], rows));
    return 0;
  },
};
