// Extract a tar stream into a fresh directory, safely: only regular files, directories and
// symlinks; no absolute names, no "..", no symlink whose target leaves the tree (checked on the
// final tree, so chains of links cannot escape), nothing written through a symlink, no devices,
// FIFOs or other special entries. Hard links to a file already extracted are COPIED (the tree
// holds no hard links); hard links to anything else are refused.
import { constants } from "node:fs";
import { open, mkdir, symlink, copyFile, chmod, unlink } from "node:fs/promises";
import { join } from "node:path";
import { ArchiveError, ArchiveTooLarge, ChunkReader, tarEntries } from "./tar.js";

export interface ExtractLimits {
  /** total bytes of file data the archive may hold (sum of sizes) */
  maxBytes: number;
  maxEntries: number;
}

/** What the extractor does to the disk; the fuzz test swaps in a recorder. Paths are validated and relative. */
export interface ExtractSink {
  mkdir(rel: string, mode: number): Promise<void>;
  /** create a new regular file (never following a link) and fill it from `write` calls */
  file(rel: string, mode: number, fill: (write: (chunk: Buffer) => Promise<void>) => Promise<void>): Promise<void>;
  symlink(rel: string, target: string): Promise<void>;
  copy(fromRel: string, toRel: string, mode: number): Promise<void>;
  remove(rel: string): Promise<void>;
}

type Kind = "dir" | "file" | "symlink";
const MAX_LINK_DEPTH = 40;

/** Split a member name into safe components, or throw naming the problem. */
export function safeComponents(name: string, what = "name"): string[] {
  if (name.includes("\0")) throw new ArchiveError(`${what} contains NUL`);
  if (name.startsWith("/")) throw new ArchiveError(`absolute ${what} refused: ${JSON.stringify(name)}`);
  const parts = name.split("/").filter((p) => p !== "" && p !== ".");
  if (parts.includes("..")) throw new ArchiveError(`${what} with "..": ${JSON.stringify(name)}`);
  return parts;
}

export class Extractor {
  private readonly kinds = new Map<string, Kind>();
  private readonly links = new Map<string, string>();
  private total = 0;

  private readonly sink: ExtractSink;

  constructor(sink: ExtractSink, private readonly limits: ExtractLimits) {
    this.sink = guarded(sink);
  }

  async run(source: AsyncIterable<Buffer | Uint8Array | string>): Promise<void> {
    const reader = new ChunkReader(source);
    for await (const entry of tarEntries(reader, this.limits.maxEntries)) {
      if (entry.type === "other") throw new ArchiveError(`entry type ${describeFlag(entry.flag)} refused: ${JSON.stringify(entry.name)}`);
      const parts = safeComponents(entry.name);
      if (parts.length === 0) {
        if (entry.type === "dir") continue; // "./" itself
        throw new ArchiveError(`empty member name`);
      }
      const rel = parts.join("/");
      await this.parents(parts);
      const existing = this.kinds.get(rel);
      if (existing === "dir" && entry.type !== "dir") throw new ArchiveError(`${JSON.stringify(rel)} replaces a directory`);
      if (existing && existing !== "dir") {
        await this.sink.remove(rel); // a later member of the same name wins, as with tar(1)
        this.kinds.delete(rel);
        this.links.delete(rel);
      }
      switch (entry.type) {
        case "dir":
          if (existing !== "dir") await this.sink.mkdir(rel, dirMode(entry.mode));
          this.kinds.set(rel, "dir");
          break;
        case "file": {
          if (this.total + entry.size > this.limits.maxBytes) throw new ArchiveTooLarge(`archive contents larger than ${this.limits.maxBytes} bytes`);
          this.total += entry.size;
          this.kinds.set(rel, "file");
          await this.sink.file(rel, fileMode(entry.mode), async (write) => {
            let left = entry.size;
            while (left > 0) {
              const chunk = await reader.some(Math.min(left, 256 * 1024));
              left -= chunk.length;
              await write(chunk);
            }
          });
          break;
        }
        case "symlink": {
          if (entry.linkname === "" || entry.linkname.includes("\0")) throw new ArchiveError(`symlink ${JSON.stringify(rel)} has a bad target`);
          if (entry.linkname.startsWith("/")) throw new ArchiveError(`symlink ${JSON.stringify(rel)} points outside the tree`);
          this.kinds.set(rel, "symlink");
          this.links.set(rel, entry.linkname);
          this.resolve(rel, entry.linkname); // early check; the final check runs on the whole tree
          await this.sink.symlink(rel, entry.linkname);
          break;
        }
        case "hardlink": {
          const target = safeComponents(entry.linkname, "hard link target").join("/");
          if (this.kinds.get(target) !== "file") throw new ArchiveError(`hard link ${JSON.stringify(rel)} to ${JSON.stringify(entry.linkname)}: not a file of this archive`);
          await this.sink.copy(target, rel, fileMode(entry.mode));
          this.kinds.set(rel, "file");
          break;
        }
      }
    }
    // Links may be re-pointed by later members: check every one against the final tree.
    for (const [rel, target] of this.links) this.resolve(rel, target);
  }

