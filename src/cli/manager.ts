// `stevedore manager token`: a user JWT for the manager's job API, Shaman and /logfile, for other clients.
import { UsageError, parse, type Command } from "./command.js";
import { MAX_TOKEN_TTL_SECS, defaultSubject, parseDuration, userToken } from "./manager-client.js";
import { loadCliConfig } from "./query-common.js";

export const managerCommand: Command = {
  name: "manager",
  summary: "manager helpers (manager token)",
  usage: `usage: stevedore manager token [--ttl DURATION] [--subject NAME] [--config FILE]

Prints a user token for the manager: an ES256 JWT {sub, iat, exp} signed with
<state_dir>/jwt/es256-private.pem (made by the daemon at its first start with
the manager enabled; readable by root only). Send it as
"Authorization: Bearer TOKEN" or in the cookie jwtToken.
  --ttl DURATION   how long it is valid: N (seconds), Ns, Nm, Nh or Nd; default
                   1h, at most 366d
  --subject NAME   the token's subject, logged by the manager (default: your
                   user name)
  --config FILE    config file (for state_dir)`,
  async run(args) {
    const { values, positionals } = parse(args, { ttl: { type: "string" }, subject: { type: "string" }, config: { type: "string", short: "c" } });
    if (positionals.length !== 1 || positionals[0] !== "token")
      throw new UsageError(positionals.length ? `unknown manager subcommand: ${positionals.join(" ")}` : "manager needs a subcommand: token");
    const ttlSecs = values.ttl === undefined ? 3600 : parseDuration(values.ttl);
    if (ttlSecs === undefined) throw new UsageError(`invalid --ttl ${JSON.stringify(values.ttl)}: use N, Ns, Nm, Nh or Nd`);
    if (ttlSecs > MAX_TOKEN_TTL_SECS) throw new UsageError("--ttl is at most 366d");
    const subject = values.subject ?? defaultSubject();
    if (!subject || subject.length > 256 || /[\0-\x1f]/.test(subject)) throw new UsageError("--subject must be 1-256 printable characters");
    const stateDir = loadCliConfig(values.config).static.state_dir;
    process.stdout.write((await userToken(stateDir, { subject, ttlSecs })) + "\n");
    return 0;
  },
};
