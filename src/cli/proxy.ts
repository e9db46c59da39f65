// `stevedore proxy ...`: the command socket from the shell (stevedore(8), COMMANDS).
import { readFile } from "node:fs/promises";
import { resolve } from "node:path";
import { configPath, loadConfig, ConfigError } from "../config/index.js";
import { CommandClient, type Answer, type RouteInfo, type StateDump } from "../proxy/index.js";
import { CommandError, UsageError, describeError, parse, table, type Command } from "./command.js";
import { lenientValue } from "./admin-socket.js";

const USAGE = `usage: stevedore proxy [--config FILE] [--socket PATH] SUBCOMMAND

  status [--json|-q]                   the proxy workers (-q: worker ids only)
  dump [--json]                        the command-socket state (no private keys)
  routes [--json|-q]                   the routing table with each route's source (-q: application ids;
                                       --json uses dump's field names: hostname, path_begin, app_id)
  save PATH | load PATH                write / merge a state file (PATH relative to here)
  app add APP [--sticky] [--https-redirect] [--lb roundrobin|random|leastconnections]
  app remove APP
  front add|remove --app APP --host HOST [--path PREFIX] [--https --cert FINGERPRINT]
  backend add|remove --app APP --address IP:PORT [--id ID]
  cert add --cert FILE --key FILE [--chain FILE]    prints the fingerprint alone on stdout
  cert remove FINGERPRINT
  stop [--hard]                        soft stop (drain, exit 0) or hard stop
  upgrade                              UPGRADE_MASTER: a new daemon process takes the sockets over
  send JSON                            send one raw message, print every answer until Ok/Error

Talks to the command socket (command_socket_path of the config: --config FILE,
else $STEVEDORE_CONFIG, else /etc/stevedore/stevedore.conf), or --socket PATH.
Exit 0 when the daemon answered Ok, 1 on Error, 2 on usage errors.`;

const REQUEST_TIMEOUT_MS = 30_000;

interface Target {
  socket: string;
  stopTimeoutMs: number;
}

/** Pull the global --config/--socket options out of args (they may come anywhere). */
function globals(args: string[]): { rest: string[]; config?: string; socket?: string } {
  const rest: string[] = [];
  const out: { config?: string; socket?: string } = {};
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const m = /^--(config|socket)(?:=(.*))?$/.exec(a) ?? (a === "-c" ? [a, "config", undefined] : null);
    if (!m) {
      rest.push(a);
      continue;
    }
    const value = m[2] ?? args[++i];
    if (value === undefined || value === "") throw new UsageError(`--${m[1]} needs a value`);
    out[m[1] as "config" | "socket"] = value;
  }
  return { rest, ...out };
}

function target(flagConfig: string | undefined, flagSocket: string | undefined): Target {
  // with --socket the config only supplies a timeout: read it leniently, as status does
  if (flagSocket) return { socket: flagSocket, stopTimeoutMs: (lenientValue(flagConfig, "shutdown_timeout_secs") + 30) * 1000 };
  let config;
  try {
    const { path, explicit } = configPath(flagConfig);
    config = loadConfig(path, explicit);
  } catch (err) {
    if (err instanceof ConfigError) throw new CommandError(`config: ${err.errors[0]}${err.errors.length > 1 ? ` (and ${err.errors.length - 1} more)` : ""}: fix it (stevedore check-config) or pass --socket`);
    throw err;
  }
  const socket = flagSocket ?? config.static.command_socket_path;
  if (socket === "") throw new CommandError('the command socket is disabled (command_socket_path = "")');
  return { socket, stopTimeoutMs: (config.dynamic.shutdown_timeout_secs + 30) * 1000 };
}

async function withClient<T>(t: Target, fn: (c: CommandClient) => Promise<T>): Promise<T> {
  let c: CommandClient;
  try {
    c = await CommandClient.connect(t.socket);
  } catch (err) {
    throw new CommandError(connectError(t.socket, (err as Error).message));
  }
  try {
    return await fn(c);
  } catch (err) {
    if (err instanceof CommandError || err instanceof UsageError) throw err;
    throw new CommandError((err as Error).message);
  } finally {
    c.close();
  }
}

/** The connect error without a raw errno: what it means and what to do. */
function connectError(socket: string, message: string): string {
  const code = /: ([A-Z]+)$/.exec(message)?.[1];
  if (code === "ENOENT" || code === "ECONNREFUSED")
    return `the daemon is not running (nothing listens on the command socket ${socket}): is the daemon running? start it, or pass --socket`;
  if (code === "EACCES" || code === "EPERM") return `permission denied on the command socket ${socket}: run as root or as a user that may open it`;
  return message;
}

