// A small, strict, incremental HTTP/1.1 response parser for the upstream side of the proxy.
// Fed the bytes of one connection as they arrive; calls back with the final response head,
// body chunks (de-chunked) and the end of the message. Anything odd is an error and the
// connection is never reused: obs-fold, bare LF, control bytes, a header block over the limit,
// Content-Length with Transfer-Encoding, differing Content-Lengths, an unknown transfer coding,
// a 101 to a plain request, bad chunk framing. 1xx interim responses are skipped.

export interface ResponseHead {
  status: number;
  reason: string;
  /** name, value, name, value, ... as received */
  rawHeaders: string[];
}

export interface ResponseSink {
  onHead(head: ResponseHead): void;
  onBody(chunk: Buffer): void;
  onEnd(): void;
}

/** Bounds that do not come from the configuration. */
export const MAX_CHUNK_LINE = 4096;
/** 12 hex digits: 256 TiB per chunk, far beyond any real chunk, safe in a double */
export const MAX_CHUNK_HEX = 12;
export const MAX_CONTENT_LENGTH_DIGITS = 15;

const enum State {
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

const CRLFCRLF = Buffer.from("\r\n\r\n");
const STATUS_LINE = /^HTTP\/1\.([01]) ([1-9]\d\d)(?: ([\t\x20-\x7e\x80-\xff]*))?$/;
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;
const HEX = /^[0-9A-Fa-f]+$/;
const DIGITS = /^\d+$/;

export class ResponseParseError extends Error {}

export class ResponseParser {
  private state = State.Done;
  private pending: Buffer | undefined;
  private remaining = 0;
  private noBody = false;
  /** both sides allow the connection to carry another exchange */
  keepAlive = false;
  /** bytes arrived after the end of the message (the connection must not be reused) */
  extra = false;
  /** any byte of this response arrived */
  started = false;

  private maxHeaderBytes = 16384;

  constructor(private readonly sink: ResponseSink) {}

  /** Expect a new response; `head` = the request was HEAD (no body whatever the headers say). */
  begin(head: boolean, maxHeaderBytes: number): void {
    this.maxHeaderBytes = maxHeaderBytes;
    this.state = State.Head;
    this.pending = undefined;
    this.remaining = 0;
    this.noBody = head;
    this.keepAlive = false;
    this.extra = false;
    this.started = false;
  }

  get done(): boolean {
    return this.state === State.Done;
  }

  /** Parse bytes; throws ResponseParseError on bad input (the parser is then unusable). */
  execute(data: Buffer): void {
    if (data.length === 0) return;
    this.started = true;
    try {
      this.run(data);
    } catch (e) {
      this.state = State.Failed;
      throw e;
    }
  }

  /** The connection reached EOF: ends a close-delimited body, else the response is truncated. */
  eof(): void {
    if (this.state === State.UntilClose) {
      this.state = State.Done;
      this.sink.onEnd();
      return;
    }
    if (this.state !== State.Done) {
      this.state = State.Failed;
      throw new ResponseParseError("connection closed before the end of the response");
    }
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

  private run(data: Buffer): void {
    let at = 0;
    while (at < data.length) {
      switch (this.state) {
        case State.Head:
          at = this.head(data, at);
          break;
        case State.Length:
          at = this.framedBody(data, at, State.Done);
          if ((this.state as State) === State.Done) this.sink.onEnd();
          break;
        case State.UntilClose:
          this.sink.onBody(at === 0 ? data : data.subarray(at));
          at = data.length;
          break;
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
          this.extra = true;
          this.keepAlive = false;
          return;
        case State.Failed:
          throw new ResponseParseError("parser already failed");
      }
    }
  }

  /** Append to the pending line/head buffer; returns it. */
  private gather(data: Buffer, at: number): Buffer {
    const part = at === 0 ? data : data.subarray(at);
    this.pending = this.pending === undefined ? part : Buffer.concat([this.pending, part]);
    return this.pending;
  }

  /** Find `sep` in pending+data; returns [block without sep, index in data after sep] or undefined (all consumed). */
  private until(data: Buffer, at: number, sep: Buffer, limit: number, what: string): [Buffer, number] | undefined {
    const before = this.pending?.length ?? 0;
    const buf = this.gather(data, at);
    const from = Math.max(0, before - sep.length + 1);
    const end = buf.indexOf(sep, from);
    if (end < 0 || end + sep.length > limit) {
      if (buf.length > limit || end >= 0) throw new ResponseParseError(`${what} too large`);
      // hold a copy, not a view that would keep the caller's whole read buffer alive
      if (before === 0) this.pending = Buffer.from(buf);
      return undefined;
    }
    this.pending = undefined;
    return [buf.subarray(0, end), at + (end + sep.length - before)];
  }

  private head(data: Buffer, at: number): number {
    const found = this.until(data, at, CRLFCRLF, this.maxHeaderBytes, "response header");
    if (!found) return data.length;
    const [block, next] = found;
    const text = block.toString("latin1");
    const lines = text.split("\r\n");
    const m = STATUS_LINE.exec(lines[0]!);
    if (!m) throw new ResponseParseError("bad status line");
    const minor = m[1]!;
    const status = Number(m[2]);
    const rawHeaders: string[] = [];
    let contentLength: string | undefined;
    let te: string | undefined;
    let close = minor === "0";
    for (let i = 1; i < lines.length; i++) {
      const line = lines[i]!;
      if (line.includes("\n") || line.includes("\r")) throw new ResponseParseError("bare CR or LF in header");
      const c = line.charCodeAt(0);
      if (c === 0x20 || c === 0x09) throw new ResponseParseError("obs-fold in header");
      const colon = line.indexOf(":");
      if (colon <= 0) throw new ResponseParseError("bad header line");
      const name = line.slice(0, colon);
      if (!TOKEN.test(name)) throw new ResponseParseError("bad header name");
      const rawValue = line.slice(colon + 1);
      if (!FIELD_VALUE.test(rawValue)) throw new ResponseParseError("bad header value");
      const value = rawValue.trim();
      rawHeaders.push(name, value);
      switch (name.toLowerCase()) {
        case "content-length":
          if (!DIGITS.test(value) || value.length > MAX_CONTENT_LENGTH_DIGITS) throw new ResponseParseError("bad Content-Length");
          if (contentLength !== undefined && contentLength !== value) throw new ResponseParseError("differing Content-Length");
          contentLength = value;
          break;
        case "transfer-encoding":
          if (te !== undefined) throw new ResponseParseError("repeated Transfer-Encoding");
          te = value.toLowerCase();
          break;
        case "connection": {
          for (const token of value.split(",")) {
            const t = token.trim().toLowerCase();
            if (t === "close") close = true;
            else if (t === "keep-alive" && minor === "0") close = false;
          }
          break;
        }
      }
    }
    if (status < 200) {
      if (status === 101) throw new ResponseParseError("101 Switching Protocols to a plain request");
      // interim response: skip it, the final one follows on the same connection
      this.state = State.Head;
      return next;
    }
    if (te !== undefined && contentLength !== undefined) throw new ResponseParseError("Content-Length with Transfer-Encoding");
    if (te !== undefined && te !== "chunked") throw new ResponseParseError("unsupported Transfer-Encoding");
    this.keepAlive = !close;
    const reason = m[3] ?? "";
    if (this.noBody || status === 204 || status === 304) {
      this.state = State.Done;
    } else if (te !== undefined) {
      this.state = State.ChunkLine;
    } else if (contentLength !== undefined) {
      this.remaining = Number(contentLength);
      this.state = this.remaining === 0 ? State.Done : State.Length;
    } else {
      this.state = State.UntilClose;
      this.keepAlive = false;
    }
    this.sink.onHead({ status, reason, rawHeaders });
    if (this.state === State.Done) this.sink.onEnd();
    return next;
  }

  private chunkLine(data: Buffer, at: number): number {
    const found = this.until(data, at, CRLF, MAX_CHUNK_LINE, "chunk line");
    if (!found) return data.length;
    const [line, next] = found;
    const text = line.toString("latin1");
    const semi = text.indexOf(";");
    const hex = (semi < 0 ? text : text.slice(0, semi)).trimEnd();
    if (!HEX.test(hex) || hex.length > MAX_CHUNK_HEX) throw new ResponseParseError("bad chunk size");
    if (semi >= 0 && !FIELD_VALUE.test(text.slice(semi))) throw new ResponseParseError("bad chunk extension");
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
    if (buf[0] !== 0x0d || buf[1] !== 0x0a) throw new ResponseParseError("chunk data not followed by CRLF");
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
      throw new ResponseParseError("bad trailer line");
    return next;
  }
}

const CRLF = Buffer.from("\r\n");
