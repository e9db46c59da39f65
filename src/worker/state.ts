// The worker's state file: its registration (manager URL, worker id, secret), 0600, written atomically.
import { readFile } from "node:fs/promises";
import { writeFileAtomic } from "../store/index.js";

export interface Registration {
  /** the manager this registration belongs to; another --manager registers anew */
  manager: string;
  id: string;
  secret: string;
  registered: string;
}

const MAX_STATE_BYTES = 64 * 1024;

/** The saved registration; undefined when there is none. A corrupt file is an error (never silently replaced). */
export async function loadRegistration(file: string): Promise<Registration | undefined> {
  let text: string;
  try {
    const buf = await readFile(file);
    if (buf.length > MAX_STATE_BYTES) throw new Error(`${file}: larger than ${MAX_STATE_BYTES} bytes`);
    text = buf.toString("utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new Error(`${file}: not JSON; remove it to register anew`);
  }
  const r = value as Partial<Registration> | null;
  if (!r || typeof r.manager !== "string" || typeof r.id !== "string" || typeof r.secret !== "string" || !r.id || !r.secret)
    throw new Error(`${file}: not a worker registration; remove it to register anew`);
  return { manager: r.manager, id: r.id, secret: r.secret, registered: typeof r.registered === "string" ? r.registered : "" };
}

export async function saveRegistration(file: string, r: Registration): Promise<void> {
  await writeFileAtomic(file, JSON.stringify(r, null, 2) + "\n", 0o600);
}
