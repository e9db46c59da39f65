// Directories with the right mode, made when missing.
import { chmod, mkdir, stat } from "node:fs/promises";
import { dirname } from "node:path";

// Node's mkdir({recursive: true}) never returns for a path under /proc (procfs answers ENOENT
// even when the parent exists, and node retries forever); these walk up with plain mkdir calls
// and try each level once after its parent exists, so such a path fails at once.

function notADir(path: string): Error {
  return Object.assign(new Error(`${path} exists and is not a directory`), { code: "ENOTDIR" });
}

/** Create `path` and its missing parents with `mode`; an existing directory is fine. */
export async function ensureDir(path: string, mode: number): Promise<void> {
  const made = await mkdir(path, { mode }).then(() => true, (err: NodeJS.ErrnoException) => {
    if (err.code === "EEXIST") return false;
    if (err.code !== "ENOENT" || dirname(path) === path) throw err;
    return undefined; // parent missing
  });
  if (made === undefined) {
    await ensureDir(dirname(path), mode);
    await mkdir(path, { mode }).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== "EEXIST") throw err;
    });
  }
  if (!(await stat(path)).isDirectory()) throw notADir(path);
  // a directory made here gets exactly `mode`: the umask (systemd's UMask=0077) must not narrow
  // a socket's 0755 parent; an existing one is left as the operator made it
  if (made !== false) await chmod(path, mode);
}

