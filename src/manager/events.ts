// Live events for GET /api/events (Server-Sent Events): a numbered ring of recent events that a
// client reconnecting with Last-Event-ID is replayed from, and subscribers with bounded buffers.
import type { Incoming } from "../http/index.js";

export type EventType = "job" | "task" | "worker" | "log";

/** Recent events kept for replay after a reconnect. */
const RING_SIZE = 4096;
/** Bytes a subscriber may fall behind (socket buffer) before it is dropped. */
const MAX_BEHIND_BYTES = 1024 * 1024;
/** Most subscribers at once. */
export const MAX_SUBSCRIBERS = 256;
/** Log lines are kept for replay this long after the last subscriber left (or was dropped for
 *  falling behind), so its reconnect with Last-Event-ID does not miss them. */
const RECONNECT_GRACE_MS = 60_000;
/** A comment line now and then keeps proxies and idle timers from closing a quiet stream. */
const KEEPALIVE_MS = 15_000;

interface Stored {
  seq: number;
  type: EventType;
  /** task id, for log lines (only sent to subscribers that asked for that task) */
  task: string | undefined;
  /** the event's document (a fresh copy the farm never touches again) */
  data: unknown;
  /** the SSE frame, made when first sent: most events are published with nobody listening */
  frame: Buffer | undefined;
}

function frameOf(e: Stored, epoch: string): Buffer {
  return (e.frame ??= Buffer.from(`id: ${epoch}-${e.seq}\nevent: ${e.type}\ndata: ${JSON.stringify(e.data)}\n\n`));
}

interface Subscriber {
  inc: Incoming;
  task: string | undefined;
  /** the id of the user token that opened the stream: signing it out ends the stream */
  session: string | undefined;
}

/**
 * Ids are `<epoch>-<seq>`: the epoch is this process's start, so a client reconnecting after a
 * restart (or after falling out of the ring) is told with a `reset` event to fetch the state
 * again instead of missing changes silently.
 */
export class EventHub {
  private seq = 0;
  private readonly epoch = Date.now().toString(36);
  /** the last RING_SIZE events, event `seq` in slot seq % RING_SIZE */
  private readonly ring: (Stored | undefined)[] = new Array(RING_SIZE);
  private subs = new Set<Subscriber>();
  private keepalive: NodeJS.Timeout | undefined;
  /** when the last subscriber left (performance.now()); -Infinity: never had one */
  private lastLeft = -Infinity;

  get subscribers(): number {
    return this.subs.size;
  }

  publish(type: EventType, data: unknown, task?: string): void {
    // log lines are only for followers: live ones, or one about to reconnect
    if (this.subs.size === 0 && type === "log" && performance.now() - this.lastLeft > RECONNECT_GRACE_MS) return;
    const seq = ++this.seq;
    const stored: Stored = { seq, type, task, data, frame: undefined };
    this.ring[seq % RING_SIZE] = stored;
    for (const s of this.subs) this.send(s, stored);
  }

  /** Answer `inc` with the stream; false when there are too many subscribers already. */
  subscribe(inc: Incoming, opts: { lastEventId?: string; task?: string; session?: string }): boolean {
    if (this.subs.size >= MAX_SUBSCRIBERS) return false;
    const sub: Subscriber = { inc, task: opts.task, session: opts.session };
    inc.writeHead(200, "OK", [
      "Content-Type", "text/event-stream",
      "Cache-Control", "no-store",
      "X-Accel-Buffering", "no",
    ]);
    inc.write(Buffer.from(`retry: 2000\n: ${this.epoch}-${this.seq}\n\n`));
    this.replay(sub, opts.lastEventId);
    this.subs.add(sub);
    inc.onClose(() => this.unsubscribe(sub));
    // the answer never ends, so a client that closed its side is gone: free its place now, not
    // when a write finally fails
    inc.socket.once("end", () => inc.destroy());
    this.keepalive ??= setInterval(() => this.ping(), KEEPALIVE_MS).unref();
    return true;
  }

  /** End the streams a signed-out token opened (its other tabs stop getting data at once). */
  endSession(session: string): void {
    for (const s of this.subs) {
      if (s.session !== session) continue;
      this.subs.delete(s); // gone now, whenever its close is reported
      s.inc.end();
    }
  }

  /** End every stream (daemon stop). */
  close(): void {
    for (const s of this.subs) s.inc.end();
    this.subs.clear();
    clearInterval(this.keepalive);
    this.keepalive = undefined;
  }

  private replay(sub: Subscriber, lastEventId: string | undefined): void {
    if (lastEventId === undefined) return;
    const m = /^([0-9a-z]+)-(\d+)$/.exec(lastEventId);
    const oldest = this.seq === 0 ? 1 : Math.max(1, this.seq - RING_SIZE + 1);
    const last = m ? Number(m[2]) : NaN;
    // another process's ids, or older than what the ring holds: the client must reload
    if (!m || m[1] !== this.epoch || last > this.seq || last + 1 < oldest) {
      sub.inc.write(Buffer.from(`id: ${this.epoch}-${this.seq}\nevent: reset\ndata: {}\n\n`));
      return;
    }
    // not bounded: a replay is at most the ring, in frames shared with every other subscriber, and a
    // bound here would drop a client that was dropped for being behind again and again; live
    // events after it are bounded
    for (let seq = last + 1; seq <= this.seq; seq++) this.send(sub, this.ring[seq % RING_SIZE]!, false);
  }

  private send(sub: Subscriber, e: Stored, bounded = true): void {
    if (e.type === "log" && e.task !== sub.task) return;
    sub.inc.write(frameOf(e, this.epoch));
    if (bounded && sub.inc.socket.writableLength > MAX_BEHIND_BYTES) sub.inc.destroy(); // too slow: it reconnects and replays
  }

  private ping(): void {
    if (this.subs.size === 0) {
      clearInterval(this.keepalive);
      this.keepalive = undefined;
      return;
    }
    const frame = Buffer.from(": keepalive\n\n");
    for (const s of this.subs) s.inc.write(frame);
  }

  private unsubscribe(sub: Subscriber): void {
    this.subs.delete(sub);
    if (this.subs.size === 0) this.lastLeft = performance.now();
  }
}
