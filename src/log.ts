// One line per event on stderr, logfmt (or JSON) style, each with `time=` unless journald stamps
// it (JOURNAL_STREAM set). Never pass secrets.
export type Level = "debug" | "info" | "warn" | "error";
export type LogFormat = "logfmt" | "json";
const rank: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };

let threshold: Level = (process.env.STEVEDORE_LOG_LEVEL as Level) in rank ? (process.env.STEVEDORE_LOG_LEVEL as Level) : "info";
let format: LogFormat = process.env.STEVEDORE_LOG_FORMAT === "json" ? "json" : "logfmt";
/** journald stamps every line itself; a second time would only be noise */
let stamped = !process.env.JOURNAL_STREAM;
let sink: (line: string) => void = (line) => process.stderr.write(line + "\n");

export type Fields = Record<string, string | number | boolean | null | undefined>;

export function setLogLevel(level: Level): void {
  threshold = level;
}

export function setLogFormat(f: LogFormat): void {
  format = f;
}

export function logFormat(): LogFormat {
  return format;
}

/** Whether lines carry `time=` (tests turn it on or off; the default follows JOURNAL_STREAM). */
export function setLogTimestamps(on: boolean): void {
  stamped = on;
}

export function logTimestamps(): boolean {
  return stamped;
}

/** Would a line at `level` be written now? */
export function logEnabled(level: Level): boolean {
  return rank[level] >= rank[threshold];
}

/** Tests capture log lines through this; returns a function that restores the previous sink. */
export function setLogSink(fn: (line: string) => void): () => void {
  const previous = sink;
  sink = fn;
  return () => {
    sink = previous;
  };
}

/** Write a line formatted elsewhere (the proxy's access log) through the current sink. */
export function writeLogLine(line: string): void {
  sink(line);
}

const BARE = /^[A-Za-z0-9_.:/@+-]+$/;

/** A logfmt value: bare when safe, else a JSON string. */
export function logfmtValue(value: string): string {
  return BARE.test(value) ? value : JSON.stringify(value);
}

let lastMs = 0;
let lastStamp = "";

/** RFC 3339 with milliseconds, UTC; the string is reused within one millisecond (busy proxy). */
export function timestamp(): string {
  const now = Date.now();
  if (now !== lastMs) {
    lastMs = now;
    lastStamp = new Date(now).toISOString();
  }
  return lastStamp;
}

export function formatLine(level: Level, msg: string, fields: Fields = {}): string {
  if (format === "json") {
    const out: Record<string, unknown> = stamped ? { time: timestamp(), level, msg } : { level, msg };
    for (const [key, value] of Object.entries(fields)) if (value !== undefined && !(key in out)) out[key] = value;
    return JSON.stringify(out);
  }
  let line = `${stamped ? `time=${timestamp()} ` : ""}level=${level} msg=${JSON.stringify(msg)}`;
  for (const [key, value] of Object.entries(fields)) {
    if (value === undefined) continue;
    line += ` ${key}=${logfmtValue(String(value))}`;
  }
  return line;
}

function emit(level: Level, msg: string, fields?: Fields): void {
  if (rank[level] < rank[threshold]) return;
  sink(formatLine(level, msg, fields));
}

export const log = {
  debug: (msg: string, fields?: Fields) => emit("debug", msg, fields),
  info: (msg: string, fields?: Fields) => emit("info", msg, fields),
  warn: (msg: string, fields?: Fields) => emit("warn", msg, fields),
  error: (msg: string, fields?: Fields) => emit("error", msg, fields),
};
export type Logger = typeof log;
