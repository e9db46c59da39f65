// `stevedore check-config` (alias `-t`): validate the config file and the files it names, without starting the daemon.
import { configPath, loadConfig, readConfigText, checkFiles, checkAcmeState, byLine, printConfig, ConfigError, type Config } from "../config/index.js";
import { parse, type Command } from "./command.js";

export const checkConfigCommand: Command = {
  name: "check-config",
  summary: "validate the config file and the files it names; list every error",
  usage: `usage: stevedore check-config [--print] [--config FILE]
       stevedore -t [--print] [--config FILE]

Reads the config file (FILE, else $STEVEDORE_CONFIG, else /etc/stevedore/stevedore.conf)
the way the daemon does and validates every key, then loads every certificate and key
file it names: a missing or unreadable file, a file that is not PEM, or a key that does
not match its certificate is an error, and so are an acme_ca_file without a PEM
certificate and, with acme on, an ACME account key (<state_dir>/acme/account.key) that
is not a P-256 private key; an expired certificate is a warning. Prints "ok"
and exits 0 when there is no error; otherwise prints every error (file:line: message)
in line order, one per line on stderr, and exits 1. Warnings go to stderr too.
--print  print the effective config (every key, defaults filled in) as TOML on stdout
         instead of "ok", like nginx -T.`,
  async run(args) {
    const { values } = parse(args, { config: { type: "string", short: "c" }, print: { type: "boolean" } }, false);
    const { path, explicit } = configPath(values.config);
    let config: Config | undefined;
    let errors: string[] = [];
    try {
      config = loadConfig(path, explicit);
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      errors = err.errors;
    }
    let text: string | undefined;
    try {
      text = readConfigText(path);
    } catch {
      text = undefined; // unreadable: loadConfig has said why (or it is the missing default file)
    }
    const files = text === undefined ? { errors: [], warnings: [] } : checkFiles(text, path);
    if (config) checkAcmeState(config, files);
    process.stderr.write(files.warnings.map((w) => `stevedore: warning: ${w}\n`).join(""));
    errors = byLine([...errors, ...files.errors], path);
    if (errors.length || !config) {
      process.stderr.write(errors.map((e) => `stevedore: ${e}\n`).join(""));
      return 1;
    }
    process.stderr.write(acmeWarnings(config, path).map((w) => `stevedore: warning: ${w}\n`).join(""));
    process.stdout.write(values.print ? printConfig(config) : "ok\n");
    return 0;
  },
};

/** A site asking for an ACME certificate while acme is off would silently get no HTTPS. */
export function acmeWarnings(config: Config, path: string): string[] {
  if (config.dynamic.acme) return [];
  return config.dynamic.sites
    .filter((s) => s.tls === "auto")
    .map((s) => `${path}:${s.line}: [[site]] ${s.hostname} has tls = "auto" but acme is off: it gets no certificate (set acme = true)`);
}
