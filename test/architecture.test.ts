// The layering of src/: every relative import (import, import type, export ... from, import())
// is checked against the rule table below; no cycles between folders or between files; no
// module-level mutable state beyond the listed exceptions.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, readdirSync, statSync, existsSync } from "node:fs";
import { dirname, join, relative, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";

const SRC = resolve(dirname(fileURLToPath(import.meta.url)), "../src");

// ---- the rules ---------------------------------------------------------------------------------
// A module is a folder under src/ or a top-level file (log.ts -> "log"). A module may import a
// module of a LOWER layer only; `sideways` lists the same-layer modules it may import too.
// A new interface adds one line here.
const BASE = 0, FLOOR = 1, MODEL = 2, CONTRACT = 3, INTERFACE = 4, PROGRAM = 5;
interface Rule {
  layer: number;
  sideways?: string[];
  /** files of this module other modules may import besides index.ts, each with its reason */
  entries?: Record<string, string>;
}
const RULES: Record<string, Rule> = {
  base: { layer: BASE }, // small shared rules: names, host:port, Serializer, KeyedLock, mapLimit
  log: { layer: BASE },
  deadline: { layer: BASE },
  version: { layer: BASE },
  store: { layer: FLOOR }, // atomic files
  docker: { layer: FLOOR }, // Engine API client
  config: { layer: FLOOR }, // config file, schema
  http: { layer: FLOOR, sideways: ["store", "metrics"] }, // a Unix listener makes its socket's directory; API request counters
  metrics: { layer: FLOOR }, // Prometheus registry and text encoder
  catalog: { layer: MODEL, sideways: [] }, // deployments and services
  tokens: { layer: MODEL }, // query tokens
  component: { layer: CONTRACT }, // the Component/DaemonContext contract, listener hand-over
  query: { layer: INTERFACE },
  admin: { layer: INTERFACE },
  proxy: { layer: INTERFACE },
  core: { layer: INTERFACE },
  manager: { layer: INTERFACE },
  shaman: { layer: INTERFACE },
  dashboard: { layer: INTERFACE }, // the farm dashboard, a manager extension wired by the daemon
  worker: { layer: INTERFACE }, // the reference worker: a client program at interface level
  daemon: { layer: PROGRAM, sideways: [] },
  cli: { layer: PROGRAM, sideways: ["daemon"] }, // `stevedore daemon` runs it
  main: { layer: PROGRAM + 1 },
};

// ---- the import graph --------------------------------------------------------------------------
interface Edge {
  from: string; // file, relative to src/ with "/"
  to: string;
  line: number;
}

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...sourceFiles(p));
    else if (name.endsWith(".ts")) out.push(p);
  }
  return out;
}

const rel = (abs: string) => relative(SRC, abs).split(sep).join("/");

// static: `import ... from "x"`, `import "x"`, `export ... from "x"`; dynamic: `import("x")`
const IMPORT_RE = /(?:^|[;\s])(?:import|export)\s+(?:type\s+)?(?:[\w*${}\s,]+?\s+from\s+)?["'](\.{1,2}\/[^"']+)["']|\bimport\(\s*["'](\.{1,2}\/[^"']+)["']\s*\)/g;

/** Comments blanked (kept line breaks) so an import in a comment is not one. */
function withoutComments(text: string): string {
  return text.replace(/\/\*[\s\S]*?\*\/|\/\/[^\n]*/g, (c) => c.replace(/[^\n]/g, " "));
}

function resolveImport(fromAbs: string, spec: string): string {
  const base = resolve(dirname(fromAbs), spec);
  const candidates = [base.replace(/\.js$/, ".ts"), `${base}.ts`, join(base, "index.ts")];
  return candidates.find((c) => existsSync(c) && statSync(c).isFile()) ?? base;
}

export function importEdges(files: string[]): Edge[] {
  const edges: Edge[] = [];
  for (const abs of files) {
    const text = withoutComments(readFileSync(abs, "utf8"));
    for (const m of text.matchAll(IMPORT_RE)) {
      const spec = (m[1] ?? m[2])!;
      const line = text.slice(0, m.index! + m[0].indexOf(spec)).split("\n").length;
      edges.push({ from: rel(abs), to: rel(resolveImport(abs, spec)), line });
    }
  }
  return edges;
}