  /** Make sure every parent exists as a real directory (never a symlink), creating missing ones. */
  private async parents(parts: string[]): Promise<void> {
    let path = "";
    for (let i = 0; i < parts.length - 1; i++) {
      path = path ? `${path}/${parts[i]}` : parts[i]!;
      const kind = this.kinds.get(path);
      if (kind === "dir") continue;
      if (kind === "symlink") throw new ArchiveError(`${JSON.stringify(parts.join("/"))} would be written through the symlink ${JSON.stringify(path)}`);
      if (kind === "file") throw new ArchiveError(`${JSON.stringify(parts.join("/"))}: parent ${JSON.stringify(path)} is a file`);
      await this.sink.mkdir(path, 0o755);
      this.kinds.set(path, "dir");
    }
  }

  /** Resolve a link as the kernel would on the tree as known now; throws when it leaves the tree. */
  private resolve(rel: string, target: string): void {
    const stack = rel.split("/").slice(0, -1);
    this.walk(stack, target, 0, rel);
  }

  private walk(stack: string[], target: string, depth: number, origin: string): void {
    if (depth > MAX_LINK_DEPTH) throw new ArchiveError(`symlink ${JSON.stringify(origin)}: too many levels of links`);
    if (target.startsWith("/")) throw new ArchiveError(`symlink ${JSON.stringify(origin)} points outside the tree`);
    for (const part of target.split("/")) {
      if (part === "" || part === ".") continue;
      if (part === "..") {
        if (stack.length === 0) throw new ArchiveError(`symlink ${JSON.stringify(origin)} points outside the tree`);
        stack.pop();
        continue;
      }
      stack.push(part);
      const path = stack.join("/");
      const next = this.links.get(path);
      if (next !== undefined) {
        stack.pop();
        this.walk(stack, next, depth + 1, origin);
      }
    }
  }
}

/** Filesystem refusals caused by the archive's names (too long, clashes) are the archive's fault: 400. */
const ARCHIVE_FS_ERRORS = new Set(["ENAMETOOLONG", "EEXIST", "ENOTDIR", "EISDIR", "ELOOP", "EINVAL", "ENOENT"]);

function guarded(sink: ExtractSink): ExtractSink {
  const wrap = <A extends unknown[]>(fn: (...args: A) => Promise<void>) => async (...args: A): Promise<void> => {
    try {
      await fn(...args);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code && ARCHIVE_FS_ERRORS.has(code)) throw new ArchiveError(`cannot create ${JSON.stringify(String(args[0]))}: ${code}`);
      throw err;
    }
  };
  return {
    mkdir: wrap(sink.mkdir.bind(sink)),
    file: wrap(sink.file.bind(sink)),
    symlink: wrap(sink.symlink.bind(sink)),
    copy: wrap(sink.copy.bind(sink)),
    remove: wrap(sink.remove.bind(sink)),
  };
}

function describeFlag(flag: string): string {
  const names: Record<string, string> = { "3": "character device", "4": "block device", "6": "FIFO" };
  return names[flag] ?? JSON.stringify(flag);
}
const fileMode = (mode: number) => (mode & 0o777) || 0o644;
const dirMode = (mode: number) => (mode & 0o777) | 0o700;

/** The real filesystem under `root` (a fresh directory only this extraction writes to). */
export function fsSink(root: string): ExtractSink {
  const abs = (rel: string) => join(root, ...rel.split("/"));
  return {
    async mkdir(rel, mode) {
      await mkdir(abs(rel), { mode });
      await chmod(abs(rel), mode);
    },
    async file(rel, mode, fill) {
      const fh = await open(abs(rel), constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
      try {
        await fill(async (chunk) => {
          let off = 0;
          while (off < chunk.length) off += (await fh.write(chunk, off)).bytesWritten;
        });
        await fh.chmod(mode);
      } finally {
        await fh.close();
      }
    },
    async symlink(rel, target) {
      await symlink(target, abs(rel));
    },
    async copy(fromRel, toRel, mode) {
      await copyFile(abs(fromRel), abs(toRel), constants.COPYFILE_EXCL);
      await chmod(abs(toRel), mode);
    },
    async remove(rel) {
      await unlink(abs(rel));
    },
  };
}
