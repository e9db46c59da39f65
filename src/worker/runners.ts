// Command name → runner: the commands this worker knows.
import { runEcho, runExec, runSleep, type CommandRunner } from "./commands.js";
import { runDockerCommand } from "./docker-run.js";

export const RUNNERS: Readonly<Record<string, CommandRunner>> = {
  echo: runEcho,
  sleep: runSleep,
  exec: runExec,
  "docker-run": runDockerCommand,
};