/** "proxy/command/state.ts" -> "proxy"; "log.ts" -> "log". */
export function moduleOf(file: string): string {
  const i = file.indexOf("/");
  return i < 0 ? file.replace(/\.ts$/, "") : file.slice(0, i);
}

/** Every rule an edge breaks (empty: fine). */
export function violations(edges: Edge[], rules: Record<string, Rule>): string[] {
  const out: string[] = [];
  for (const e of edges) {
    const [fm, tm] = [moduleOf(e.from), moduleOf(e.to)];
    if (fm === tm) continue;
    const where = `src/${e.from}:${e.line} imports src/${e.to}`;
    const [fr, tr] = [rules[fm], rules[tm]];
    if (!fr || !tr) {
      out.push(`${where}: module "${!fr ? fm : tm}" has no line in the rule table`);
      continue;
    }
    const down = tr.layer < fr.layer || (tr.layer === fr.layer && (fr.sideways ?? []).includes(tm));
    if (!down) out.push(`${where}: ${fm} (layer ${fr.layer}) may not import ${tm} (layer ${tr.layer})`);
    const entry = e.to.slice(tm.length + 1);
    if (e.to.includes("/") && entry !== "index.ts" && !tr.entries?.[entry]) {
      out.push(`${where}: import ${tm} through its entry src/${tm}/index.ts`);
    }
  }
  return out;
}

/** Cycles in a directed graph, each as its path (a -> b -> a); at most one per strongly connected part. */
export function cycles(graph: Map<string, Set<string>>): string[][] {
  const found: string[][] = [];
  const state = new Map<string, "open" | "done">();
  const stack: string[] = [];
  const visit = (n: string) => {
    state.set(n, "open");
    stack.push(n);
    for (const m of [...(graph.get(n) ?? [])].sort()) {
      if (state.get(m) === "open") found.push([...stack.slice(stack.indexOf(m)), m]);
      else if (!state.has(m)) visit(m);
    }
    stack.pop();
    state.set(n, "done");
  };
  for (const n of [...graph.keys()].sort()) if (!state.has(n)) visit(n);
  return found;
}

function graphOf(edges: Edge[], key: (file: string) => string): Map<string, Set<string>> {
  const g = new Map<string, Set<string>>();
  for (const e of edges) {
    const [a, b] = [key(e.from), key(e.to)];
    if (a === b) continue;
    if (!g.has(a)) g.set(a, new Set());
    g.get(a)!.add(b);
  }
  return g;
}

function describeCycle(path: string[], edges: Edge[], key: (f: string) => string): string {
  const steps = path.slice(1).map((to, i) => {
    const e = edges.find((x) => key(x.from) === path[i] && key(x.to) === to)!;
    return `src/${e.from}:${e.line} -> src/${e.to}`;
  });
  return `cycle ${path.join(" -> ")}: ${steps.join(", ")}`;
}

// ---- module-level state ------------------------------------------------------------------------
// No module-level mutable state: what a component needs is its instance's, handed in by the
// daemon's wiring. The exceptions, "file:name" (relative to src/) with the reason of each.
const PROCESS_LOG = "the process's log settings: one stderr per process, set by the daemon and by tests";
const JOURNAL_SCRATCH = "scratch of the synchronous frame parser (set and read with no await between): its hot loop allocates nothing";
const MODULE_STATE: Record<string, string> = {
  "log.ts:threshold": PROCESS_LOG,
  "log.ts:format": PROCESS_LOG,
  "log.ts:stamped": PROCESS_LOG,
  "log.ts:sink": PROCESS_LOG,
  "log.ts:lastMs": "memo of timestamp(): the string of the current millisecond",
  "log.ts:lastStamp": "memo of timestamp(): the string of the current millisecond",
  "http/server-conn.ts:dateSecond": "memo of httpDate(): the Date header of the current second",
  "http/server-conn.ts:dateValue": "memo of httpDate(): the Date header of the current second",
  "http/unix-listener.ts:umaskLock": "umask is process state: one socket creation under a changed umask at a time in the process",
  "metrics/registry.ts:metrics": "the process's metrics registry, as Prometheus clients' default registry (src/README.md); tests call reset()",
  "catalog/catalog.ts:eventLag": "a family of the process's metrics registry",
  "manager/ids.ts:counter": "the ObjectId layout has one counter per process",
  "store/journal.ts:frameSeq": JOURNAL_SCRATCH,
  "store/journal.ts:frameIdx": JOURNAL_SCRATCH,
  "store/journal.ts:frameValue": JOURNAL_SCRATCH,
  "store/journal.ts:openDirs": "one open Journal per directory in the process: the guard is as wide as the process",
  "admin/commands.ts:siteCounts": "memo keyed by an immutable DynamicConfig (weak: it goes with the config)",
  "proxy/answers.ts:BODIES": "memo of the constant answer bodies, one per status",
};

