// A hand-written, streaming tar reader: ustar, pax extended headers ('x', 'g') and GNU long
// names ('L', 'K'). It only parses; what may be written where is decided by extract.ts.

/** The archive is malformed or uses something we refuse (→ 400). */
export class ArchiveError extends Error {}
/** The archive declares or holds more than the size limit (→ 413). */
export class ArchiveTooLarge extends Error {}

export type EntryType = "file" | "dir" | "symlink" | "hardlink" | "other";

export interface TarEntry {
  /** the raw name, after pax/GNU overrides (not yet validated) */
  name: string;
  type: EntryType;
  /** the tar type flag, for error messages */
  flag: string;
  linkname: string;
  size: number;
  mode: number;
}

export const BLOCK = 512;
/** pax and GNU long-name payloads are buffered: bounded */
const MAX_META_BYTES = 1024 * 1024;
/** a name or link target longer than this is refused */
export const MAX_NAME_BYTES = 4096;

/** Pulls exact byte counts out of an async chunk source. */
export class ChunkReader {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private done = false;
  private readonly it: AsyncIterator<Buffer | Uint8Array | string>;

  constructor(source: AsyncIterable<Buffer | Uint8Array | string>) {
    this.it = source[Symbol.asyncIterator]();
  }

  private async fill(min: number): Promise<void> {
    while (this.buffered < min && !this.done) {
      const next = await this.it.next();
      if (next.done) {
        this.done = true;
        break;
      }
      const chunk = typeof next.value === "string" ? Buffer.from(next.value) : Buffer.from(next.value.buffer, next.value.byteOffset, next.value.byteLength);
      if (chunk.length === 0) continue;
      this.chunks.push(chunk);
      this.buffered += chunk.length;
    }
  }

  private take(n: number): Buffer {
    const out = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks);
    const result = out.subarray(0, n);
    const rest = out.subarray(n);
    this.chunks = rest.length ? [rest] : [];
    this.buffered -= n;
    return result;
  }

  /** Exactly n bytes; null at a clean end (nothing left); ArchiveError when it ends midway. */
  async exact(n: number): Promise<Buffer | null> {
    await this.fill(n);
    if (this.buffered === 0 && this.done) return null;
    if (this.buffered < n) throw new ArchiveError("archive is truncated");
    return this.take(n);
  }

  /** Between 1 and max bytes (whatever is at hand); ArchiveError at the end. */
  async some(max: number): Promise<Buffer> {
    if (this.buffered === 0) await this.fill(1);
    if (this.buffered === 0) throw new ArchiveError("archive is truncated");
    return this.take(Math.min(max, this.chunks[0]!.length));
  }

  async skip(n: number): Promise<void> {
    while (n > 0) n -= (await this.some(Math.min(n, 65536))).length;
  }

  /** Consume everything left, at most `limit` bytes (trailing padding); more is an error. */
  async drain(limit: number): Promise<void> {
    let total = 0;
    for (;;) {
      if (this.buffered === 0) await this.fill(1);
      if (this.buffered === 0) return;
      total += this.buffered;
      this.chunks = [];
      this.buffered = 0;
      if (total > limit) throw new ArchiveError("unexpected data after the end of the archive");
    }
  }
}

function cstring(block: Buffer, start: number, length: number): string {
  const field = block.subarray(start, start + length);
  const nul = field.indexOf(0);
  return (nul >= 0 ? field.subarray(0, nul) : field).toString("utf8");
}

/** A numeric field: octal ASCII (space/NUL padded) or GNU base-256 (high bit set). */
export function parseNumber(block: Buffer, start: number, length: number, what: string): number {
  const field = block.subarray(start, start + length);
  if (field.length > 0 && (field[0]! & 0x80) !== 0) {
    if (field[0] === 0xff) throw new ArchiveError(`negative ${what} in tar header`);
    let value = field[0]! & 0x7f;
    for (let i = 1; i < field.length; i++) {
      value = value * 256 + field[i]!;
      if (value > Number.MAX_SAFE_INTEGER) throw new ArchiveError(`${what} in tar header out of range`);
    }
    return value;
  }
  const text = field.toString("latin1").replace(/[\0 ]+$/, "").replace(/^ +/, "");
  if (text === "") return 0;
  if (!/^[0-7]+$/.test(text)) throw new ArchiveError(`bad ${what} field in tar header`);
  const value = parseInt(text, 8);
  if (!Number.isSafeInteger(value)) throw new ArchiveError(`${what} in tar header out of range`);
  return value;
}

function checksumOk(block: Buffer): boolean {
  const stored = parseNumber(block, 148, 8, "checksum");
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const b = i >= 148 && i < 156 ? 0x20 : block[i]!;
    unsigned += b;
    signed += b > 127 ? b - 256 : b;
  }
  return stored === unsigned || stored === signed;
}

function isZero(block: Buffer): boolean {
  for (let i = 0; i < BLOCK; i++) if (block[i] !== 0) return false;
  return true;
}

