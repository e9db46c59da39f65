// The upstream side's response parser (see http1.ts for what is shared and how strict it is).
// Fed the bytes of one upstream connection; calls back with the final response head, body chunks
// (de-chunked) and the end of the message. 1xx interim responses are skipped; a 101 to a plain
// request is an error; bytes after the end of the response mean the connection is not reused.
import { HttpParseError, MessageParser, State, parseFields, type BodySink } from "../http/index.js";

export { HttpParseError as ResponseParseError } from "../http/index.js";

export interface ResponseHead {
  status: number;
  reason: string;
  /** name, value, name, value, ... as received */
  rawHeaders: string[];
}

export interface ResponseSink extends BodySink {
  onHead(head: ResponseHead): void;
}

const STATUS_LINE = /^HTTP\/1\.([01]) ([1-9]\d\d)(?: ([\t\x20-\x7e\x80-\xff]*))?$/;

export class ResponseParser extends MessageParser {
  private noBody = false;
  /** both sides allow the connection to carry another exchange */
  keepAlive = false;
  /** bytes arrived after the end of the message (the connection must not be reused) */
  extra = false;
  /** any byte of this response arrived */
  started = false;

  constructor(protected override readonly sink: ResponseSink) {
    super(sink);
  }

  /** Expect a new response; `head` = the request was HEAD (no body whatever the headers say). */
  begin(head: boolean, maxHeaderBytes: number): void {
    this.reset(State.Head, maxHeaderBytes);
    this.noBody = head;
    this.keepAlive = false;
    this.extra = false;
    this.started = false;
  }

  override execute(data: Buffer): void {
    if (data.length > 0) this.started = true;
    super.execute(data);
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
      throw new HttpParseError("connection closed before the end of the response");
    }
  }

  protected afterEnd(data: Buffer): number {
    this.extra = true;
    this.keepAlive = false;
    return data.length;
  }

  protected head(block: Buffer): State {
    const lines = block.toString("latin1").split("\r\n");
    const m = STATUS_LINE.exec(lines[0]!);
    if (!m) throw new HttpParseError("bad status line");
    const http10 = m[1] === "0";
    const status = Number(m[2]);
    const f = parseFields(lines, 1);
    if (status < 200) {
      if (status === 101) throw new HttpParseError("101 Switching Protocols to a plain request");
      return State.Head; // interim response: skip it, the final one follows on the same connection
    }
    this.keepAlive = !f.close && (!http10 || f.keepAlive);
    const next = this.noBody || status === 204 || status === 304 ? State.Done : this.bodyState(f);
    if (next === State.UntilClose) this.keepAlive = false;
    this.sink.onHead({ status, reason: m[3] ?? "", rawHeaders: f.rawHeaders });
    return next;
  }
}
