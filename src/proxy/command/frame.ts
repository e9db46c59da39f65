// NUL-framed messages (stevedore(8), PROXY, Command socket): each message is UTF-8 JSON followed by one
// 0x00 byte. A 0x00 byte never occurs inside a multi-byte UTF-8 sequence, so frames are split on
// bytes and each complete frame is decoded as a whole: UTF-8 split across reads needs no care.

export type FrameEvent =
  | { kind: "frame"; text: string }
  | { kind: "bad-utf8" }
  | { kind: "too-large"; limit: number };

const decoder = new TextDecoder("utf-8", { fatal: true });

/** Incremental NUL-frame splitter with a per-frame byte limit. */
export class FrameReader {
  private parts: Buffer[] = [];
  private partBytes = 0;
  private failed = false;

  constructor(private readonly maxFrameBytes: number) {}

  /** Feed one read; returns the events it completes. After "too-large" the reader stays failed
   *  (the caller closes the connection). */
  push(chunk: Buffer): FrameEvent[] {
    if (this.failed) return [];
    const out: FrameEvent[] = [];
    let start = 0;
    for (;;) {
      const nul = chunk.indexOf(0, start);
      const end = nul < 0 ? chunk.length : nul;
      if (this.partBytes + (end - start) > this.maxFrameBytes) {
        this.failed = true;
        this.parts = [];
        this.partBytes = 0;
        out.push({ kind: "too-large", limit: this.maxFrameBytes });
        return out;
      }
      if (nul < 0) {
        if (end > start) {
          this.parts.push(chunk.subarray(start, end));
          this.partBytes += end - start;
        }
        return out;
      }
      const bytes = this.parts.length ? Buffer.concat([...this.parts, chunk.subarray(start, end)]) : chunk.subarray(start, end);
      this.parts = [];
      this.partBytes = 0;
      out.push(decodeFrame(bytes));
      start = nul + 1;
    }
  }
}

function decodeFrame(bytes: Uint8Array): FrameEvent {
  try {
    return { kind: "frame", text: decoder.decode(bytes) };
  } catch {
    return { kind: "bad-utf8" };
  }
}

/** One outgoing frame. */
export function encodeFrame(message: unknown): Buffer {
  return Buffer.from(JSON.stringify(message) + "\0", "utf8");
}
