// A raw TCP client for tests that watch the bytes of an answer and how the server ends the connection.
import { connect, type Socket } from "node:net";

export interface RawClient {
  s: Socket;
  text(): string;
  /** the server shut down its sending side */
  ended(): boolean;
  closed(): boolean;
  /** an error the socket saw (a reset: ECONNRESET, EPIPE) */
  error(): string | undefined;
}

/** Connects to 127.0.0.1:port (half-open allowed) and collects what the server sends as latin1 text. */
export function rawClient(port: number): Promise<RawClient> {
  return new Promise((resolve, reject) => {
    let text = "";
    let ended = false;
    let closed = false;
    let error: string | undefined;
    const s = connect({ port, host: "127.0.0.1", allowHalfOpen: true }, () => {
      s.off("error", reject);
      s.on("error", (e: NodeJS.ErrnoException) => (error = e.code ?? e.message));
      resolve({ s, text: () => text, ended: () => ended, closed: () => closed, error: () => error });
    });
    s.setEncoding("latin1").on("data", (c: string) => (text += c));
    s.on("end", () => (ended = true));
    s.on("close", () => (closed = true));
    s.once("error", reject);
  });
}

/** Writes and resolves once the data is handed to the kernel. */
export const send = (s: Socket, data: string | Buffer) => new Promise<void>((resolve, reject) => s.write(data, (err) => (err ? reject(err) : resolve())));
