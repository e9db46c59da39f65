// The two halves together in the bundled daemon: routes added through the command socket are
// served by the data plane at once, win over config sites, and `proxy routes` shows the merge.
import { test, after, before } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { BUNDLE, startDaemon, type TestDaemon } from "../helpers/daemon.js";
import { backend, get, type Backend } from "./helpers.js";

const exec = promisify(execFile);
let a: Backend;
let b: Backend;
let d: TestDaemon;
before(async () => {
  a = await backend("a");
  b = await backend("b");
  d = await startDaemon({
    disable: ["query", "admin", "core", "manager", "https"],
    config: `[[site]]\nhostname = "shared.test"\nbackends = ["127.0.0.1:${b.port}"]\n`,
  });
});
after(async () => {
  await d.cleanup();
  await a.close();
  await b.close();
});

const proxy = (...args: string[]) => exec(process.execPath, [BUNDLE, "proxy", "--socket", d.commandSocket, ...args], { env: { ...process.env, STEVEDORE_CONFIG: "" } });

test("command-socket routes are served at once and win over config sites; routes lists the merge", async () => {
  assert.equal((await get(d.httpPort, "shared.test")).body, "b");
  await proxy("backend", "add", "--app", "web", "--address", `127.0.0.1:${a.port}`);
  await proxy("front", "add", "--app", "web", "--host", "cmd.test");
  assert.equal((await get(d.httpPort, "cmd.test")).body, "a", "served right after the Ok");
  await proxy("front", "add", "--app", "web", "--host", "shared.test", "--path", "/");
  assert.equal((await get(d.httpPort, "shared.test")).body, "a", "command front wins over the config site");
  const { stdout } = await proxy("routes", "--json");
  const routes = JSON.parse(stdout) as { hostname: string; source: string; protocols: string[]; backends: { address: string }[] }[];
  // HTTP: the command front; HTTPS would be the config site's, but no certificate is served for
  // shared.test, so https is not listed (issue 15)
  const shared = routes.filter((r) => r.hostname === "shared.test").map((r) => `${r.source}:${r.protocols.join("+")}`).sort();
  assert.deepEqual(shared, ["command:http"]);
  assert.ok(routes.some((r) => r.hostname === "cmd.test" && r.source === "command" && r.backends[0]?.address === `127.0.0.1:${a.port}`));
  await proxy("front", "remove", "--app", "web", "--host", "shared.test", "--path", "/");
  assert.equal((await get(d.httpPort, "shared.test")).body, "b", "back to the config site");
});
