// A command-socket client (the CLI, tests, benchmarks): NUL-JSON frames, answers matched by id.
import { connect, type Socket } from "node:net";
import { FrameReader } from "./frame.js";
import type { Answer } from "./messages.js";

const MAX_ANSWER_BYTES = 256 * 1024 * 1024;

export class CommandClient {
  /** every answer received, in order */
  readonly answers: Answer[] = [];
  /** how many final (Ok/Error) answers arrived */
  finals = 0;
  private readonly reader = new FrameReader(MAX_ANSWER_BYTES);
  private waiters: { pred: (a: Answer) => boolean; resolve: (a: Answer) => void }[] = [];
  private closedError: Error | undefined;
  private closeWaiters: ((e: Error) => void)[] = [];
  private seq = 0;
  private readonly listeners = new Set<(a: Answer) => void>();

  private constructor(readonly socket: Socket) {
    socket.on("data", (chunk: Buffer) => {
      for (const ev of this.reader.push(chunk)) {
        if (ev.kind !== "frame") continue;
        let a: Answer;
        try {
          a = JSON.parse(ev.text) as Answer;
        } catch {
          continue;
        }
        this.answers.push(a);
        if (a.status !== "Processing") this.finals++;
        for (const l of this.listeners) l(a);
        this.waiters = this.waiters.filter((w) => (w.pred(a) ? (w.resolve(a), false) : true));
      }
    });
    const closed = (err?: Error) => {
      this.closedError ??= err ?? new Error("the command socket closed the connection");
      for (const w of this.closeWaiters.splice(0)) w(this.closedError);
    };
    socket.on("error", closed);
    socket.on("close", () => closed());
  }

  static connect(path: string, timeoutMs = 5000): Promise<CommandClient> {
    return new Promise((resolve, reject) => {
      const s = connect(path);
      const timer = setTimeout(() => {
        s.destroy();
        reject(new Error(`cannot connect to the command socket ${path}: timed out`));
      }, timeoutMs);
      s.once("connect", () => {
        clearTimeout(timer);
        resolve(new CommandClient(s));
      });
      s.once("error", (err: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        reject(new Error(`cannot connect to the command socket ${path}: ${err.code ?? err.message}`));
      });
    });
  }

  /** A fresh id for a request. */
  nextId(prefix = "cli"): string {
    return `${prefix}-${process.pid}-${++this.seq}`;
  }

  /** Write one frame: an object is JSON-encoded, a string/Buffer is sent as is (plus the NUL). */
  send(message: unknown): void {
    const body = typeof message === "string" || Buffer.isBuffer(message) ? message : JSON.stringify(message);
    this.socket.write(Buffer.concat([Buffer.from(body), Buffer.from([0])]));
  }

  /** The first answer (already received or coming) matching `pred`. */
  waitFor(pred: (a: Answer) => boolean, timeoutMs = 10_000): Promise<Answer> {
    const seen = this.answers.find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        done();
        reject(new Error(`no answer from the command socket within ${timeoutMs} ms`));
      }, timeoutMs);
      const onClose = (e: Error) => {
        done();
        reject(e);
      };
      const w = {
        pred,
        resolve: (a: Answer) => {
          done();
          resolve(a);
        },
      };
      const done = () => {
        clearTimeout(timer);
        this.waiters = this.waiters.filter((x) => x !== w);
        this.closeWaiters = this.closeWaiters.filter((x) => x !== onClose);
      };
      this.waiters.push(w);
      if (this.closedError) return onClose(this.closedError);
      this.closeWaiters.push(onClose);
    });
  }

  /** Send a request and wait for its final answer (Ok or Error); `onAnswer` sees every answer. */
  async request(message: Record<string, unknown>, opts: { timeoutMs?: number; onAnswer?: (a: Answer) => void } = {}): Promise<Answer> {
    const id = typeof message.id === "string" ? message.id : this.nextId();
    const req = { ...message, id };
    let final: Answer | undefined;
    const mine = (a: Answer) => {
      if (a.id !== id || final) return;
      opts.onAnswer?.(a);
      if (a.status !== "Processing") final = a;
    };
    this.listeners.add(mine);
    try {
      this.send(req);
      return await this.waitFor((a) => a === final, opts.timeoutMs);
    } finally {
      this.listeners.delete(mine);
    }
  }

  close(): void {
    this.socket.destroy();
  }
}
