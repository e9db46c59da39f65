// The proxy's access log: one line per request, built by string concatenation (no per-request
// objects), written in batches (one write per event-loop turn) to stderr, a file (reopened on
// SIGUSR1, logrotate's convention) or nowhere. Never logs headers, bodies or (unless asked) the query.
import { close, closeSync, openSync, write, writeSync } from "node:fs";
import { open } from "node:fs/promises";
import { log, logEnabled, logFormat, logTimestamps, logfmtValue, timestamp, writeLogLine } from "../log.js";

/** One request as the proxy saw it. */
export interface AccessEntry {
  client: string;
  host: string;
  method: string;
  /** the request target as received */
  url: string;
  status: number;
  bytes: number;
  /** "ip:port" of the backend that answered, "" when none */
  upstream: string;
  /** ms from the first connect attempt to the upstream's end; -1 when none */
  upstreamMs: number;
  totalMs: number;
  /** "command" | "config" | "ingress" | "none" */
  source: string;
}

/** Query parameters whose value is never written, even with access_log_query. */
const SECRET_PARAM = /^(.*token.*|.*secret.*|.*passw.*|.*key|auth.*|jwt|sig|signature|code|session.*|sid|credential.*)$/i;

/** The path as logged: without the query by default; with it, secret-looking values redacted. */
export function loggedPath(url: string, keepQuery: boolean): string {
  const q = url.indexOf("?");
  if (q < 0) return url;
  if (!keepQuery) return url.slice(0, q);
  const params = url.slice(q + 1).split("&").map((p) => {
    const eq = p.indexOf("=");
    if (eq < 0) return p;
    let name = p.slice(0, eq);
    try {
      name = decodeURIComponent(name);
    } catch {
      // a bad escape: the raw name decides
    }
    return SECRET_PARAM.test(name) ? `${p.slice(0, eq)}=REDACTED` : p;
  });
  return `${url.slice(0, q)}?${params.join("&")}`;
}

const ms = (v: number) => (v < 0 ? "-" : v.toFixed(3));

/** The line, without the newline. */
export function formatAccess(e: AccessEntry, keepQuery: boolean): string {
  const path = loggedPath(e.url, keepQuery);
  if (logFormat() === "json") {
    const time = logTimestamps() ? `"time":"${timestamp()}",` : "";
    return `{${time}"level":"info","msg":"access","client":${JSON.stringify(e.client)},"host":${JSON.stringify(e.host)},"method":${JSON.stringify(e.method)},"path":${JSON.stringify(path)},"status":${e.status},"bytes":${e.bytes},"upstream":${JSON.stringify(e.upstream)},"upstream_ms":${e.upstreamMs < 0 ? "null" : ms(e.upstreamMs)},"total_ms":${ms(e.totalMs)},"source":"${e.source}"}`;
  }
  const time = logTimestamps() ? `time=${timestamp()} ` : "";
  return `${time}level=info msg=access client=${logfmtValue(e.client)} host=${logfmtValue(e.host || "-")} method=${logfmtValue(e.method)} path=${logfmtValue(path || "-")} status=${e.status} bytes=${e.bytes} upstream=${e.upstream || "-"} upstream_ms=${ms(e.upstreamMs)} total_ms=${ms(e.totalMs)} source=${e.source}`;
}

const FLUSH_BYTES = 64 * 1024;

/** A reload to an access log file that cannot be opened fails (the old destination stays). */
export async function checkAccessLogFile(dest: string): Promise<string | undefined> {
  if (dest === "stderr" || dest === "off") return undefined;
  try {
    await (await open(dest, "a", 0o640)).close();
    return undefined;
  } catch (err) {
    return `access_log: cannot open ${dest}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`;
  }
}

export class AccessLog {
  /** "stderr", "off" or a file path */
  private dest = "stderr";
  private keepQuery = false;
  private buf = "";
  private scheduled = false;
  private fd: number | undefined;
  private writing = false;
  private reopenWanted = false;

  /** Apply the config (at start and after each reload). */
  configure(dest: string, keepQuery: boolean): void {
    this.keepQuery = keepQuery;
    if (dest === this.dest) return;
    this.flushSync();
    this.closeFile();
    this.dest = dest;
    if (dest !== "stderr" && dest !== "off") this.openFile();
  }

  get enabled(): boolean {
    return this.dest === "off" ? false : this.dest !== "stderr" || logEnabled("info");
  }

  record(e: AccessEntry): void {
    if (!this.enabled) return;
    this.buf += formatAccess(e, this.keepQuery) + "\n";
    if (this.buf.length >= FLUSH_BYTES) this.flush();
    else if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.flush);
    }
  }

  /** SIGUSR1: the file was renamed away; the next batch goes to a new file of the same name. */
  reopen(): void {
    if (this.fd === undefined && (this.dest === "stderr" || this.dest === "off")) return;
    this.reopenWanted = true;
    if (!this.writing) this.flush();
  }

  /** Write what is pending now and close the file (stop). */
  close(): void {
    this.flushSync();
    this.closeFile();
    this.dest = "stderr";
  }

  private flush = (): void => {
    this.scheduled = false;
    if (this.dest === "stderr") {
      if (this.buf) writeLogLine(this.buf.slice(0, -1));
      this.buf = "";
      return;
    }
    if (this.writing) return; // the write's callback takes the rest
    if (this.reopenWanted) {
      this.reopenWanted = false;
      this.closeFile();
      this.openFile();
    }
    if (!this.buf || this.fd === undefined) {
      this.buf = "";
      return;
    }
    const chunk = Buffer.from(this.buf);
    this.buf = "";
    this.writing = true;
    const fd = this.fd;
    write(fd, chunk, (err) => {
      this.writing = false;
      if (err) log.warn("access log write failed", { error: err.code ?? err.message });
      if (this.buf || this.reopenWanted) this.flush();
    });
  };

  private flushSync(): void {
    if (!this.buf) return;
    if (this.dest === "stderr") writeLogLine(this.buf.slice(0, -1));
    else if (this.fd !== undefined)
      try {
        writeSync(this.fd, this.buf);
      } catch {
        // the file went away: nothing more to do at stop
      }
    this.buf = "";
  }

  private openFile(): void {
    try {
      this.fd = openSync(this.dest, "a", 0o640);
    } catch (err) {
      this.fd = undefined;
      log.error("access log file not opened", { file: this.dest, error: (err as NodeJS.ErrnoException).code ?? (err as Error).message });
    }
  }

  private closeFile(): void {
    const fd = this.fd;
    this.fd = undefined;
    if (fd === undefined) return;
    if (this.writing) close(fd, () => {});
    else closeSync(fd);
  }
}
