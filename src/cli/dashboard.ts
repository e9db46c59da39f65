// `stevedore dashboard`: prints a one-time sign-in link for the farm dashboard on the manager listener.
import { UsageError, parse, type Command } from "./command.js";
import { defaultSubject, managerUrl, parseDuration, userToken } from "./manager-client.js";
import { loadCliConfig } from "./query-common.js";

/** the link's token lives this long by default: long enough to paste, short enough to not matter in a history */
const DEFAULT_TTL_SECS = 300;
const MAX_TTL_SECS = 3600;

export const dashboardCommand: Command = {
  name: "dashboard",
  summary: "print a one-time sign-in link for the farm dashboard",
  usage: `usage: stevedore dashboard [--manager URL] [--ttl DURATION] [--subject NAME] [--json] [--config FILE]

Prints a link to the farm dashboard (the manager listener's "/") that signs the
browser in: opening it once sets the HttpOnly cookie jwtToken (valid 12 hours)
and redirects to the page, so the token does not stay in the address bar. The
link works once, and only within --ttl. Needs read access to
<state_dir>/jwt/es256-private.pem (root).
  --manager URL    the manager's base URL as the browser reaches it (default:
                   from manager_listen)
  --ttl DURATION   how long the link is valid: N, Ns or Nm, at most 1h;
                   default 5m
  --subject NAME   who signs in, as the manager logs it (default: your user name)
  --json           {"url": ..., "expires": ...}
  --config FILE    config file (for manager_listen and state_dir)`,
  async run(args) {
    const { values, positionals } = parse(args, {
      manager: { type: "string" },
      ttl: { type: "string" },
      subject: { type: "string" },
      json: { type: "boolean" },
      config: { type: "string", short: "c" },
    });
    if (positionals.length) throw new UsageError("dashboard takes no arguments");
    const ttlSecs = values.ttl === undefined ? DEFAULT_TTL_SECS : parseDuration(values.ttl);
    if (ttlSecs === undefined || ttlSecs > MAX_TTL_SECS) throw new UsageError(`invalid --ttl ${JSON.stringify(values.ttl)}: N, Ns or Nm, at most 1h`);
    const subject = values.subject ?? defaultSubject();
    if (!subject || subject.length > 256 || /[\0-\x1f]/.test(subject)) throw new UsageError("--subject must be 1-256 printable characters");
    const config = loadCliConfig(values.config);
    const base = managerUrl(values.manager, config);
    const token = await userToken(config.static.state_dir, { subject, ttlSecs });
    const url = `${base}/dashboard/sign-in?token=${encodeURIComponent(token)}`;
    const expires = new Date(Date.now() + ttlSecs * 1000).toISOString();
    if (values.json) process.stdout.write(JSON.stringify({ url, expires }) + "\n");
    else process.stdout.write(`${url}\n`);
    return 0;
  },
};
