// The command socket's connections: NUL-framed requests in, answers out by id. Requests of one
// connection run concurrently up to MAX_IN_FLIGHT; beyond that (or when the peer does not read its
// answers) the connection stops reading until work drains, so memory per connection stays bounded.
import { createServer, type Server, type Socket } from "node:net";
import { log } from "../../log.js";
import { decodeRequest } from "./decode.js";
import { encodeFrame, FrameReader } from "./frame.js";
import { handleOrder, type HandlerHost } from "./handler.js";
import { answer, type Answer } from "./messages.js";

export const MAX_CONNECTIONS = 64;
export const MAX_IN_FLIGHT = 32;
const MAX_UNREAD_ANSWER_BYTES = 4 * 1024 * 1024;
const IDLE_TIMEOUT_MS = 10 * 60_000;
const TOO_LARGE = "\0too-large"; // queue markers cannot collide with frames: a frame never holds a NUL


class Connection {
  private readonly reader: FrameReader;
  private readonly queue: string[] = [];
  private inFlight = 0;
  private closing = false;
  /** the peer half-closed: answer what it sent, then end */
  private peerEnded = false;
  /** set when a frame went over the limit: answer what came before, then Error and close */
  private tooLarge: number | undefined;

  constructor(readonly socket: Socket, maxFrameBytes: number, private readonly host: HandlerHost) {
    this.reader = new FrameReader(maxFrameBytes);
    socket.on("data", (chunk: Buffer) => this.onData(chunk));
    socket.on("drain", () => this.pump());
    socket.on("end", () => {
      this.peerEnded = true;
      this.pump();
    });
    socket.on("error", () => {}); // a peer that vanished; "close" follows
    socket.setTimeout(IDLE_TIMEOUT_MS, () => {
      if (this.inFlight === 0) socket.destroy();
    });
  }

  send(a: Answer): void {
    if (!this.socket.destroyed && this.socket.writable) this.socket.write(encodeFrame(a));
  }

  private onData(chunk: Buffer): void {
    for (const ev of this.reader.push(chunk)) {
      if (ev.kind === "frame") this.queue.push(ev.text);
      else if (ev.kind === "bad-utf8") this.queue.push("\0bad-utf8"); // keeps answers in arrival order
      else {
        // answered once the frames before it are: every complete frame gets its answer
        this.tooLarge = ev.limit;
        this.queue.push(TOO_LARGE);
        break;
      }
    }
    this.pump();
  }

  /** Start queued requests while there is room; read more only when the queue is empty. */
  private pump(): void {
    while (this.queue.length && this.inFlight < MAX_IN_FLIGHT && this.socket.writableLength < MAX_UNREAD_ANSWER_BYTES) {
      if (this.queue[0] === TOO_LARGE) {
        if (this.inFlight > 0) break;
        this.queue.length = 0;
        this.send(answer("", "Error", `frame larger than ${this.tooLarge} bytes; closing the connection`));
        void this.close(performance.now() + 2000);
        return;
      }
      this.start(this.queue.shift()!);
    }
    if (this.closing) return;
    if (this.tooLarge !== undefined) {
      this.socket.pause();
      return;
    }
    if (this.peerEnded) {
      if (this.queue.length === 0 && this.inFlight === 0) this.close(performance.now() + 2000);
      return;
    }
    const full = this.queue.length > 0 || this.inFlight >= MAX_IN_FLIGHT || this.socket.writableLength >= MAX_UNREAD_ANSWER_BYTES;
    if (full) this.socket.pause();
    else this.socket.resume();
  }

  private start(text: string): void {
    if (text === "\0bad-utf8") return this.send(answer("", "Error", "frame is not valid UTF-8"));
    const d = decodeRequest(text);
    if (!d.ok) return this.send(answer(d.id, "Error", d.message));
    this.inFlight++;
    handleOrder(this.host, d.id, d.order, (a) => this.send(a))
      .catch((err: unknown) => {
        log.error("command failed", { type: d.order.type, error: (err as Error).message });
        this.send(answer(d.id, "Error", `internal error: ${(err as Error).message}`));
      })
      .finally(() => {
        this.inFlight--;
        this.pump();
      });
  }

  /** Let written answers reach the peer, then close; hard close at `deadline`. */
  close(deadline: number): Promise<void> {
    this.closing = true;
    if (this.socket.destroyed) return Promise.resolve();
    return new Promise((res) => {
      const timer = setTimeout(() => this.socket.destroy(), Math.max(0, Math.min(deadline - performance.now(), 2000)));
      this.socket.once("close", () => {
        clearTimeout(timer);
        res();
      });
      this.socket.end();
    });
  }
}

export class CommandServer {
  readonly server: Server;
  private readonly conns = new Set<Connection>();

  constructor(maxFrameBytes: number, host: HandlerHost) {
    // allowHalfOpen: `printf ... | socat` ends its side after the request and still reads answers
    this.server = createServer({ allowHalfOpen: true }, (socket) => {
      if (this.conns.size >= MAX_CONNECTIONS) {
        socket.on("error", () => {});
        socket.end(encodeFrame(answer("", "Error", `too many connections (limit ${MAX_CONNECTIONS})`)));
        return;
      }
      const c = new Connection(socket, maxFrameBytes, host);
      this.conns.add(c);
      socket.once("close", () => this.conns.delete(c));
    });
  }

  get connections(): number {
    return this.conns.size;
  }

  async close(deadline: number): Promise<void> {
    const closed = new Promise<void>((res) => this.server.close(() => res()));
    await Promise.all([...this.conns].map((c) => c.close(deadline)));
    await closed;
  }
}
