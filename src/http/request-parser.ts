// The client side's request parser (see http1.ts for what is shared and how strict it is).
// Fed the bytes of one client connection; calls back with each request head, its body chunks
// (de-chunked) and its end. A request without Content-Length or Transfer-Encoding has no body.
// After the end of a request the parser holds what follows (a pipelined request) until `next()`;
// an upgrade request ends at its head, and what follows belongs to the new protocol (`rest()`).
import { HttpParseError, MessageParser, State, parseFields, type BodySink } from "./http1.js";

export { HttpParseError as RequestParseError } from "./http1.js";

export interface RequestHead {
  method: string;
  /** the request target as sent */
  url: string;
  /** HTTP/1.0 (else 1.1) */
  http10: boolean;
  /** name, value, name, value, ... as received */
  rawHeaders: string[];
  /** the client allows the connection to carry another request */
  keepAlive: boolean;
  /** Connection: upgrade with an Upgrade header: the connection changes protocol after this head */
  upgrade: boolean;
  /** the request has a body (Content-Length > 0 or chunked) */
  hasBody: boolean;
  chunked: boolean;
  /** the Expect header, lower-cased */
  expect: string | undefined;
}

export interface RequestSink extends BodySink {
  onRequest(head: RequestHead): void;
}

/** method SP request-target SP HTTP-version. The target is visible ASCII only (RFC 9112 §3.2: no
 *  control, space or non-ASCII byte; these are never forwarded). Some ASCII outside the strict
 *  grammar (`"<>\^`{|}`) is let through as other servers do: real clients send it raw in queries. */
const REQUEST_LINE = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+) ([\x21-\x7e]+) HTTP\/1\.([01])$/;
const METHOD = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

export class RequestParser extends MessageParser {
  /** bytes after the end of the current request (the next pipelined one, or upgraded traffic) */
  private held: Buffer | undefined;
  /** the last head block handed to head() (its method tells how to refuse it) */
  private lastHead: Buffer | undefined;

  constructor(protected override readonly sink: RequestSink) {
    super(sink);
  }

  /** Start on a fresh connection. */
  begin(maxHeaderBytes: number): void {
    this.reset(State.Head, maxHeaderBytes);
    this.held = undefined;
    this.lastHead = undefined;
  }

  /** between requests, with no byte of the next one seen */
  get idle(): boolean {
    return this.state === State.Head && this.pending === undefined && this.held === undefined;
  }

  /** body bytes of the current request still to come: known for a Content-Length body (0 once
   *  it is through), undefined for a chunked one */
  get bodyLeft(): number | undefined {
    if (this.state === State.Length) return this.remaining;
    return this.state === State.Done ? 0 : undefined;
  }

  /** bytes held after the current request */
  get heldBytes(): number {
    return this.held?.length ?? 0;
  }

  /** The current request's answer is done: go on with the next one (held bytes first). */
  next(maxHeaderBytes: number): void {
    const held = this.held;
    this.reset(State.Head, maxHeaderBytes);
    this.held = undefined;
    this.lastHead = undefined;
    if (held) this.execute(held);
  }

  /** The method of a request whose head failed (bad line, too large), when its first bytes start
   *  with one: a refused HEAD must be answered without a body. */
  failedMethod(): string | undefined {
    const buf = this.pending ?? this.lastHead;
    if (buf === undefined) return undefined;
    const sp = buf.subarray(0, 21).indexOf(0x20);
    if (sp <= 0) return undefined;
    const method = buf.subarray(0, sp).toString("latin1");
    return METHOD.test(method) ? method : undefined;
  }

  /** Give up parsing (upgrade): the bytes held after the head. */
  rest(): Buffer {
    const held = this.held ?? Buffer.alloc(0);
    this.held = undefined;
    this.state = State.Failed;
    return held;
  }

  protected afterEnd(data: Buffer, at: number): number {
    const part = data.subarray(at);
    this.held = this.held === undefined ? Buffer.from(part) : Buffer.concat([this.held, part]);
    return data.length;
  }

  protected head(block: Buffer): State {
    this.lastHead = block;
    const lines = block.toString("latin1").split("\r\n");
    const m = REQUEST_LINE.exec(lines[0]!);
    if (!m) throw new HttpParseError(lines[0]!.length === 0 ? "empty request line" : "bad request line");
    const http10 = m[3] === "0";
    const f = parseFields(lines, 1);
    let expect: string | undefined;
    let hasUpgradeHeader = false;
    const raw = f.rawHeaders;
    for (let i = 0; i < raw.length; i += 2) {
      const n = raw[i]!;
      if (n.length === 6 && n.toLowerCase() === "expect") expect = raw[i + 1]!.toLowerCase();
      else if (n.length === 7 && n.toLowerCase() === "upgrade") hasUpgradeHeader = true;
    }
    const upgrade = f.upgrade && hasUpgradeHeader && !http10;
    // no framing = no body; an upgrade request ends at its head (what follows is the new protocol)
    let next = this.bodyState(f);
    if (next === State.UntilClose || upgrade) next = State.Done;
    this.state = next; // already, for an answer made inside onRequest (bodyLeft)
    this.sink.onRequest({
      method: m[1]!,
      url: m[2]!,
      http10,
      rawHeaders: raw,
      keepAlive: !f.close && (!http10 || f.keepAlive),
      upgrade,
      hasBody: next !== State.Done,
      chunked: f.transferEncoding !== undefined,
      expect,
    });
    return next;
  }
}