/** Parse pax records "LEN key=value\n"; strict about lengths. */
export function parsePax(data: Buffer): Map<string, string> {
  const out = new Map<string, string>();
  let pos = 0;
  while (pos < data.length) {
    if (data[pos] === 0) break; // NUL padding
    const space = data.indexOf(0x20, pos);
    if (space < 0 || space - pos > 20) throw new ArchiveError("bad pax record");
    const lenText = data.subarray(pos, space).toString("latin1");
    if (!/^[1-9][0-9]*$/.test(lenText)) throw new ArchiveError("bad pax record length");
    const len = Number(lenText);
    const end = pos + len;
    if (end > data.length || end <= space + 1 || data[end - 1] !== 0x0a) throw new ArchiveError("bad pax record length");
    const record = data.subarray(space + 1, end - 1).toString("utf8");
    const eq = record.indexOf("=");
    if (eq <= 0) throw new ArchiveError("bad pax record");
    out.set(record.slice(0, eq), record.slice(eq + 1));
    pos = end;
  }
  return out;
}

function paxSize(value: string): number {
  if (!/^[0-9]{1,16}$/.test(value)) throw new ArchiveError("bad pax size");
  const n = Number(value);
  if (!Number.isSafeInteger(n)) throw new ArchiveError("bad pax size");
  return n;
}

const TYPES: Record<string, EntryType> = { "0": "file", "\0": "file", "7": "file", "5": "dir", "2": "symlink", "1": "hardlink" };

/**
 * Iterate the entries of a tar stream. The consumer must read or skip each entry's data
 * through `reader` (exactly `entry.size` bytes) before asking for the next entry; the
 * padding is handled here.
 */
export async function* tarEntries(reader: ChunkReader, maxEntries: number): AsyncGenerator<TarEntry, void, void> {
  let pax = new Map<string, string>();
  let longName: string | undefined;
  let longLink: string | undefined;
  let count = 0;
  let pendingPad = 0;
  for (;;) {
    if (pendingPad) await reader.skip(pendingPad);
    pendingPad = 0;
    const block = await reader.exact(BLOCK);
    if (block === null) throw new ArchiveError("archive ends without its end marker");
    if (isZero(block)) {
      // End marker: a second zero block normally follows; tolerate its absence, then allow padding.
      const second = await reader.exact(BLOCK);
      if (second !== null && !isZero(second)) throw new ArchiveError("data after a zero block");
      await reader.drain(1024 * 1024);
      if (longName !== undefined || longLink !== undefined || pax.size) throw new ArchiveError("extended header without an entry");
      return;
    }
    if (!checksumOk(block)) throw new ArchiveError("tar header checksum mismatch");
    if (++count > maxEntries) throw new ArchiveError(`more than ${maxEntries} entries in the archive`);
    const flag = String.fromCharCode(block[156]!);
    let size = parseNumber(block, 124, 12, "size");
    const magic = block.subarray(257, 263).toString("latin1");

    if (flag === "x" || flag === "g" || flag === "L" || flag === "K") {
      if (size > MAX_META_BYTES) throw new ArchiveError(`extended header larger than ${MAX_META_BYTES} bytes`);
      const data = size ? await reader.exact(size) : Buffer.alloc(0);
      if (data === null) throw new ArchiveError("archive is truncated");
      pendingPad = (BLOCK - (size % BLOCK)) % BLOCK;
      if (flag === "x") for (const [k, v] of parsePax(data)) pax.set(k, v);
      else if (flag === "g") parsePax(data); // global defaults: validated, nothing we use
      else {
        const nul = data.indexOf(0);
        const text = (nul >= 0 ? data.subarray(0, nul) : data).toString("utf8");
        if (flag === "L") longName = text;
        else longLink = text;
      }
      continue;
    }

    let name = cstring(block, 0, 100);
    if (magic === "ustar\0") {
      const prefix = cstring(block, 345, 155);
      if (prefix) name = `${prefix}/${name}`;
    }
    let linkname = cstring(block, 157, 100);
    if (longName !== undefined) name = longName;
    if (longLink !== undefined) linkname = longLink;
    const paxPath = pax.get("path");
    if (paxPath !== undefined) name = paxPath;
    const paxLink = pax.get("linkpath");
    if (paxLink !== undefined) linkname = paxLink;
    const paxSz = pax.get("size");
    if (paxSz !== undefined) size = paxSize(paxSz);
    pax = new Map();
    longName = longLink = undefined;

    if (Buffer.byteLength(name) > MAX_NAME_BYTES || Buffer.byteLength(linkname) > MAX_NAME_BYTES) throw new ArchiveError(`name longer than ${MAX_NAME_BYTES} bytes`);
    const type = TYPES[flag] ?? "other";
    // Only regular files carry data that we read; links and dirs with a size are skipped.
    const entry: TarEntry = { name, type, flag, linkname, size: type === "file" ? size : 0, mode: parseNumber(block, 100, 8, "mode") & 0o7777 };
    const dataSize = type === "other" ? 0 : size;
    yield entry;
    if (type === "file") {
      pendingPad = (BLOCK - (size % BLOCK)) % BLOCK;
    } else if (dataSize > 0) {
      await reader.skip(dataSize);
      pendingPad = (BLOCK - (dataSize % BLOCK)) % BLOCK;
    }
  }
}
