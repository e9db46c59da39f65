// Server of the manager kill -9 test: the manager component alone on a free loopback port over a state dir; prints "listening <port>".
import { open } from "node:fs/promises";
import { Socket, type AddressInfo } from "node:net";
import { createInterface } from "node:readline";
import type { DaemonContext } from "../../src/component/index.js";
import { SCRYPT } from "../../src/manager/auth.js";
import { managerComponent } from "../../src/manager/index.js";
import { DEFAULT_SETTINGS, type FarmSettings } from "../../src/manager/model.js";

const stateDir = process.argv[2];
const fsyncDelayMs = Number(process.argv[3] ?? 0);
if (!stateDir) throw new Error("usage: kill-server STATE_DIR [MAX_EXTRA_FSYNC_MS]");

/**
 * A disk whose fsync takes a few milliseconds (this machine's takes well under one): appends
 * then queue behind the group being synced, as they do on real disks, so an answer sent before
 * its record is written has a window a kill can hit.
 */
async function slowFsync(maxMs: number): Promise<void> {
  const probe = await open(process.execPath, "r");
  const proto = Object.getPrototypeOf(probe) as Record<"sync" | "datasync", (this: unknown) => Promise<void>>;
  await probe.close();
  for (const name of ["sync", "datasync"] as const) {
    const real = proto[name];
    proto[name] = async function (this: unknown) {
      await new Promise((r) => setTimeout(r, Math.floor(Math.random() * (maxMs + 1))));
      return real.call(this);
    };
  }
}
if (fsyncDelayMs > 0) await slowFsync(fsyncDelayMs);

/**
 * "arm" on stdin: kill -9 this process right after the next successful answer is handed to the
 * kernel (the client still gets it). That is the moment an answer sent before its record was
 * written would be lost; a random moment hits it only by luck.
 */
function killAfterNextAnswer(): void {
  let answered = false;
  const realWrite = Socket.prototype.write as (this: Socket, ...args: unknown[]) => boolean;
  const realUncork = Socket.prototype.uncork;
  // an answer goes out as one write, or as corked writes sent at uncork
  const dieWhenSent = (socket: Socket) => {
    if (answered && socket.writableCorked === 0) process.kill(process.pid, "SIGKILL");
  };
  Socket.prototype.write = function (this: Socket, ...args: unknown[]) {
    const ok = realWrite.apply(this, args);
    if (typeof args[0] === "string" && args[0].startsWith("HTTP/1.1 2")) answered = true;
    dieWhenSent(this);
    return ok;
  } as typeof Socket.prototype.write;
  Socket.prototype.uncork = function (this: Socket) {
    realUncork.call(this);
    dieWhenSent(this);
  };
}
createInterface({ input: process.stdin }).on("line", (line) => {
  if (line === "arm") killAfterNextAnswer();
});

// No time-outs during the test: a worker idle for a while must keep its task, so what the
// parent checks is decided by acknowledged requests alone.
const settings: FarmSettings = { ...DEFAULT_SETTINGS, manager_worker_timeout_secs: 86_400, manager_task_timeout_secs: 604_800 };
// Every worker pays one scrypt check per server start; at the production cost (~50 ms of CPU)
// that would be a third of this test's CPU. Same code path, a smaller work factor: hashes made
// here carry N = 1024, and verifying reads N back from the stored hash.
(SCRYPT as { N: number }).N = 1 << 10;

const ctx = {
  config: {
    static: {
      state_dir: stateDir,
      manager_listen: "127.0.0.1:0",
      manager_tls_cert: "",
      manager_tls_key: "",
      manager_jwt_keys_dir: "",
      manager_registration_secret: "",
    },
  },
  dynamic: () => ({ ...settings, api_header_timeout_secs: 5 }),
  inherit: async () => false,
} as unknown as DaemonContext;

const manager = managerComponent(ctx);
await manager.start();
const listener = manager.listeners?.().get("manager");
if (!listener) {
  process.stderr.write(`manager did not start: ${JSON.stringify(manager.status())}\n`);
  process.exit(1);
}
process.stdout.write(`listening ${(listener.server.address() as AddressInfo).port}\n`);
