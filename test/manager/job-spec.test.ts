// Job submission validation fuzzed: mutated specs are either accepted (then well-formed) or
// refused with FarmError 400 — never another exception.
import { test } from "node:test";
import assert from "node:assert/strict";
import { validateJobSpec } from "../../src/manager/job-spec.js";
import { FarmError } from "../../src/manager/model.js";
import { intRng } from "../helpers/random.js";

const VALUES: unknown[] = [null, 0, -1, 1.5, 101, 50, "", "x", "y".repeat(300), [], {}, [1], ["t0"], ["t1", "t1"], { a: 1 }, true, undefined];
const KEYS = ["name", "type", "priority", "tasks", "task_type", "commands", "parents", "settings", "extra", "0"];

function base() {
  return {
    name: "job",
    priority: 60,
    type: "render",
    tasks: [
      { name: "t0", task_type: "a", commands: [{ name: "echo", settings: { message: "hi" } }] },
      { name: "t1", task_type: "b", priority: 3, commands: [{ name: "sleep", settings: { time_in_seconds: 1 } }], parents: ["t0"] },
      { name: "t2", task_type: "a", commands: [{ name: "echo", settings: {} }], parents: ["t0", "t1"] },
    ],
  };
}

/** Replaces or deletes a random field somewhere in the object tree. */
function mutate(value: unknown, rand: (n: number) => number, depth = 0): unknown {
  if (typeof value !== "object" || value === null || depth > 4) return rand(3) === 0 ? VALUES[rand(VALUES.length)] : value;
  const copy: Record<string, unknown> = Array.isArray(value) ? ([...value] as unknown as Record<string, unknown>) : { ...(value as object) };
  const keys = Object.keys(copy);
  const choice = rand(4);
  if (choice === 0 || keys.length === 0) copy[KEYS[rand(KEYS.length)]!] = VALUES[rand(VALUES.length)];
  else if (choice === 1 && !Array.isArray(copy)) delete copy[keys[rand(keys.length)]!];
  else {
    const key = keys[rand(keys.length)]!;
    copy[key] = mutate(copy[key], rand, depth + 1);
  }
  return copy;
}

test("fuzz: 20,000 mutated job specs are accepted well-formed or refused with a 400", () => {
  const rand = intRng(2024);
  let accepted = 0;
  for (let i = 0; i < 20_000; i++) {
    let spec: unknown = base();
    for (let k = 1 + rand(3); k > 0; k--) spec = mutate(spec, rand);
    try {
      const job = validateJobSpec(spec);
      accepted++;
      assert.ok(job.name.length > 0 && job.priority >= 1 && job.priority <= 100);
      for (const t of job.tasks) {
        assert.ok(t.commands.length > 0);
        for (const p of t.parents) assert.ok(p >= 0 && p < job.tasks.length);
      }
    } catch (err) {
      if (!(err instanceof FarmError) || err.status !== 400) throw err;
    }
  }
  assert.ok(accepted > 100 && accepted < 19_000, `both outcomes exercised (${accepted} accepted)`);
});

test("a large DAG is accepted in linear time and a long cycle is named", () => {
  const n = 100_000;
  const tasks = Array.from({ length: n }, (_, i) => ({ name: `t${i}`, task_type: "a", commands: [{ name: "c", settings: {} }], parents: i > 0 ? [`t${i - 1}`] : [] }));
  const started = performance.now();
  assert.equal(validateJobSpec({ name: "chain", tasks }).tasks.length, n);
  assert.ok(performance.now() - started < 20_000, "not quadratic (a shared machine: a loose bound)");
  tasks[0]!.parents = [`t${n - 1}`];
  assert.throws(() => validateJobSpec({ name: "loop", tasks }), /task "t\d+": field "parents": dependency cycle/);
});
