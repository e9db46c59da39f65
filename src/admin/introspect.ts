// The admin socket's `help` (its commands) and `config` (the effective config, secrets redacted,
// like Caddy's GET /config/).
import type { DaemonContext } from "../component/index.js";
import { INVALID_INPUT, type Handler, type Reply } from "./protocol.js";

/** One line per command; a command without a line here is listed with "" (so help never lies by omission). */
const DESCRIPTIONS: Record<string, string> = {
  help: "list the commands of this socket",
  status: "uptime, routed sites, listeners, Docker connection, counts",
  reload: "re-read the config file; the answer says whether it was applied",
  config: "the effective config (every key, defaults filled in) as JSON, secrets redacted",
};

export const REDACTED = "[redacted]";

/** Keys whose values are secrets themselves; PATH_KEY ones name a file or directory that holds one
 *  (a path is shown: it says where to look, not what is there). */
const SECRET_KEY = /secret|token|password|passphrase|jwt|private_key|api_key|core_key$/i;
const PATH_KEY = /_(file|dir|path|cert|key)$/i;
const SECRET_VALUE = /-----BEGIN [A-Z ]*PRIVATE KEY-----|^ey[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]+\./;

/** Adds `help` and `config` to a handler table; `help` lists every command of the final table. */
export function withIntrospection(ctx: DaemonContext, handlers: Record<string, Handler>): Record<string, Handler> {
  const all: Record<string, Handler> = { ...handlers };
  all.help = (args) => (args.length ? INVALID_INPUT : { status: "ok", commands: Object.fromEntries(Object.keys(all).sort().map((k) => [k, DESCRIPTIONS[k] ?? ""])) });
  all.config = (args) => (args.length ? INVALID_INPUT : configReply(ctx));
  return all;
}

export function configReply(ctx: DaemonContext): Reply {
  return {
    status: "ok",
    file: ctx.config.file,
    static: redact(ctx.config.static),
    dynamic: redact(ctx.dynamic()),
  };
}

/** A copy with every secret value replaced by "[redacted]" ("" stays "": unset is not a secret). */
export function redact(value: unknown, key = ""): unknown {
  if (Array.isArray(value)) return value.map((v) => redact(v, key));
  if (value !== null && typeof value === "object")
    return Object.fromEntries(Object.entries(value).filter(([k]) => k !== "line").map(([k, v]) => [k, redact(v, k)]));
  if (typeof value === "string" && value !== "" && ((SECRET_KEY.test(key) && !PATH_KEY.test(key)) || SECRET_VALUE.test(value))) return REDACTED;
  return value;
}
