// Docker's event stream: GET /events, newline-delimited JSON over chunked transfer, on its own
// connection with no idle timeout. Reconnects with capped exponential backoff; callers learn of
// every (re)subscription so they can relist, because Docker keeps only 256 events and drops
// events for slow readers.
import { request, type ClientRequest, type IncomingMessage } from "node:http";
import type { DockerTransport } from "./client.js";
import type { DockerEvent } from "./types.js";

export const MAX_EVENT_LINE = 1024 * 1024;

/**
 * Splits a byte stream into lines on "\n" across chunk boundaries. Works on bytes, so a UTF-8
 * character split between chunks survives (0x0A never occurs inside a multi-byte sequence).
 * A line longer than `maxLine` bytes is dropped (reported once through `onOverlong`) and the
 * splitter resynchronises at the next newline.
 */
export class LineSplitter {
  private parts: Buffer[] = [];
  private size = 0;
  private discarding = false;

  constructor(
    private readonly maxLine = MAX_EVENT_LINE,
    private readonly onOverlong: (bytes: number) => void = () => {},
  ) {}

  /** Feed one chunk; returns the complete lines it finished (without the "\n", "\r" stripped). */
  push(chunk: Buffer): Buffer[] {
    const lines: Buffer[] = [];
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(0x0a, start);
      if (nl < 0) break;
      this.append(chunk.subarray(start, nl));
      if (this.discarding) this.discarding = false;
      else lines.push(this.take());
      this.parts = [];
      this.size = 0;
      start = nl + 1;
    }
    if (start < chunk.length) this.append(chunk.subarray(start));
    return lines;
  }

  /** bytes held for an unfinished line */
  get pending(): number {
    return this.size;
  }

  private append(bytes: Buffer): void {
    if (this.discarding || bytes.length === 0) return;
    if (this.size + bytes.length > this.maxLine) {
      this.onOverlong(this.size + bytes.length);
      this.discarding = true;
      this.parts = [];
      this.size = 0;
      return;
    }
    this.parts.push(Buffer.from(bytes)); // copy: the chunk's memory may be reused by the stream
    this.size += bytes.length;
  }

  private take(): Buffer {
    const line = this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts, this.size);
    return line.length && line[line.length - 1] === 0x0d ? line.subarray(0, line.length - 1) : line;
  }
}

/** Parse one event line; undefined for blank lines, non-JSON or non-event objects. */
export function parseEventLine(line: Buffer): DockerEvent | undefined {
  if (line.length === 0) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(line.toString("utf8"));
  } catch {
    return undefined;
  }
  if (typeof value !== "object" || value === null) return undefined;
  const e = value as Partial<DockerEvent>;
  if (typeof e.Action !== "string" || typeof e.Actor !== "object" || e.Actor === null || typeof e.Actor.ID !== "string") return undefined;
  return e as DockerEvent;
}

export interface EventStreamHandlers {
  /** one parsed container event */
  onEvent(event: DockerEvent): void;
  /** subscribed (first time or after a reconnect): events flow from here on; relist now */
  onUp(): void;
  /** the stream ended or a (re)connect attempt failed; a retry is scheduled after `retryInMs` */
  onDown(err: Error, retryInMs: number): void;
  /** an over-long or malformed line was dropped */
  onDropped?(reason: string, bytes: number): void;
}

export interface EventStreamOptions {
  filters?: Record<string, string[]>;
  minBackoffMs?: number;
  maxBackoffMs?: number;
  maxLine?: number;
  connectTimeoutMs?: number;
}

/** A self-reconnecting subscription to Docker's event stream. */
export class DockerEventStream {
  private req: ClientRequest | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private stopped = true;
  private backoffMs: number;
  private attempts = 0;
  private isUp = false;
  private readonly min: number;
  private readonly max: number;

  constructor(
    private readonly transport: DockerTransport,
    private readonly handlers: EventStreamHandlers,
    private readonly opts: EventStreamOptions = {},
  ) {
    this.min = opts.minBackoffMs ?? 100;
    this.max = opts.maxBackoffMs ?? 5_000;
    this.backoffMs = this.min;
  }

  get up(): boolean {
    return this.isUp;
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    void this.connect();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.req?.destroy();
    this.req = undefined;
    this.isUp = false;
  }

  private async connect(): Promise<void> {
    if (this.stopped) return;
    // After any failure the engine may have been restarted or upgraded: renegotiate.
    if (this.attempts++ > 0) this.transport.resetVersion();
    let version: string;
    try {
      version = await this.transport.version();
    } catch (err) {
      this.failed(err as Error);
      return;
    }
    if (this.stopped) return;
    const filters = JSON.stringify(this.opts.filters ?? { type: ["container"] });
    const req = request({
      socketPath: this.transport.socketPath,
      path: `/v${version}/events?filters=${encodeURIComponent(filters)}`,
      method: "GET",
      headers: { Host: "docker" },
      agent: false, // its own connection: never pooled, never idle-timed-out
    });
    this.req = req;
    const connectTimer = setTimeout(() => req.destroy(new Error("connect timeout")), this.opts.connectTimeoutMs ?? 5_000);
    let ended = false;
    const end = (err: Error) => {
      clearTimeout(connectTimer);
      if (ended || this.req !== req) return;
      ended = true;
      this.req = undefined;
      req.destroy();
      this.failed(err);
    };
    req.once("error", end);
    req.once("response", (res: IncomingMessage) => {
      clearTimeout(connectTimer);
      if (res.statusCode !== 200) {
        res.resume();
        end(new Error(`events: HTTP ${res.statusCode}`));
        return;
      }
      this.read(res, end);
    });
    req.end();
  }

  private read(res: IncomingMessage, end: (err: Error) => void): void {
    const splitter = new LineSplitter(this.opts.maxLine ?? MAX_EVENT_LINE, (bytes) => this.handlers.onDropped?.("over-long line", bytes));
    res.on("data", (chunk: Buffer) => {
      for (const line of splitter.push(chunk)) {
        const event = parseEventLine(line);
        if (event) this.handlers.onEvent(event);
        else if (line.length) this.handlers.onDropped?.("malformed line", line.length);
        if (this.stopped) return;
      }
    });
    res.once("end", () => end(new Error("event stream ended")));
    res.once("error", end);
    res.once("close", () => end(new Error("event stream closed")));
    this.backoffMs = this.min;
    this.isUp = true;
    this.handlers.onUp();
  }

  private failed(err: Error): void {
    this.isUp = false;
    if (this.stopped) return;
    const delay = this.backoffMs;
    this.backoffMs = Math.min(this.max, this.backoffMs * 2);
    this.handlers.onDown(err, delay);
    if (this.stopped) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      void this.connect();
    }, delay);
  }
}
