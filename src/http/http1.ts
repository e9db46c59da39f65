// What the proxy's two HTTP/1.1 parsers share (request-parser.ts for clients, response-parser.ts
// for upstreams): incremental parsing over the reads of one connection, the header block with
// its limit across reads, strict header lines, and the body framings (Content-Length, chunked
// with extensions and trailers). Strict means: obs-fold, bare CR or LF, control bytes, bad names,
// Content-Length with Transfer-Encoding, differing Content-Lengths, an unknown transfer coding
// and bad chunk framing are errors; the connection is then never reused. Also the writing side
// of the two framings the proxy produces: message heads and chunks.
import type { Writable } from "node:stream";

/** Bounds that do not come from the configuration. */
export const MAX_CHUNK_LINE = 4096;
/** 12 hex digits: 256 TiB per chunk, far beyond any real chunk, safe in a double */
export const MAX_CHUNK_HEX = 12;
export const MAX_CONTENT_LENGTH_DIGITS = 15;

export class HttpParseError extends Error {
  /** the status to answer a client with */
  constructor(
    message: string,
    readonly status = 400,
  ) {
    super(message);
  }
}

export interface BodySink {
  onBody(chunk: Buffer): void;
  onEnd(): void;
}

export const enum State {
  Head,
  Length,
  ChunkLine,
  ChunkData,
  ChunkCrlf,
  Trailers,
  UntilClose,
  Done,
  Failed,
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;
const HEX = /^[0-9A-Fa-f]+$/;
const DIGITS = /^\d+$/;
const CRLF = Buffer.from("\r\n");
const CRLFCRLF = Buffer.from("\r\n\r\n");

/** The header lines of a head block, checked, with what framing and connection handling need. */
export interface Fields {
  /** name, value, name, value, ... as received (values trimmed) */
  rawHeaders: string[];
  contentLength: string | undefined;
  /** lower-cased */
  transferEncoding: string | undefined;
  /** Connection tokens */
  close: boolean;
  keepAlive: boolean;
  upgrade: boolean;
}

/** without leading and trailing spaces and tabs (String.trim would also strip 0xA0 and more) */
function trimOws(s: string): string {
  let a = 0;
  let b = s.length;
  while (a < b && (s.charCodeAt(a) === 0x20 || s.charCodeAt(a) === 0x09)) a++;
  while (b > a && (s.charCodeAt(b - 1) === 0x20 || s.charCodeAt(b - 1) === 0x09)) b--;
  return a === 0 && b === s.length ? s : s.slice(a, b);
}

/** Parse header lines[from..]; throws HttpParseError. */
export function parseFields(lines: string[], from: number): Fields {
  const f: Fields = { rawHeaders: [], contentLength: undefined, transferEncoding: undefined, close: false, keepAlive: false, upgrade: false };
  for (let i = from; i < lines.length; i++) {
    const line = lines[i]!;
    if (line.includes("\n") || line.includes("\r")) throw new HttpParseError("bare CR or LF in header");
    const c = line.charCodeAt(0);
    if (c === 0x20 || c === 0x09) throw new HttpParseError("obs-fold in header");
    const colon = line.indexOf(":");
    if (colon <= 0) throw new HttpParseError("bad header line");
    const name = line.slice(0, colon);
    if (!TOKEN.test(name)) throw new HttpParseError("bad header name");
    const rawValue = line.slice(colon + 1);
    if (!FIELD_VALUE.test(rawValue)) throw new HttpParseError("bad header value");
    const value = trimOws(rawValue);
    f.rawHeaders.push(name, value);
    switch (name.toLowerCase()) {
      case "content-length":
        if (!DIGITS.test(value) || value.length > MAX_CONTENT_LENGTH_DIGITS) throw new HttpParseError("bad Content-Length");
        if (f.contentLength !== undefined && f.contentLength !== value) throw new HttpParseError("differing Content-Length");
        f.contentLength = value;
        break;
      case "transfer-encoding":
        if (f.transferEncoding !== undefined) throw new HttpParseError("repeated Transfer-Encoding");
        f.transferEncoding = value.toLowerCase();
        break;
      case "connection":
        for (const token of value.split(",")) {
          const t = token.trim().toLowerCase();
          if (t === "close") f.close = true;
          else if (t === "keep-alive") f.keepAlive = true;
          else if (t === "upgrade") f.upgrade = true;
        }
        break;
    }
  }
  if (f.transferEncoding !== undefined && f.contentLength !== undefined) throw new HttpParseError("Content-Length with Transfer-Encoding");
  if (f.transferEncoding !== undefined && f.transferEncoding !== "chunked") throw new HttpParseError("unsupported Transfer-Encoding", 501);
  return f;
}

/**
 * The incremental machinery: subclasses parse the head (`head`) and say what bytes after the
 * end of a message mean (`afterEnd`); the body framings are common.
 */
export abstract class MessageParser {
  protected state = State.Done;
  protected pending: Buffer | undefined;
  protected remaining = 0;
  protected maxHeaderBytes = 16384;

  constructor(protected readonly sink: BodySink) {}

  get done(): boolean {
    return this.state === State.Done;
  }

  /** Parse bytes; throws HttpParseError on bad input (the parser is then unusable). */
  execute(data: Buffer): void {
    if (data.length === 0) return;
    try {
      this.run(data, 0);
    } catch (e) {
      this.state = State.Failed;
      throw e;
    }
  }

  /** parse the head block (the bytes up to and without the blank line); returns the next state */
  protected abstract head(block: Buffer): State;
  /** bytes arrived after the end of a message; returns the offset to go on from */
  protected abstract afterEnd(data: Buffer, at: number): number;

  protected reset(state: State, maxHeaderBytes: number): void {
    this.state = state;
    this.maxHeaderBytes = maxHeaderBytes;
    this.pending = undefined;
    this.remaining = 0;
  }

  protected run(data: Buffer, at: number): void {
    while (at < data.length) {
      switch (this.state) {
        case State.Head: {
          const found = this.until(data, at, CRLFCRLF, this.maxHeaderBytes, "header");
          if (!found) return;
          at = found[1];
          this.state = this.head(found[0]);
          if (this.state === State.Done) this.sink.onEnd();
          break;
        }
        case State.Length:
          at = this.framedBody(data, at, State.Done);
          if ((this.state as State) === State.Done) this.sink.onEnd();
          break;
        case State.UntilClose:
          this.sink.onBody(at === 0 ? data : data.subarray(at));
          return;
        case State.ChunkLine:
          at = this.chunkLine(data, at);
          break;
        case State.ChunkData:
          at = this.framedBody(data, at, State.ChunkCrlf);
          break;
        case State.ChunkCrlf:
          at = this.chunkCrlf(data, at);
          break;
        case State.Trailers:
          at = this.trailers(data, at);
          break;
        case State.Done:
          at = this.afterEnd(data, at);
          break;
        case State.Failed:
          throw new HttpParseError("parser already failed");
      }
    }
  }

  /** The body framing of a message head: the state after the head. */
  protected bodyState(f: Fields): State {
    if (f.transferEncoding !== undefined) return State.ChunkLine;
    if (f.contentLength !== undefined) {
      this.remaining = Number(f.contentLength);
      return this.remaining === 0 ? State.Done : State.Length;
    }
    return State.UntilClose;
  }

  /** Pass on up to `remaining` body bytes; when they are all through, move to `next` (before the
   *  sink sees them, so a sink that stops the parser is not overridden). Returns the new offset. */
  private framedBody(data: Buffer, at: number, next: State): number {
    const n = Math.min(this.remaining, data.length - at);
    this.remaining -= n;
    if (this.remaining === 0) this.state = next;
    this.sink.onBody(data.subarray(at, at + n));
    return at + n;
  }

  /** Append to the pending line/head buffer; returns it. */
  private gather(data: Buffer, at: number): Buffer {
    const part = at === 0 ? data : data.subarray(at);
    this.pending = this.pending === undefined ? part : Buffer.concat([this.pending, part]);
    return this.pending;
  }

  /** Find `sep` in pending+data; returns [block without sep, index in data after sep] or undefined (all consumed). */
  private until(data: Buffer, at: number, sep: Buffer, limit: number, what: string, status = 431): [Buffer, number] | undefined {
    const before = this.pending?.length ?? 0;
    const buf = this.gather(data, at);
    const from = Math.max(0, before - sep.length + 1);
    const end = buf.indexOf(sep, from);
    if (end < 0 || end + sep.length > limit) {
      if (buf.length > limit || end >= 0) throw new HttpParseError(`${what} too large`, status);
      // hold a copy, not a view that would keep the caller's whole read buffer alive
      if (before === 0) this.pending = Buffer.from(buf);
      return undefined;
    }
    this.pending = undefined;
    return [buf.subarray(0, end), at + (end + sep.length - before)];
  }

  private chunkLine(data: Buffer, at: number): number {
    const found = this.until(data, at, CRLF, MAX_CHUNK_LINE, "chunk line", 400);
    if (!found) return data.length;
    const [line, next] = found;
    const text = line.toString("latin1");
    const semi = text.indexOf(";");
    const hex = (semi < 0 ? text : text.slice(0, semi)).trimEnd();
    if (!HEX.test(hex) || hex.length > MAX_CHUNK_HEX) throw new HttpParseError("bad chunk size");
    if (semi >= 0 && !FIELD_VALUE.test(text.slice(semi))) throw new HttpParseError("bad chunk extension");
    const size = parseInt(hex, 16);
    if (size === 0) {
      this.state = State.Trailers;
      this.remaining = 0; // trailer bytes seen
    } else {
      this.remaining = size;
      this.state = State.ChunkData;
    }
    return next;
  }

  private chunkCrlf(data: Buffer, at: number): number {
    // the two bytes after the chunk data, possibly split across reads
    const have = this.pending?.length ?? 0;
    const take = Math.min(2 - have, data.length - at);
    const buf = this.gather(data.subarray(0, at + take), at);
    if (buf.length < 2) {
      this.pending = Buffer.from(buf);
      return at + take;
    }
    this.pending = undefined;
    if (buf[0] !== 0x0d || buf[1] !== 0x0a) throw new HttpParseError("chunk data not followed by CRLF");
    this.state = State.ChunkLine;
    return at + take;
  }

  /** Trailer lines until an empty line; checked like header lines, then discarded. */
  private trailers(data: Buffer, at: number): number {
    const found = this.until(data, at, CRLF, this.maxHeaderBytes - this.remaining, "trailers");
    if (!found) return data.length;
    const [line, next] = found;
    this.remaining += line.length + 2;
    if (line.length === 0) {
      this.state = State.Done;
      this.sink.onEnd();
      return next;
    }
    const text = line.toString("latin1");
    const c = text.charCodeAt(0);
    const colon = text.indexOf(":");
    if (c === 0x20 || c === 0x09 || colon <= 0 || !TOKEN.test(text.slice(0, colon)) || !FIELD_VALUE.test(text.slice(colon + 1)))
      throw new HttpParseError("bad trailer line");
    return next;
  }
}

/** A message head: the start line and the header lines (name, value, ...), with the blank line. */
export function headBlock(startLine: string, headers: readonly string[]): string {
  let s = `${startLine}\r\n`;
  for (let i = 0; i < headers.length; i += 2) s += `${headers[i]}: ${headers[i + 1]}\r\n`;
  return s + "\r\n";
}

/** the end of a chunked body (no trailers) */
export const LAST_CHUNK = "0\r\n\r\n";

/** One chunk of a chunked body, in one corked write; false = wait for drain. */
export function writeChunk(sock: Writable, chunk: Buffer): boolean {
  sock.cork();
  sock.write(`${chunk.length.toString(16)}\r\n`, "latin1");
  sock.write(chunk);
  const ok = sock.write("\r\n", "latin1");
  sock.uncork();
  return ok;
}
