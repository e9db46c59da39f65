// Server of the manager kill -9 test: the manager component alone on a free loopback port over a state dir; prints "listening <port>".
import type { AddressInfo } from "node:net";
import type { DaemonContext } from "../../src/component/index.js";
import { SCRYPT } from "../../src/manager/auth.js";
import { managerComponent } from "../../src/manager/index.js";
import { DEFAULT_SETTINGS, type FarmSettings } from "../../src/manager/model.js";

const stateDir = process.argv[2];
if (!stateDir) throw new Error("usage: kill-server STATE_DIR");

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
  dynamic: () => settings,
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