/** One request; Ok → the answer, Error → exit 1 with its message. */
async function call(t: Target, type: string, data?: unknown, opts: { timeoutMs?: number; onAnswer?: (a: Answer) => void } = {}): Promise<Answer> {
  return withClient(t, async (c) => {
    const a = await c.request({ id: c.nextId(), version: 0, type, ...(data !== undefined && { data }) }, { timeoutMs: opts.timeoutMs ?? REQUEST_TIMEOUT_MS, ...(opts.onAnswer && { onAnswer: opts.onAnswer }) });
    if (a.status !== "Ok") throw new CommandError(a.message);
    return a;
  });
}

const out = (s: string) => process.stdout.write(s.endsWith("\n") ? s : s + "\n");
const json = (v: unknown) => out(JSON.stringify(v, null, 2));

function noPositionals(sub: string, positionals: string[], n = 0): void {
  if (positionals.length !== n) throw new UsageError(n === 0 ? `proxy ${sub} takes no arguments` : `proxy ${sub} takes ${n} argument${n > 1 ? "s" : ""}`);
}

const LIST_OPTIONS = { json: { type: "boolean" }, quiet: { type: "boolean", short: "q" } } as const;

/** A route in the field names of \`proxy dump --json\` (hostname, path_begin, app_id, address). */
function routeJson(r: RouteInfo): Record<string, unknown> {
  return { source: r.source, protocols: r.protocols, hostname: r.hostname, path_begin: r.pathBegin, app_id: r.app, backends: r.backends.map((b) => ({ address: b.address, up: b.up })) };
}

function printDump(d: StateDump): void {
  out(table(["APPLICATION", "STICKY", "HTTPS-REDIRECT", "BALANCING"], d.applications.map((a) => [a.app_id, String(a.sticky_session), String(a.https_redirect), a.load_balancing_policy])));
  const fronts = [
    ...d.http_fronts.map((f) => ["http", f.hostname, f.path_begin || "/*", f.app_id, "-"]),
    ...d.https_fronts.map((f) => ["https", f.hostname, f.path_begin || "/*", f.app_id, f.fingerprint.slice(0, 16)]),
  ];
  out("\n" + table(["SCHEME", "HOST", "PATH", "APPLICATION", "CERTIFICATE"], fronts));
  out("\n" + table(["APPLICATION", "BACKEND", "ADDRESS"], d.backends.map((b) => [b.app_id, b.backend_id, b.address])));
  out("\n" + table(["CERTIFICATE", "NAMES"], Object.entries(d.certificates).map(([fp, names]) => [fp, names.join(",")])));
}

async function run(args: string[]): Promise<number> {
  const g = globals(args);
  const [sub, ...rest] = g.rest;
  if (sub === undefined) throw new UsageError("proxy needs a subcommand");
  const t = () => target(g.config, g.socket);
  switch (sub) {
    case "status": {
      const { values, positionals } = parse(rest, LIST_OPTIONS);
      noPositionals(sub, positionals);
      const a = await call(t(), "STATUS");
      const workers = a.data as { id: number; pid: number; run_state: string }[];
      if (values.quiet) out(workers.map((w) => String(w.id)).join("\n"));
      else if (values.json) json(workers);
      else out(table(["WORKER", "PID", "STATE"], workers.map((w) => [String(w.id), String(w.pid), w.run_state])));
      return 0;
    }
    case "dump": {
      const { values, positionals } = parse(rest, { json: { type: "boolean" } });
      noPositionals(sub, positionals);
      const a = await call(t(), "DUMP_STATE");
      if (values.json) json(a.data);
      else printDump(a.data as StateDump);
      return 0;
    }
    case "routes": {
      const { values, positionals } = parse(rest, LIST_OPTIONS);
      noPositionals(sub, positionals);
      const rows = (await call(t(), "ROUTES")).data as RouteInfo[];
      if (values.quiet) out([...new Set(rows.map((r) => r.app))].join("\n"));
      else if (values.json) json(rows.map(routeJson));
      else
        out(table(["SOURCE", "PROTOCOLS", "HOST", "PATH", "APPLICATION", "BACKENDS"], rows.map((r) => [
          r.source, r.protocols.join(","), r.hostname, r.pathBegin || "/*", r.app,
          r.backends.map((b) => (b.up ? b.address : `${b.address}(down)`)).join(",") || "-",
        ])));
      return 0;
    }
    case "save":
    case "load": {
      const { positionals } = parse(rest, {});
      noPositionals(sub, positionals, 1);
      const a = await call(t(), sub === "save" ? "SAVE_STATE" : "LOAD_STATE", { path: resolve(positionals[0]!) }, { timeoutMs: 300_000 });
      out(a.message);
      return 0;
    }
    case "app":
      return app(rest, t);
    case "front":
      return front(rest, t);
    case "backend":
      return backend(rest, t);
    case "cert":
      return cert(rest, t);
    case "stop": {
      const { values, positionals } = parse(rest, { hard: { type: "boolean" } });
      noPositionals(sub, positionals);
      const tt = t();
      const a = await call(tt, values.hard ? "HARD_STOP" : "SOFT_STOP", undefined, {
        timeoutMs: tt.stopTimeoutMs,
        onAnswer: (x) => x.status === "Processing" && out(x.message),
      });
      out(a.message);
      return 0;
    }
    case "upgrade": {
      const { positionals } = parse(rest, {});
      noPositionals(sub, positionals);
      const a = await call(t(), "UPGRADE_MASTER", undefined, { timeoutMs: 300_000, onAnswer: (x) => x.status === "Processing" && out(x.message) });
      out(a.message);
      return 0;
    }
    case "send":
      return send(rest, t);
    default:
      throw new UsageError(`unknown proxy subcommand: ${sub}`);
  }
}

