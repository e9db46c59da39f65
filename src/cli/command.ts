// What every CLI command shares: the Command shape, argument parsing, usage errors, tables.
import { parseArgs, type ParseArgsConfig } from "node:util";

/** One CLI command (or command group). `run` resolves with the exit code. */
export interface Command {
  name: string;
  /** one line for `stevedore help` */
  summary: string;
  /** full usage text for `stevedore help NAME` and `NAME --help` */
  usage: string;
  run(args: string[]): Promise<number>;
}

/** Wrong usage: printed with the usage hint, exit 2. */
export class UsageError extends Error {}

/** A failed operation: printed, exit 1. */
export class CommandError extends Error {}

/** node:util parseArgs with our error type; strict, so unknown flags are usage errors. */
export function parse<T extends NonNullable<ParseArgsConfig["options"]>>(args: string[], options: T, allowPositionals = true) {
  try {
    return parseArgs({ args, options, allowPositionals, strict: true });
  } catch (err) {
    throw new UsageError((err as Error).message.replace(/\. To specify a positional.*$/s, ""));
  }
}

/** Print rows as an aligned table (human output); `--json` output is the caller's. */
export function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const fmt = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join("  ").trimEnd();
  return [fmt(headers), ...rows.map(fmt)].join("\n") + "\n";
}
