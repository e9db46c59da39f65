// The admin socket protocol (stevedore(8), ADMIN SOCKET): one newline-terminated command per
// connection, one newline-terminated JSON reply. This module is pure (no sockets) so the
// framing and the command dispatch can be fuzzed in-process.

/** Longest command line, in bytes, without its newline. */
export const MAX_LINE_BYTES = 4096;
/** A client that has not sent a whole line this long after connecting gets `invalid input`. */
export const LINE_TIMEOUT_MS = 5000;

export type Reply = { status: "ok"; [field: string]: unknown } | { status: "error"; message: string };

export const INVALID_INPUT: Reply = Object.freeze({ status: "error", message: "invalid input" });

/** A command: `args` are the words after the command word. */
export type Handler = (args: string[]) => Reply | Promise<Reply>;

export function encodeReply(reply: Reply): string {
  return JSON.stringify(reply) + "\n";
}

/** Accumulates bytes until the first newline; never holds more than MAX_LINE_BYTES + one chunk. */
export class LineReader {
  private chunks: Buffer[] = [];
  private size = 0;

  /** → the line (without "\n"), "too-long", or undefined when more input is needed */
  feed(chunk: Buffer): Buffer | "too-long" | undefined {
    const nl = chunk.indexOf(0x0a);
    if (nl >= 0) {
      if (this.size + nl > MAX_LINE_BYTES) return "too-long";
      this.chunks.push(chunk.subarray(0, nl));
      return Buffer.concat(this.chunks);
    }
    this.size += chunk.length;
    if (this.size > MAX_LINE_BYTES) return "too-long";
    this.chunks.push(chunk);
    return undefined;
  }

  /** the end of input before a newline: what was sent so far is the line */
  end(): Buffer {
    return Buffer.concat(this.chunks);
  }
}

const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }); // keep a BOM, to refuse it
// C0 controls, DEL and C1 controls. (A trailing "\r" is removed before this check.)
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

/** The words of a command line, or undefined for invalid input (empty, non-UTF-8, control characters). */
export function parseLine(line: Buffer): string[] | undefined {
  if (line.length > MAX_LINE_BYTES) return undefined;
  let text: string;
  try {
    text = decoder.decode(line[line.length - 1] === 0x0d ? line.subarray(0, -1) : line);
  } catch {
    return undefined;
  }
  if (CONTROL.test(text)) return undefined;
  if (text.charCodeAt(0) === 0xfeff) return undefined; // a BOM is not a command
  const words = text.split(" ").filter((w) => w !== "");
  return words.length ? words : undefined;
}

/** Answer one command line with the given handlers. Never throws. */
export async function dispatch(line: Buffer, handlers: Readonly<Record<string, Handler>>, onError?: (err: unknown) => void): Promise<Reply> {
  const words = parseLine(line);
  if (!words) return INVALID_INPUT;
  const [command, ...args] = words as [string, ...string[]];
  const handler = Object.hasOwn(handlers, command) ? handlers[command] : undefined;
  if (!handler) return { status: "error", message: `unknown command: ${command}` };
  try {
    return await handler(args);
  } catch (err) {
    onError?.(err);
    return { status: "error", message: "internal error" };
  }
}