async function app(args: string[], t: () => Target): Promise<number> {
  const [verb, ...rest] = args;
  if (verb === "add") {
    const { values, positionals } = parse(rest, { sticky: { type: "boolean" }, "https-redirect": { type: "boolean" }, lb: { type: "string" } });
    noPositionals("app add", positionals, 1);
    if (values.lb !== undefined && !["roundrobin", "random", "leastconnections"].includes(values.lb)) throw new UsageError("--lb must be roundrobin, random or leastconnections");
    const a = await call(t(), "ADD_APPLICATION", {
      app_id: positionals[0], sticky_session: values.sticky ?? false, https_redirect: values["https-redirect"] ?? false, load_balancing_policy: values.lb ?? "roundrobin",
    });
    out(a.message);
    return 0;
  }
  if (verb === "remove") {
    const { positionals } = parse(rest, {});
    noPositionals("app remove", positionals, 1);
    out((await call(t(), "REMOVE_APPLICATION", { app_id: positionals[0] })).message);
    return 0;
  }
  throw new UsageError("usage: proxy app add APP [--sticky] [--https-redirect] [--lb POLICY] | app remove APP");
}

async function front(args: string[], t: () => Target): Promise<number> {
  const [verb, ...rest] = args;
  if (verb !== "add" && verb !== "remove") throw new UsageError("usage: proxy front add|remove --app APP --host HOST [--path PREFIX] [--https --cert FINGERPRINT]");
  const { values, positionals } = parse(rest, { app: { type: "string" }, host: { type: "string" }, path: { type: "string" }, https: { type: "boolean" }, cert: { type: "string" } });
  noPositionals(`front ${verb}`, positionals);
  if (!values.app || !values.host) throw new UsageError(`proxy front ${verb} needs --app and --host`);
  if (values.cert !== undefined && !values.https) throw new UsageError("--cert goes with --https");
  if (values.https && verb === "add" && !values.cert) throw new UsageError("--https needs --cert FINGERPRINT");
  const data = { app_id: values.app, hostname: values.host, path_begin: values.path ?? "", ...(values.cert !== undefined && { fingerprint: values.cert }) };
  const type = `${verb === "add" ? "ADD" : "REMOVE"}_${values.https ? "HTTPS" : "HTTP"}_FRONT`;
  out((await call(t(), type, data)).message);
  return 0;
}

async function backend(args: string[], t: () => Target): Promise<number> {
  const [verb, ...rest] = args;
  if (verb !== "add" && verb !== "remove") throw new UsageError("usage: proxy backend add|remove --app APP --address IP:PORT [--id ID]");
  const { values, positionals } = parse(rest, { app: { type: "string" }, address: { type: "string" }, id: { type: "string" } });
  noPositionals(`backend ${verb}`, positionals);
  if (!values.app || !values.address) throw new UsageError(`proxy backend ${verb} needs --app and --address`);
  const data = { app_id: values.app, address: values.address, ...(values.id !== undefined && { backend_id: values.id }) };
  out((await call(t(), verb === "add" ? "ADD_BACKEND" : "REMOVE_BACKEND", data)).message);
  return 0;
}

const MAX_PEM_BYTES = 512 * 1024;
async function readPem(path: string, what: string): Promise<string> {
  try {
    const text = await readFile(path, "utf8");
    if (text.length > MAX_PEM_BYTES) throw new CommandError(`${what} file ${path} is larger than ${MAX_PEM_BYTES} bytes`);
    return text;
  } catch (err) {
    if (err instanceof CommandError) throw err;
    throw new CommandError(`cannot read the ${what} file: ${describeError(err)}`);
  }
}

