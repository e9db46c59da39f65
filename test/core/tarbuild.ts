// Build tar archives byte by byte for tests (including hostile ones tar(1) would not make).
import { gzipSync } from "node:zlib";

export interface Member {
  name: string;
  type?: string; // tar type flag, default "0"
  data?: Buffer | string;
  linkname?: string;
  mode?: number;
  /** declared size override (the data written is still `data`) */
  size?: number;
  /** pax extended header records written before this member */
  pax?: Record<string, string>;
  /** GNU long name / long link records before this member */
  gnuLongName?: string;
  gnuLongLink?: string;
}

function octal(value: number, length: number): string {
  return value.toString(8).padStart(length - 1, "0") + "\0";
}

export function header(name: string, type: string, size: number, opts: { linkname?: string; mode?: number; base256Size?: boolean } = {}): Buffer {
  const h = Buffer.alloc(512);
  h.write(name.slice(0, 100), 0, "utf8");
  h.write(octal(opts.mode ?? (type === "5" ? 0o755 : 0o644), 8), 100, "latin1");
  h.write(octal(0, 8), 108, "latin1");
  h.write(octal(0, 8), 116, "latin1");
  if (opts.base256Size || size > 0o77777777777) {
    h[124] = 0x80;
    let v = size;
    for (let i = 135; i > 124; i--) {
      h[i] = v % 256;
      v = Math.floor(v / 256);
    }
  } else h.write(octal(size, 12), 124, "latin1");
  h.write(octal(0, 12), 136, "latin1");
  h.write(type, 156, "latin1");
  if (opts.linkname) h.write(opts.linkname.slice(0, 100), 157, "utf8");
  h.write("ustar\0", 257, "latin1");
  h.write("00", 263, "latin1");
  fixChecksum(h);
  return h;
}

export function fixChecksum(h: Buffer): void {
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += h[i]!;
  h.write(sum.toString(8).padStart(6, "0") + "\0 ", 148, "latin1");
}

function padded(data: Buffer): Buffer {
  const pad = (512 - (data.length % 512)) % 512;
  return Buffer.concat([data, Buffer.alloc(pad)]);
}

function paxData(records: Record<string, string>): Buffer {
  let out = "";
  for (const [k, v] of Object.entries(records)) {
    const body = ` ${k}=${v}\n`;
    let len = body.length + 1;
    while (String(len).length + Buffer.byteLength(body) !== len) len = String(len).length + Buffer.byteLength(body);
    out += `${len}${body}`;
  }
  return Buffer.from(out, "utf8");
}

export function tar(members: Member[], opts: { end?: boolean } = {}): Buffer {
  const parts: Buffer[] = [];
  for (const m of members) {
    if (m.pax) {
      const d = paxData(m.pax);
      parts.push(header("PaxHeader", "x", d.length), padded(d));
    }
    if (m.gnuLongName !== undefined) {
      const d = Buffer.from(m.gnuLongName + "\0");
      parts.push(header("././@LongLink", "L", d.length), padded(d));
    }
    if (m.gnuLongLink !== undefined) {
      const d = Buffer.from(m.gnuLongLink + "\0");
      parts.push(header("././@LongLink", "K", d.length), padded(d));
    }
    const data = m.data === undefined ? Buffer.alloc(0) : Buffer.from(m.data);
    const type = m.type ?? "0";
    parts.push(header(m.name, type, m.size ?? (type === "0" ? data.length : 0), { linkname: m.linkname, mode: m.mode }));
    if (data.length) parts.push(padded(data));
  }
  if (opts.end !== false) parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

export const tgz = (members: Member[], opts?: { end?: boolean }) => gzipSync(tar(members, opts));
