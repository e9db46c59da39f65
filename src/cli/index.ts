// The command line: dispatches `stevedore <command>` to the command groups (see stevedore(8)).
import { VERSION } from "../version.js";
import { CommandError, UsageError, describeError, editDistance, lowerFirst, type Command } from "./command.js";
import { makeCompletionCommand } from "./completion.js";
import { daemonCommand } from "./daemon.js";
import { checkConfigCommand } from "./check-config.js";
import { statusCommand } from "./status.js";
import { reloadCommand } from "./reload.js";
import { adminCommand } from "./admin.js";
import { coreCommand } from "./core.js";
import { certsCommand, proxyCommand } from "./proxy.js";
import { tokenCommand } from "./token.js";
import { servicesCommand } from "./services.js";
import { deploymentsCommand, deploymentCommand } from "./deployments.js";
import { workerCommand } from "./worker.js";
import { jobsCommand } from "./jobs.js";
import { workersCommand } from "./workers.js";
import { managerCommand } from "./manager.js";
import { dashboardCommand } from "./dashboard.js";
import { shamanCommand } from "./shaman.js";

const versionCommand: Command = {
  name: "version",
  summary: "print the version",
  usage: "usage: stevedore version",
  async run(args) {
    if (args.length) throw new UsageError("version takes no arguments");
    process.stdout.write(`stevedore ${VERSION}\n`);
    return 0;
  },
};

const helpCommand: Command = {
  name: "help",
  summary: "show help for stevedore or one command",
  usage: "usage: stevedore help [COMMAND]",
  async run(args) {
    if (args.length > 1) throw new UsageError("help takes at most one command");
    if (args[0] === undefined) {
      process.stdout.write(overview());
      return 0;
    }
    const cmd = COMMANDS.find((c) => c.name === args[0]);
    if (!cmd) throw new UsageError(unknownCommand(args[0]));
    process.stdout.write(cmd.usage + "\n");
    return 0;
  },
};

const completionCommand = makeCompletionCommand(() => COMMANDS);

/** Every command, in the order `stevedore help` lists them. */
const COMMANDS: Command[] = [
  daemonCommand,
  checkConfigCommand,
  statusCommand,
  reloadCommand,
  adminCommand,
  coreCommand,
  proxyCommand,
  certsCommand,
  tokenCommand,
  servicesCommand,
  deploymentsCommand,
  deploymentCommand,
  jobsCommand,
  workersCommand,
  managerCommand,
  dashboardCommand,
  shamanCommand,
  workerCommand,
  completionCommand,
  versionCommand,
  helpCommand,
];

function overview(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return `usage: stevedore COMMAND [ARGS...]

${COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`).join("\n")}

Run 'stevedore help COMMAND' or 'stevedore COMMAND --help' for details; see stevedore(8).
`;
}

/** Dispatch argv (without node and script) to a command; resolves with the exit code. */
export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === "--help" || name === "-h") {
    process.stdout.write(overview());
    return name === undefined ? 2 : 0;
  }
  if (name === "--version") return versionCommand.run([]);
  const cmd = COMMANDS.find((c) => c.name === (name === "-t" ? "check-config" : name));
  try {
    if (!cmd) throw new UsageError(unknownCommand(name));
    if (rest.includes("--help") || rest.includes("-h")) {
      process.stdout.write(cmd.usage + "\n");
      return 0;
    }
    return await cmd.run(rest);
  } catch (err) {
    if (err instanceof UsageError) {
      // one lowercase line that says where the usage is; an unknown command's line already says it all
      const hint = err.message.includes("did you mean") ? ""
        : err.message.startsWith("unknown command") ? "; run 'stevedore help' for the commands"
        : `; run 'stevedore ${cmd && cmd.name !== "help" ? `${cmd.name} --help` : "help"}' for usage`;
      process.stderr.write(`stevedore: ${lowerFirst(err.message)}${hint}\n`);
      return 2;
    }
    if (err instanceof CommandError) {
      process.stderr.write(`stevedore: ${err.message}\n`);
      return 1;
    }
    process.stderr.write(`stevedore: ${describeError(err)}\n`);
    return 1;
  }
}

/** `unknown command "statuss"; did you mean status?` (the closest name within 2 edits). */
export function unknownCommand(name: string): string {
  const best = COMMANDS.map((c) => ({ name: c.name, d: editDistance(name, c.name) })).sort((a, b) => a.d - b.d)[0];
  return `unknown command ${JSON.stringify(name)}${best && best.d <= 2 ? `; did you mean ${best.name}?` : ""}`;
}