async function cert(args: string[], t: () => Target): Promise<number> {
  const [verb, ...rest] = args;
  if (verb === "add") {
    const { values, positionals } = parse(rest, { cert: { type: "string" }, key: { type: "string" }, chain: { type: "string" } });
    noPositionals("cert add", positionals);
    if (!values.cert || !values.key) throw new UsageError("proxy cert add needs --cert FILE and --key FILE");
    const chainText = values.chain ? await readPem(values.chain, "chain") : "";
    const chain = chainText.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----\n?/g) ?? [];
    const a = await call(t(), "ADD_CERTIFICATE", { certificate: await readPem(values.cert, "certificate"), key: await readPem(values.key, "key"), certificate_chain: chain });
    const fp = (a.data as { fingerprint?: string } | undefined)?.fingerprint;
    // scriptable: stdout is the fingerprint alone (FP=$(stevedore proxy cert add ...)); a note to stderr
    if (!fp) throw new CommandError(`the daemon answered without a fingerprint: ${a.message}`);
    out(fp);
    if (a.message === "already present") process.stderr.write(`stevedore: certificate ${fp} was already present\n`);
    return 0;
  }
  if (verb === "remove") {
    const { positionals } = parse(rest, {});
    noPositionals("cert remove", positionals, 1);
    out((await call(t(), "REMOVE_CERTIFICATE", positionals[0])).message);
    return 0;
  }
  throw new UsageError("usage: proxy cert add --cert FILE --key FILE [--chain FILE] | cert remove FINGERPRINT");
}

async function send(args: string[], t: () => Target): Promise<number> {
  const { positionals } = parse(args, {});
  noPositionals("send", positionals, 1);
  const raw = positionals[0]!;
  if (raw.includes("\0")) throw new UsageError("the message must not contain a NUL byte");
  let id: string | undefined;
  try {
    const v = JSON.parse(raw) as { id?: unknown };
    if (typeof v?.id === "string") id = v.id;
  } catch {
    // sent as is: the daemon answers invalid JSON with an Error
  }
  return withClient(t(), async (c) => {
    let printed = 0;
    const final = (a: Answer) => a.status !== "Processing" && (id === undefined || a.id === id);
    c.send(raw);
    const last = await c.waitFor((a) => {
      for (; printed < c.answers.length; printed++) out(JSON.stringify(c.answers[printed]));
      return final(a);
    }, 300_000);
    return last.status === "Ok" ? 0 : 1;
  });
}

export const proxyCommand: Command = {
  name: "proxy",
  summary: "run-time proxy routes through the command socket",
  usage: USAGE,
  run,
};

const CERTS_USAGE = `usage: stevedore certs [--json|-q] [--config FILE] [--socket PATH]

The certificates the proxy's HTTPS listener serves: host, issuer, not-after, source (acme, config,
command), next renewal and last error of ACME hosts. Asks the daemon through the command socket.
-q: host names only. --json: an array of {host, source, issuer, not_after, next_renewal,
last_error} (snake_case, like proxy routes --json); absent fields are left out.`;

interface CertRowIn {
  host: string;
  issuer?: string;
  notAfter?: string;
  nextRenewal?: string;
  lastError?: string;
  source: string;
}

/** A row in snake_case, as `proxy routes --json` and `proxy dump --json` name fields. */
function certJson(r: CertRowIn): Record<string, unknown> {
  return { host: r.host, source: r.source, issuer: r.issuer, not_after: r.notAfter, next_renewal: r.nextRenewal, last_error: r.lastError };
}

async function certs(args: string[]): Promise<number> {
  const g = globals(args);
  const { values, positionals } = parse(g.rest, LIST_OPTIONS);
  noPositionals("certs", positionals);
  const rows = (await call(target(g.config, g.socket), "CERTS")).data as CertRowIn[];
  if (values.quiet) out([...new Set(rows.map((r) => r.host))].join("\n"));
  else if (values.json) json(rows.map(certJson));
  else out(table(["HOST", "SOURCE", "ISSUER", "NOT-AFTER", "NEXT-RENEWAL", "LAST-ERROR"], rows.map((r) => [r.host, r.source, r.issuer ?? "-", r.notAfter ?? "-", r.nextRenewal ?? "-", r.lastError ?? "-"])));
  return 0;
}

export const certsCommand: Command = {
  name: "certs",
  summary: "certificates of the HTTPS listener (ACME and hand-installed)",
  usage: CERTS_USAGE,
  run: certs,
};
