// One line per event on stderr, logfmt style (journald friendly). Never pass secrets.
export type Level = "debug" | "info" | "warn" | "error";
const rank: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };

let threshold: Level = (process.env.STEVEDORE_LOG_LEVEL as Level) in rank ? (process.env.STEVEDORE_LOG_LEVEL as Level) : "info";
let sink: (line: string) => void = (line) => process.stderr.write(line + "\n");

export type Fields = Record<string, string | number | boolean | null | undefined>;

export function setLogLevel(level: Level): void {
  threshold = level;
}

/** Tests capture log lines through this; returns a function that restores the previous sink. */
export function setLogSink(fn: (line: string) => void): () => void {
  const previous = sink;
  sink = fn;
  return () => {
    sink = previous;
  };
}

function quote(value: string): string {
  return /^[A-Za-z0-9_.:/@+-]+$/.test(value) ? value : JSON.stringify(value);
}

export function formatLine(level: Level, msg: string, fields: Fields = {}): string {
  let line = `level=${level} msg=${JSON.stringify(msg)}`;
  for (const [key, value] of Object.entries(fields)) {
    if (value === undefined) continue;
    line += ` ${key}=${quote(String(value))}`;
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
