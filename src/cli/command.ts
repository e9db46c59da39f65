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
    throw new UsageError(usageMessage(err as NodeJS.ErrnoException));
  }
}

/** parseArgs's message (capitalised, Node's wording) in ours: lowercase, the flag as typed. */
export function usageMessage(err: NodeJS.ErrnoException): string {
  const msg = err.message;
  const flag = /'(-[^' ]*)/.exec(msg)?.[1] ?? "";
  const long = /--[\w-]+/.exec(msg)?.[0];
  switch (err.code) {
    case "ERR_PARSE_ARGS_UNKNOWN_OPTION":
      return `unknown option ${flag}`;
    case "ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL":
      return `unexpected argument ${JSON.stringify(/'([^']*)'/.exec(msg)?.[1] ?? "")}`;
    case "ERR_PARSE_ARGS_INVALID_OPTION_VALUE":
      if (/does not take an argument/.test(msg)) return `option ${long ?? flag} takes no value`;
      if (/ambiguous/.test(msg)) return `option ${flag} needs a value (one starting with "-" goes as ${long ?? flag}=VALUE)`;
      return `option ${long ?? flag} needs a value`;
    default:
      return lowerFirst(msg.split("\n")[0]!.replace(/\. To specify a positional.*$/s, ""));
  }
}

/** Print rows as an aligned table (human output); `--json` output is the caller's. */
export function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const fmt = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join("  ").trimEnd();
  return [fmt(headers), ...rows.map(fmt)].join("\n") + "\n";
}

/** Levenshtein distance, for "did you mean". */
export function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) row[j] = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = row;
  }
  return prev[b.length]!;
}

/** An error as one lowercase line that says what to do; never a raw errno. */
export function describeError(err: unknown): string {
  const e = err as NodeJS.ErrnoException & { address?: string };
  const where = e.path ?? e.address ?? "";
  switch (e?.code) {
    case "EACCES":
    case "EPERM":
      return `permission denied on ${where || "a file or socket"}: run as root or as a user that may use it`;
    case "ENOENT":
      return where ? `${where} does not exist${where.endsWith(".sock") ? ": is the daemon running? (see stevedore status, or pass --socket)" : ""}` : "no such file or directory";
    case "ECONNREFUSED":
      return `nothing listens on ${where || "the socket"}: is the daemon running? (start it with stevedore daemon, or pass --socket)`;
    default:
      return lowerFirst((err as Error)?.message ?? String(err));
  }
}

export function lowerFirst(s: string): string {
  return /^[A-Z][a-z]/.test(s) ? s[0]!.toLowerCase() + s.slice(1) : s;
}

/** A TCP endpoint that did not answer, without a raw errno: what happened and what to do. */
export function unreachable(what: string, url: string, err: NodeJS.ErrnoException, flag: string): string {
  const why: Record<string, string> = {
    ECONNREFUSED: "nothing listens there: is the daemon running with it enabled?",
    ENOTFOUND: "no such host",
    EHOSTUNREACH: "the host is unreachable",
    ETIMEDOUT: "the connection timed out",
    ECONNRESET: "the connection was reset",
  };
  return `cannot reach ${what} at ${url}: ${(err.code && why[err.code]) ?? lowerFirst(err.message)} (check it, or pass ${flag})`;
}
