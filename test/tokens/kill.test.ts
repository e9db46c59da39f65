// SIGKILL `stevedore token regenerate` (the bundled CLI) at random moments, 200 times, with
// several editors at once: the tokens file always parses and no other deployment's token is lost.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm, readFile } from "node:fs/promises";
import { spawn } from "node:child_process";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BUNDLE } from "../helpers/daemon.js";
import { getToken, parseTokens, tokensPath } from "../../src/tokens/index.js";

const RUNS = 200;
const PARALLEL = 4;

function runCli(stateDir: string, name: string, killAfterMs?: number): Promise<{ code: number | null; ms: number }> {
  const t0 = performance.now();
  const proc = spawn(process.execPath, [BUNDLE, "token", "regenerate", name], {
    env: { ...process.env, STEVEDORE_CONFIG: "", STEVEDORE_STATE_DIR: stateDir },
    stdio: "ignore",
  });
  const timer = killAfterMs === undefined ? undefined : setTimeout(() => proc.kill("SIGKILL"), killAfterMs);
  return new Promise((resolve) =>
    proc.once("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, ms: performance.now() - t0 });
    }),
  );
}

test("SIGKILL of token regenerate at random moments never corrupts the file or loses another token", { timeout: 300_000 }, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "stevedore-q-kill-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const keep = new Map<string, string>();
  for (const name of ["keep-a", "keep-b", "keep-c"]) keep.set(name, await getToken(dir, name));
  // how long one whole run takes here: kills land anywhere from start-up to the final rename. Measured
  // again every 10 batches: on a shared machine the load (and so the run time) changes while this runs.
  const measure = async () => Math.max(...(await Promise.all(Array.from({ length: PARALLEL }, (_, i) => runCli(dir, `victim${i}`)))).map((r) => r.ms));
  let full = await measure();
  const fulls = [full];
  let seed = 42;
  const random = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
  let killed = 0;
  let completed = 0;
  for (let done = 0; done < RUNS; done += PARALLEL) {
    if (done > 0 && done % (10 * PARALLEL) === 0) fulls.push((full = await measure()));
    const batch = Array.from({ length: PARALLEL }, (_, i) => runCli(dir, `victim${i}`, random() * full * 1.25)); // a fifth outlives its kill
    for (const r of await Promise.all(batch)) r.code === 0 ? completed++ : killed++;
    const tokens = parseTokens(await readFile(tokensPath(dir))); // throws if the file does not parse
    for (const [name, token] of keep) assert.equal(tokens.get(name)?.token, token, `${name} lost after ${done + PARALLEL} runs`);
  }
  t.diagnostic(`one run ${fulls.map((f) => f.toFixed(0)).join("/")} ms; ${killed} killed, ${completed} completed`);
  assert.ok(killed > RUNS / 4, `only ${killed} runs were killed`);
  assert.ok(completed > 0, "no run completed: the kills never reached the end of an edit");
  // stale locks of killed editors never block the next one
  const after = await runCli(dir, "victim0");
  assert.equal(after.code, 0);
  assert.ok(after.ms < 5000);
});
