// The registry of core services (create parameters, env), persisted atomically in the state dir;
// also the intents of creates in progress (see ServiceRecord.pending).
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { Serializer } from "../base/index.js";
import { writeFileAtomic } from "../store/index.js";
import type { ServiceParams } from "./params.js";

export interface ServiceRecord {
  params: ServiceParams;
  /** the deployment label chosen at create (params.deployment or core_deployment then) */
  deployment: string;
  /** the env set by PATCH /service/<id>/env */
  env: Record<string, string>;
  /** the env the current container was created with; differs from `env` until the next start/restart */
  containerEnv: Record<string, string>;
  created: string;
  /** an intent: written (and fsynced) before the container is created, cleared once it exists. A
   *  record still pending at start is a create the client never saw succeed: it is rolled back. */
  pending?: true;
}

interface FileShape {
  version: 1;
  services: Record<string, ServiceRecord>;
}

export class Registry {
  private readonly services = new Map<string, ServiceRecord>();
  private readonly writes = new Serializer();
  readonly file: string;

  constructor(stateDir: string) {
    this.file = join(stateDir, "core-services.json");
  }

  async load(): Promise<void> {
    let text: string;
    try {
      text = await readFile(this.file, "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return;
      throw err;
    }
    const data = JSON.parse(text) as FileShape;
    if (data.version !== 1 || typeof data.services !== "object" || data.services === null) throw new Error(`${this.file}: unknown format`);
    for (const [id, rec] of Object.entries(data.services)) this.services.set(id, rec);
  }

  /** the ids of the creates a crash interrupted */
  pendingIds(): string[] {
    return [...this.services].filter(([, r]) => r.pending).map(([id]) => id);
  }

  get(id: string): ServiceRecord | undefined {
    return this.services.get(id);
  }

  has(id: string): boolean {
    return this.services.has(id);
  }

  get size(): number {
    return this.services.size;
  }

  deployments(): Set<string> {
    return new Set([...this.services.values()].map((r) => r.deployment));
  }

  /** Change the map and persist it; writes are serialized, each one the whole current map. */
  async set(id: string, rec: ServiceRecord | undefined): Promise<void> {
    if (rec) this.services.set(id, rec);
    else this.services.delete(id);
    await this.writes.run(() => this.flush());
  }

  private async flush(): Promise<void> {
    const data: FileShape = { version: 1, services: Object.fromEntries(this.services) };
    // 0600: env values may be secrets
    await writeFileAtomic(this.file, JSON.stringify(data) + "\n", 0o600);
  }
}
