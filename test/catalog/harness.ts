// Shared pieces of the catalog's real-engine tests: an in-process Catalog that records its
// revisions, member containers made through the Engine API, and a relay socket the test controls.
import { createConnection, createServer, type Server, type Socket } from "node:net";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { Catalog } from "../../src/catalog/index.js";
import type { ContainerInfo, Revision } from "../../src/catalog/types.js";
import { DockerClient } from "../../src/docker/index.js";
import { DOCKER_SOCKET, TEST_IMAGE, waitFor } from "../helpers/docker.js";

export const LABEL = "stevedore.test=catalog";
/** Per-run suffix of every deployment and container name: the same tests may run from several
 *  worktrees at once on the one engine. */
export const RUN = randomBytes(3).toString("hex");

export function dynamicConfig(over: Record<string, number> = {}) {
  const d = { catalog_debounce_ms: 25, catalog_resync_secs: 300, catalog_stale_after_secs: 30, poll_max_waiters: 10_000, ...over };
  return () => d as never;
}

export interface Recorder {
  catalog: Catalog;
  revisions: Revision[];
  dir: string;
  /** the containers of one deployment in the current revision */
  of(deployment: string, rev?: Revision): ContainerInfo[];
  /** revisions after index `from` in which the public view of `deployment` differs from the one before */
  changesOf(deployment: string, from: number): Revision[];
  close(): Promise<void>;
}

export const view = (cs: ContainerInfo[]) =>
  JSON.stringify(cs.map((c) => [c.id, c.name, c.service, c.state, c.running, c.health, c.exitCode, c.startedAt, c.ingress ?? null, c.image]));

export async function startCatalog(socket = DOCKER_SOCKET, over: Record<string, number> = {}, stateDir?: string): Promise<Recorder> {
  const dir = stateDir ?? (await mkdtemp(join(tmpdir(), "stevedore-cat-")));
  const docker = new DockerClient(socket);
  const catalog = new Catalog({ docker, stateDir: dir, dynamic: dynamicConfig(over) });
  const revisions: Revision[] = [];
  catalog.on("revision", (r) => revisions.push(r));
  await catalog.start();
  revisions.push(catalog.current());
  const of = (d: string, rev = catalog.current()) => rev.containers.filter((c) => c.deployment === d);
  return {
    catalog, revisions, dir, of,
    changesOf(d, from) {
      const out: Revision[] = [];
      for (let i = Math.max(from, 1); i < revisions.length; i++)
        if (view(of(d, revisions[i]!)) !== view(of(d, revisions[i - 1]!))) out.push(revisions[i]!);
      return out;
    },
    async close() {
      await catalog.stop();
      docker.close();
      if (!stateDir) await rm(dir, { recursive: true, force: true });
    },
  };
}

export const engine = new DockerClient(DOCKER_SOCKET);

/** Create (not start) a member container of deployment `d`. */
export async function createMember(name: string, d: string, service: string, extra: Record<string, unknown> = {}, labels: Record<string, string> = {}): Promise<string> {
  const { Id } = await engine.createContainer(name, {
    Image: TEST_IMAGE,
    Labels: { "stevedore.test": "catalog", "stevedore.test.group": d, "stevedore.deployment": d, "stevedore.service": service, ...labels },
    HostConfig: { NetworkMode: "bridge" },
    StopTimeout: 1,
    ...extra,
  });
  return Id;
}

/** A Unix socket relay to the real engine that the test can cut and restore. */
export class Relay {
  readonly path: string;
  private server: Server | undefined;
  private conns = new Set<Socket>();
  /** swallow whatever Docker sends on event-stream connections */
  muteEvents = false;
  /** hold back Docker's answers to container listings until release() */
  holdListings = false;
  listings = 0;
  /** the event-stream bytes passed to the catalog (the last 1 MiB), to wait for an event */
  eventText = "";
  private held: (() => void)[] = [];
  release(): void {
    this.holdListings = false;
    for (const write of this.held.splice(0)) write();
  }
  constructor(readonly dir: string) {
    this.path = join(dir, "relay.sock");
  }
  async open(): Promise<void> {
    const server = createServer((client) => {
      const upstream = createConnection(DOCKER_SOCKET);
      this.conns.add(client).add(upstream);
      const drop = () => {
        client.destroy();
        upstream.destroy();
        this.conns.delete(client);
        this.conns.delete(upstream);
      };
      client.on("error", drop).on("close", drop);
      upstream.on("error", drop).on("close", drop);
      // Event-stream connections can be muted: Docker's events are swallowed (as when Docker
      // drops events for a slow reader), everything else passes.
      // Answers to container listings can be held back until release() (events keep flowing).
      let isEvents: boolean | undefined;
      let listing = false;
      client.on("data", (chunk: Buffer) => {
        const head = chunk.toString("latin1", 0, 64);
        isEvents ??= /^GET \/v[0-9.]+\/events/.test(head);
        if (/^GET \/v[0-9.]+\/containers\/json/.test(head)) {
          listing = true;
          this.listings++;
        }
        upstream.write(chunk);
      });
      upstream.on("data", (chunk: Buffer) => {
        if (isEvents && this.muteEvents) return;
        if (isEvents) this.eventText = (this.eventText + chunk.toString("latin1")).slice(-(1 << 20));
        if (listing && this.holdListings) this.held.push(() => client.write(chunk));
        else client.write(chunk);
      });
    });
    await new Promise<void>((res, rej) => server.once("error", rej).listen(this.path, res));
    this.server = server;
  }
  /** stop accepting (connects fail) and cut every open connection mid-stream */
  async cut(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const c of this.conns) c.destroy();
    this.conns.clear();
    if (server) await new Promise<void>((res) => server.close(() => res()));
  }
  get connections(): number {
    return this.conns.size;
  }
}

export { waitFor };
