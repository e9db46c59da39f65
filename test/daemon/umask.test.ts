// The unit runs the daemon with UMask=0077: sockets and the directories it makes for them still
// get the modes stevedore(8) promises (query 0666, admin and command 0600, parents 0755).
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtemp, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BUNDLE } from "../helpers/daemon.js";
import { NO_DOCKER } from "../helpers/admin.js";

test("under umask 077 the sockets and their new parent directories get their configured modes", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "stevedore-umask-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const run = join(dir, "run", "stevedore"); // made by the daemon
  const conf = join(dir, "s.conf");
  await writeFile(conf, [
    `state_dir = "${join(dir, "state")}"`, `query_socket_path = "${run}/query.sock"`, `admin_socket_path = "${run}/admin.sock"`,
    `command_socket_path = "${run}/command.sock"`, 'core_listen = ""', 'manager_listen = ""', 'proxy_http_listen = ""', 'proxy_https_listen = ""', "",
  ].join("\n"));
  const p = spawn("sh", ["-c", 'umask 077 && exec "$0" "$@"', process.execPath, BUNDLE, "daemon", "--config", conf], {
    env: { ...process.env, ...NO_DOCKER, STEVEDORE_CONFIG: "", STEVEDORE_QUERY_SOCKET: "", STEVEDORE_STATE_DIR: "" },
    stdio: ["ignore", "ignore", "pipe"],
  });
  const exited = new Promise((r) => p.once("exit", r));
  let stderr = "";
  await new Promise<void>((resolve, reject) => {
    p.stderr!.setEncoding("utf8").on("data", (c: string) => {
      stderr += c;
      if (/msg="ready"/.test(stderr)) resolve();
    });
    p.once("exit", () => reject(new Error(`daemon exited: ${stderr}`)));
  });
  try {
    const mode = async (path: string) => ((await stat(path)).mode & 0o777).toString(8);
    assert.equal(await mode(`${run}/query.sock`), "666");
    assert.equal(await mode(`${run}/admin.sock`), "600");
    assert.equal(await mode(`${run}/command.sock`), "600");
    assert.equal(await mode(run), "755", "containers reach the query socket through it");
    assert.equal(await mode(join(dir, "run")), "755");
    assert.equal(await mode(join(dir, "state")), "700");
  } finally {
    p.kill("SIGTERM");
    await exited;
  }
});