/** constructors whose instances hold no state we could share by accident */
const STATELESS = new Set(["RegExp", "TextDecoder", "TextEncoder"]);
const MUTATORS = "push|pop|shift|unshift|splice|set|add|delete|clear|sort|reverse|fill|copyWithin";

/** Module-level state in a source text: top-level let/var; a top-level const made by `new` (not a
 *  Set or Map filled from a literal, not a stateless kind) or an empty [] or {}; a top-level const
 *  mutated anywhere in the file (a property assigned or counted, a mutating method called); a static
 *  field that is not a readonly primitive. Declarations are recognised at the start of a line. */
export function moduleState(text: string): { name: string; line: number; why: string }[] {
  const src = withoutComments(text);
  const out: { name: string; line: number; why: string }[] = [];
  const lineAt = (i: number) => src.slice(0, i).split("\n").length;
  for (const m of src.matchAll(/^(?:export\s+)?(let|var)\s+(\w+)/gm)) out.push({ name: m[2]!, line: lineAt(m.index!), why: `top-level ${m[1]}` });
  const consts: string[] = [];
  for (const m of src.matchAll(/^(?:export\s+)?const\s+(\w+)(?:\s*:[^=\n]+)?\s*=\s*([^\n]*)/gm)) {
    const [name, init] = [m[1]!, m[2]!];
    consts.push(name);
    const made = /^new\s+([\w.]+)\s*(?:<[^\n]*?>)?\s*\((\s*\[)?/.exec(init);
    if (made && !STATELESS.has(made[1]!) && !(/^(Set|Map)$/.test(made[1]!) && made[2])) out.push({ name, line: lineAt(m.index!), why: `top-level new ${made[1]}` });
    else if (/^(\[\s*\]|\{\s*\})\s*;?\s*$/.test(init)) out.push({ name, line: lineAt(m.index!), why: "top-level empty container" });
  }
  for (const name of consts) {
    const prop = `${name}(?:\\.\\w+|\\[[^\\]\\n]*\\])+`;
    const re = new RegExp(`(?<![\\w.$])${prop}\\s*(?:[-+*/%&|^]?=(?!=)|\\+\\+|--)|(?:\\+\\+|--)${prop}|(?<![\\w.$])${name}\\.(?:${MUTATORS})\\(`, "g");
    for (const m of src.matchAll(re)) out.push({ name, line: lineAt(m.index!), why: `module-level ${name} mutated` });
  }
  for (const m of src.matchAll(/^\s+(?:(?:private|public|protected)\s+)?static\s+(readonly\s+)?(\w+)\s*(?::[^=\n]+)?=\s*([^\n]*)/gm)) {
    if (!m[1] || /^(new\s|\[|\{)/.test(m[3]!)) out.push({ name: m[2]!, line: lineAt(m.index!), why: "mutable static field" });
  }
  return out;
}

// ---- the tests ---------------------------------------------------------------------------------
const FILES = sourceFiles(SRC);
const EDGES = importEdges(FILES);

test("the import parser sees every kind of relative import", () => {
  const kinds = new Set(EDGES.map((e) => e.from));
  assert.ok(EDGES.length > 200, `only ${EDGES.length} imports found`);
  assert.ok(kinds.has("main.ts"));
  const text = withoutComments(`import type { A } from "./a.js";\nexport * from "./b.js";\nexport {\n  c,\n} from "../c.js";\nimport "./d.js";\nconst x = await import("./e.js");\n// import { f } from "./f.js";\nimport { g } from "node:g";\n`);
  const specs = [...text.matchAll(IMPORT_RE)].map((m) => m[1] ?? m[2]);
  assert.deepEqual(specs, ["./a.js", "./b.js", "../c.js", "./d.js", "./e.js"]);
});

test("the checks catch a wrong arrow, a side entry and a cycle", () => {
  const edges: Edge[] = [
    { from: "catalog/a.ts", to: "query/index.ts", line: 3 },
    { from: "query/a.ts", to: "catalog/inner.ts", line: 4 },
    { from: "query/a.ts", to: "admin/index.ts", line: 5 },
  ];
  const v = violations(edges, RULES);
  assert.equal(v.length, 3, v.join("\n"));
  assert.match(v[0]!, /src\/catalog\/a\.ts:3 .*catalog \(layer 2\) may not import query/);
  assert.match(v[1]!, /through its entry src\/catalog\/index\.ts/);
  assert.match(v[2]!, /query \(layer 4\) may not import admin/);
  const g = new Map([["a", new Set(["b"])], ["b", new Set(["c"])], ["c", new Set(["a"])]]);
  assert.deepEqual(cycles(g), [["a", "b", "c", "a"]]);
});

test("every import under src/ points down the layers, through a module's entry", () => {
  const v = violations(EDGES, RULES);
  assert.deepEqual(v, [], `\n${v.join("\n")}`);
});

test("no cycles between folders", () => {
  const c = cycles(graphOf(EDGES, moduleOf)).map((p) => describeCycle(p, EDGES, moduleOf));
  assert.deepEqual(c, [], `\n${c.join("\n")}`);
});

test("no cycles between files", () => {
  const id = (f: string) => f;
  const c = cycles(graphOf(EDGES, id)).map((p) => describeCycle(p, EDGES, id));
  assert.deepEqual(c, [], `\n${c.join("\n")}`);
});

test("the state scan catches let, new containers, empty literals, mutated consts and static fields", () => {
  const text = [
    "let a = 0;",
    "export let b: string;",
    "const c = new Map<string, number>();",
    "const d = new WeakMap();",
    "const e: string[] = [];",
    "const f = {};",
    "export const g = { fsyncs: 0 };",
    "function h() { g.fsyncs++; TABLE.push(1); }",
    "const TABLE = [1, 2];",
    "const lock = new Serializer();",
    "class K {",
    "  static cache = new Map();",
    "  static readonly N = 60;",
    "  private readonly own = new WeakMap(); // instance state: fine",
    "}",
    "function local() { let x = 1; const y = new Map(); return [x, y]; }",
    "const OK1 = new Set([\"a\"]);",
    "const OK2 = new RegExp(\"x\");",
    "const OK3 = { a: 1 } as const;",
    "// let inComment = 1;",
  ].join("\n");
  const found = moduleState(text).map((s) => `${s.line} ${s.name}: ${s.why}`);
  assert.deepEqual(found, [
    "1 a: top-level let",
    "2 b: top-level let",
    "3 c: top-level new Map",
    "4 d: top-level new WeakMap",
    "5 e: top-level empty container",
    "6 f: top-level empty container",
    "10 lock: top-level new Serializer",
    "8 g: module-level g mutated",
    "8 TABLE: module-level TABLE mutated",
    "12 cache: mutable static field",
  ]);
});

test("no module-level mutable state under src/ beyond the listed exceptions, and no stale exception", () => {
  const found = new Map<string, string>();
  for (const abs of FILES) for (const s of moduleState(readFileSync(abs, "utf8"))) found.set(`${rel(abs)}:${s.name}`, `src/${rel(abs)}:${s.line} ${s.why}`);
  const unlisted = [...found].filter(([key]) => !MODULE_STATE[key]).map(([, where]) => where);
  assert.deepEqual(unlisted, [], `\nmodule-level state (make it a component's, or list it in MODULE_STATE with its reason):\n${unlisted.join("\n")}`);
  const stale = Object.keys(MODULE_STATE).filter((key) => !found.has(key));
  assert.deepEqual(stale, [], "exceptions no longer found: remove them from MODULE_STATE");
});
