// Editing the tokens file: every change is read-modify-write under the exclusive lock, written
// atomically (temp, fsync, rename, fsync dir) with mode 0600. Works whether or not the daemon runs;
// the daemon watches the file.
import { readFile, readdir, unlink } from "node:fs/promises";
import { join } from "node:path";
import { ensureDir, writeFileAtomic } from "../store/index.js";
import { deploymentNameError } from "../base/index.js";
import { withLock } from "./lock.js";
import { TOKENS_FILE, TokensFileError, newToken, parseTokens, serializeTokens, MAX_TOKENS, type Tokens, type TokenEntry } from "./file.js";

export class TokenStoreError extends Error {}

export function tokensPath(stateDir: string): string {
  return join(stateDir, TOKENS_FILE);
}

/** Read the tokens (no lock needed: the file is only ever replaced whole). Missing file → none. */
export async function readTokens(stateDir: string): Promise<Tokens> {
  const path = tokensPath(stateDir);
  let data: Buffer;
  try {
    data = await readFile(path);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === "ENOENT") return new Map();
    if (e.code === "EACCES") throw new TokenStoreError(`cannot read ${path}: permission denied (run as root?)`);
    throw new TokenStoreError(`cannot read ${path}: ${e.message}`);
  }
  try {
    return parseTokens(data);
  } catch (err) {
    if (err instanceof TokensFileError) throw new TokenStoreError(`${path}: ${err.message}`);
    throw err;
  }
}

/** Run `change` on the current tokens under the lock; writes when it returns true. */
async function edit<T>(stateDir: string, change: (tokens: Tokens) => { write: boolean; result: T }): Promise<T> {
  const path = tokensPath(stateDir);
  try {
    await ensureDir(stateDir, 0o700);
    return await withLock(`${path}.lock`, async () => {
      await removeDeadTemps(stateDir);
      const tokens = await readTokens(stateDir);
      const { write, result } = change(tokens);
      if (write) {
        if (tokens.size > MAX_TOKENS) throw new TokenStoreError(`more than ${MAX_TOKENS} tokens`);
        await writeFileAtomic(path, serializeTokens(tokens), 0o600);
      }
      return result;
    });
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === "EACCES" || e.code === "EPERM") throw new TokenStoreError(`cannot edit ${path}: permission denied (run as root?)`);
    throw err;
  }
}

/** Under the lock nobody else writes the file: every leftover temp of it is from a killed editor. */
async function removeDeadTemps(stateDir: string): Promise<void> {
  const prefix = `.${TOKENS_FILE}.`;
  for (const name of await readdir(stateDir)) {
    if (name.startsWith(prefix) && name.endsWith(".tmp") && !name.startsWith(`.${TOKENS_FILE}.lock.`)) await unlink(join(stateDir, name)).catch(() => {});
  }
}

function checkName(name: string): void {
  const err = deploymentNameError(name);
  if (err) throw new TokenStoreError(err);
}

function entry(): TokenEntry {
  return { token: newToken(), created: new Date().toISOString().replace(/\.\d{3}Z$/, "Z") };
}

/** The deployment's token, made if it has none. */
export async function getToken(stateDir: string, name: string): Promise<string> {
  checkName(name);
  const existing = (await readTokens(stateDir)).get(name);
  if (existing) return existing.token;
  return edit(stateDir, (tokens) => {
    const now = tokens.get(name);
    if (now) return { write: false, result: now.token };
    const e = entry();
    tokens.set(name, e);
    return { write: true, result: e.token };
  });
}

/** A new token for the deployment (the old one stops working). */
export async function regenerateToken(stateDir: string, name: string): Promise<string> {
  checkName(name);
  return edit(stateDir, (tokens) => {
    const e = entry();
    tokens.set(name, e);
    return { write: true, result: e.token };
  });
}

/** Remove the deployment's token; false when it had none. */
export async function revokeToken(stateDir: string, name: string): Promise<boolean> {
  checkName(name);
  return edit(stateDir, (tokens) => {
    const had = tokens.delete(name);
    return { write: had, result: had };
  });
}

export async function listTokens(stateDir: string): Promise<{ deployment: string; created: string }[]> {
  const tokens = await readTokens(stateDir);
  return [...tokens.keys()].sort().map((deployment) => ({ deployment, created: tokens.get(deployment)!.created }));
}
