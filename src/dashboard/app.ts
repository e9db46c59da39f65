// The dashboard's browser script. Written as one self-contained function (typechecked against the
// DOM, linted with the rest) whose source text the server sends as /dashboard/app.js: nothing
// outside it may be referenced, because only its text reaches the browser.
/// <reference lib="dom" />
/// <reference lib="dom.iterable" />

export function dashboardApp(): void {
  type Doc = Record<string, any>;
  const PAGE = 50;
  const GRAPH_MAX = 500;
  const ICON: Record<string, string> = {
    queued: "…", "claimed-by-manager": "…", active: "▶", completed: "✓", failed: "✗", "soft-failed": "!", "cancel-requested": "⊘",
    canceled: "⊘", paused: "⏸", starting: "↻", awake: "●", asleep: "☾", error: "✗", shutdown: "⏻", testing: "?", offline: "○", timeout: "⌛",
    running: "▶", exited: "■", created: "•", restarting: "↻", dead: "✗",
  };
  const state = {
    jobs: new Map<string, Doc>(),
    workers: new Map<string, Doc>(),
    seen: new Map<string, number>(), // worker id → when an event last told of it (ms)
    job: undefined as Doc | undefined, // the open job, with its tasks
    taskHistory: new Map<string, { status: string; at: string | number; worker?: string }[]>(),
    blacklist: [] as Doc[],
    perMinute: [] as number[], // tasks completed per minute, oldest first, this minute last (from /api/stats, then live)
    minute: 0, // the minute (ms / 60,000) perMinute ends with
    log: "",
    connected: false,
    ready: false,
    host: undefined as Doc | undefined,
    message: "",
  };
  const main = document.getElementById("main")!;
  const conn = document.getElementById("conn")!;

  // ---- small DOM helpers (textContent only: nothing from the server becomes markup)
  type Child = Node | string | number | undefined | false;
  function h(tag: string, attrs: Record<string, any> = {}, ...kids: Child[]): HTMLElement {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (v === undefined || v === false) continue;
      if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
      else el.setAttribute(k, v === true ? "" : String(v));
    }
    for (const k of kids) if (k !== undefined && k !== false) el.append(typeof k === "object" ? k : String(k));
    return el;
  }
  function s(tag: string, attrs: Record<string, string | number> = {}, text?: string): SVGElement {
    const el = document.createElementNS("http://www.w3.org/2000/svg", tag);
    for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
    if (text !== undefined) el.textContent = text;
    return el;
  }
  const status = (st: string) => h("span", { class: `st st-${st}` }, h("span", { "aria-hidden": "true" }, ICON[st] ?? "•"), st);
  /** one formatter for every absolute time (toLocaleString would make one per call: slow in big tables) */
  const FULL_TIME = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });
  function rel(iso: string | number | undefined): HTMLElement {
    if (iso === undefined || iso === "") return h("span", { class: "muted" }, "—");
    const t = typeof iso === "number" ? iso : Date.parse(iso);
    const d = Math.round((Date.now() - t) / 1000);
    const a = Math.abs(d);
    const txt = a < 5 ? "just now" : a < 60 ? `${a} s` : a < 3600 ? `${Math.floor(a / 60)} min` : a < 86400 ? `${Math.floor(a / 3600)} h` : `${Math.floor(a / 86400)} d`;
    return h("time", { datetime: new Date(t).toISOString(), title: FULL_TIME.format(t) }, a < 5 ? txt : d >= 0 ? `${txt} ago` : `in ${txt}`);
  }
  function bar(pct: number): HTMLElement {
    const inner = h("span");
    inner.style.width = `${Math.max(0, Math.min(100, pct))}%`;
    return h("span", {}, h("span", { class: "bar", role: "progressbar", "aria-valuemin": 0, "aria-valuemax": 100, "aria-valuenow": Math.round(pct), "aria-label": "progress" }, inner), h("span", { class: "pct" }, `${Math.round(pct)} %`));
  }
  /** `cls[i]` goes on column i's head and cells (e.g. hide-narrow: left out at 360 px) */
  function table(head: (string | Node)[], rows: HTMLElement[], cls: string[] = []): HTMLElement {
    for (const tr of rows) Array.from(tr.children).forEach((td, i) => { if (cls[i]) td.classList.add(cls[i]!); });
    return h("div", { class: "tablewrap" }, h("table", {}, h("thead", {}, h("tr", {}, ...head.map((c, i) => h("th", { scope: "col", class: cls[i] || undefined }, c)))), h("tbody", {}, ...rows)));
  }
  function pager(total: number, page: number, go: (p: number) => void): HTMLElement {
    const pages = Math.max(1, Math.ceil(total / PAGE));
    return h("div", { class: "pager" },
      h("button", { disabled: page <= 0, onclick: () => go(page - 1) }, "‹ Previous"),
      h("span", {}, `page ${page + 1} of ${pages} (${total})`),
      h("button", { disabled: page >= pages - 1, onclick: () => go(page + 1) }, "Next ›"));
  }
  const counts = (m: Record<string, number>) => Object.entries(m).filter(([, n]) => n > 0).map(([k, n]) => `${n} ${k}`).join(", ");

  // ---- talking to the manager
  async function api(method: string, path: string, body?: unknown): Promise<any> {
    const res = await fetch(path, {
      method,
      credentials: "same-origin",
      headers: body === undefined ? {} : { "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (res.status === 401 || res.status === 498) {
      location.reload(); // the server answers `/` with the sign-in page
      throw new Error("signed out");
    }
    const text = await res.text();
    const doc = text && (res.headers.get("content-type") ?? "").includes("json") ? JSON.parse(text) : text;
    if (!res.ok) throw new Error((doc && doc.error) || `${res.status}`);
    return doc;
  }
  async function act(what: string, fn: () => Promise<unknown>): Promise<void> {
    try {
      await fn();
      state.message = `${what}: done`;
    } catch (err) {
      state.message = `${what} failed: ${(err as Error).message}`;
    }
    schedule();
  }

  async function loadAll(): Promise<void> {
    const [jobs, workers, stats] = await Promise.all([api("GET", "/api/jobs"), api("GET", "/api/workers"), api("GET", "/api/stats")]);
    state.perMinute = stats.completed_per_minute;
    state.minute = Math.floor(Date.now() / 60_000);
    state.jobs = new Map(jobs.jobs.map((j: Doc) => [j._id, j]));
    state.workers = new Map(workers.workers.map((w: Doc) => [w._id, w]));
    const r = route();
    if (r.name === "job" || r.name === "task") await loadJob(r.args[0]!);
    if (r.name === "task") await loadLog(r.args[0]!, r.args[1]!);
    if (r.name === "host") state.host = await api("GET", "/api/dashboard/host");
    if (r.name === "workers") await loadBlacklist();
    state.ready = true;
    schedule();
  }
  async function loadJob(id: string): Promise<void> {
    state.job = await api("GET", `/api/jobs/${id}`).catch(() => undefined);
  }
  // Lines that arrive live while the file is being fetched are held, then merged: the fetched text
  // already holds the first of them (those written before the read), the rest are appended.
  let held: string[] | undefined;
  async function loadLog(job: string, task: string): Promise<void> {
    const mine: string[] = (held = held ? [...held] : []); // the last load wins and takes what an earlier one held
    const [log, doc] = await Promise.all([api("GET", `/logfile/${job}/${task}`).catch(() => ""), api("GET", `/api/tasks/${task}`).catch(() => undefined)]);
    if (held === mine) {
      held = undefined;
      state.log = mergeLog(String(log), mine);
    }
    if (doc && doc.history) state.taskHistory.set(task, doc.history);
  }
  /** `text` plus the held lines it does not end with already (the longest prefix of them it ends with is dropped) */
  function mergeLog(text: string, lines: string[]): string {
    for (let j = lines.length; j > 0; j--) if (text.endsWith(lines.slice(0, j).join(""))) return text + lines.slice(j).join("");
    return text + lines.join("");
  }
  async function loadBlacklist(): Promise<void> {
    state.blacklist = (await api("GET", "/api/blacklist").catch(() => ({ lines: [] }))).lines;
  }

  // ---- live events: one EventSource (with ?task= on a task page, for its log lines)
  let es: EventSource | undefined;
  let esTask: string | undefined;
  function connect(): void {
    const r = route();
    const task = r.name === "task" ? r.args[1] : undefined;
    if (es && esTask === task && es.readyState !== EventSource.CLOSED) return;
    es?.close();
    esTask = task;
    // EventSource resends Last-Event-ID itself when it reconnects (daemon restart included)
    es = new EventSource(task ? `/api/events?task=${task}` : "/api/events");
    // a task's stream is subscribed only now: read the log again, so nothing written before is missed
    es.onopen = () => {
      const reload = task && !(!state.connected && state.ready) && route().args[1] === task; // else setConn reads everything
      setConn(true);
      if (reload) void loadLog(route().args[0]!, task).then(schedule);
    };
    es.onerror = () => {
      setConn(false);
      // CLOSED: the server refused the stream (signed out, too many streams): check, then retry
      if (es?.readyState === EventSource.CLOSED) setTimeout(() => { fetch("/api/jobs", { credentials: "same-origin" }).then((r) => { if (r.status === 401 || r.status === 498) location.reload(); else { es = undefined; connect(); } }, () => { es = undefined; connect(); }); }, 2000);
    };
    es.addEventListener("reset", () => void loadAll().catch(() => {})); // a new daemon or a gap: read the state again
    es.addEventListener("job", (e) => onJob(JSON.parse((e as MessageEvent).data)));
    es.addEventListener("task", (e) => onTask(JSON.parse((e as MessageEvent).data)));
    es.addEventListener("worker", (e) => onWorker(JSON.parse((e as MessageEvent).data)));
    es.addEventListener("log", (e) => onLog(JSON.parse((e as MessageEvent).data)));
  }
  function setConn(up: boolean): void {
    if (up && !state.connected && state.ready) void loadAll().catch(() => {});
    state.connected = up;
    conn.textContent = up ? "● live" : "✗ disconnected — reconnecting";
    conn.className = up ? "conn" : "conn down";
  }
  function onJob(j: Doc): void {
    state.jobs.set(j._id, j);
    if (state.job && state.job._id === j._id) state.job = { ...j, tasks: state.job.tasks };
    schedule();
  }
  function onTask(t: Doc): void {
    const now = Date.now();
    const hist = state.taskHistory.get(t._id) ?? [];
    if (hist.length === 0 || hist[hist.length - 1]!.status !== t.status) {
      hist.push({ status: t.status, at: now, worker: t.worker });
      if (t.status === "completed") { advanceMinutes(); state.perMinute[state.perMinute.length - 1]!++; }
    }
    if (hist.length) state.taskHistory.set(t._id, hist.slice(-50));
    if (state.job && state.job._id === t.job && state.job.tasks) {
      const i = state.job.tasks.findIndex((x: Doc) => x._id === t._id);
      if (i >= 0) state.job.tasks[i] = t;
    }
    const r = route();
    if (r.name === "workers" && t.status.endsWith("failed")) void loadBlacklist().then(schedule); // may have earned a line
    if (r.name === "job" || r.name === "task" || r.name === "") schedule();
  }
  /** roll perMinute on to the current minute */
  function advanceMinutes(): void {
    const now = Math.floor(Date.now() / 60_000);
    if (state.perMinute.length === 0) state.perMinute = [0];
    for (; state.minute < now; state.minute++) state.perMinute = [...state.perMinute.slice(1), 0];
  }
  function onWorker(w: Doc): void {
    state.workers.set(w._id, w);
    state.seen.set(w._id, Date.now());
    const r = route().name;
    if (r === "workers" || r === "" || r === "task" || r === "job") schedule(); // the pages that show workers
  }
  function onLog(l: Doc): void {
    const r = route();
    if (r.name !== "task" || r.args[1] !== l.task) return;
    const text = l.text.endsWith("\n") ? l.text : l.text + "\n"; // as the manager writes it to the file
    if (held) return void held.push(text);
    state.log += text;
    const pre = document.getElementById("log");
    if (pre) {
      const atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
      pre.append(text);
      if (atEnd) pre.scrollTop = pre.scrollHeight;
    }
  }

  // ---- routing (#/page/args?query)
  function route(): { name: string; args: string[]; q: URLSearchParams } {
    const [path, query] = location.hash.replace(/^#\/?/, "").split("?");
    const parts = (path ?? "").split("/").filter(Boolean).map(decodeURIComponent);
    return { name: parts[0] ?? "", args: parts.slice(1), q: new URLSearchParams(query ?? "") };
  }
  function setQuery(changes: Record<string, string>): void {
    const r = route();
    for (const [k, v] of Object.entries(changes)) if (v === "") r.q.delete(k); else r.q.set(k, v);
    const base = location.hash.split("?")[0] || "#/";
    location.hash = `${base}${r.q.toString() ? `?${r.q}` : ""}`;
  }

  // rendering is coalesced: a burst of events costs one render
  let pending = false;
  function schedule(): void {
    if (pending) return;
    pending = true;
    setTimeout(() => { pending = false; render(); }, 200);
  }
  function render(): void {
    const r = route();
    for (const a of document.querySelectorAll("nav a")) {
      const target = (a.getAttribute("href") ?? "").replace(/^#\/?/, "");
      if (target === (r.name === "job" ? "jobs" : r.name === "task" ? "jobs" : r.name)) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
    }
    if (!state.ready) return;
    const focused = document.activeElement && document.activeElement.id ? document.activeElement.id : "";
    const page = r.name === "jobs" ? jobsPage(r.q) : r.name === "job" ? jobPage(r.args[0]!, r.q) : r.name === "task" ? taskPage(r.args[0]!, r.args[1]!)
      : r.name === "workers" ? workersPage(r.q) : r.name === "host" ? hostPage(r.q) : overviewPage();
    const msg = state.message ? h("p", { class: "msg", role: "status" }, state.message) : undefined;
    main.replaceChildren(...[msg, ...page].filter((x): x is HTMLElement => x !== undefined));
    if (focused) document.getElementById(focused)?.focus();
  }

  function overviewPage(): HTMLElement[] {
    const ws: Record<string, number> = {};
    for (const w of state.workers.values()) ws[w.status] = (ws[w.status] ?? 0) + 1;
    const js: Record<string, number> = {};
    for (const j of state.jobs.values()) js[j.status] = (js[j.status] ?? 0) + 1;
    const list = (m: Record<string, number>) => h("ul", {}, ...Object.entries(m).sort().map(([k, n]) => h("li", {}, status(k), h("b", {}, n))));
    return [
      h("h1", {}, "Farm overview"),
      h("div", { class: "cards" },
        h("section", { class: "card", "aria-label": "workers by status" }, h("h2", {}, `Workers (${state.workers.size})`), list(ws)),
        h("section", { class: "card", "aria-label": "jobs by status" }, h("h2", {}, `Jobs (${state.jobs.size})`), list(js)),
        h("section", { class: "card", "aria-label": "tasks completed per minute" }, h("h2", {}, "Tasks completed per minute"), chart())),
    ];
  }
  /** bars for the last 30 minutes (the manager counts since it started; the page adds what it sees) */
  function chart(): HTMLElement {
    advanceMinutes();
    const mins = 30;
    const buckets = state.perMinute.slice(-mins);
    while (buckets.length < mins) buckets.unshift(0);
    const max = Math.max(1, ...buckets);
    const total = buckets.reduce((a, b) => a + b, 0);
    const W = 300, H = 100, TOP = 14;
    const svg = s("svg", { id: "rate", viewBox: `0 0 ${W} ${H + 16}`, width: W, height: H + 16, role: "img", "aria-label": `tasks completed per minute over the last ${mins} minutes: ${total} in all, ${buckets[mins - 1]} this minute` });
    svg.append(s("line", { x1: 0, y1: H, x2: W, y2: H, stroke: "#8d969f" }));
    buckets.forEach((n, i) => {
      const bh = (n / max) * (H - TOP);
      const rect = s("rect", { x: i * (W / mins) + 1, y: H - bh, width: W / mins - 2, height: bh, fill: "#1f5fae" });
      rect.append(s("title", {}, `${n} completed ${mins - 1 - i} min ago`));
      svg.append(rect);
    });
    svg.append(s("text", { x: 0, y: H + 13 }, `-${mins} min`), s("text", { x: W - 24, y: H + 13 }, "now"), s("text", { x: 2, y: 10 }, `${max}/min`));
    return h("div", {}, svg, h("p", { class: "muted" }, `${buckets[mins - 1]} this minute, ${total} in the last ${mins} minutes`));
  }

  const JOB_COLS: [string, (j: Doc) => string | number][] = [
    ["name", (j) => j.name], ["status", (j) => j.status], ["priority", (j) => j.priority], ["progress", (j) => j.progress], ["created", (j) => j.created], ["updated", (j) => j.updated],
  ];
  function jobsPage(q: URLSearchParams): HTMLElement[] {
    const filter = q.get("status") ?? "";
    const sort = q.get("sort") ?? "updated";
    const desc = q.get("dir") !== "asc";
    const col = JOB_COLS.find(([n]) => n === sort) ?? JOB_COLS[5]!;
    const rows = [...state.jobs.values()].filter((j) => !filter || j.status === filter);
    rows.sort((a, b) => { const x = col[1](a), y = col[1](b); return (x < y ? -1 : x > y ? 1 : 0) * (desc ? -1 : 1); });
    const page = Math.min(Number(q.get("page") ?? 0) || 0, Math.max(0, Math.ceil(rows.length / PAGE) - 1));
    const head = JOB_COLS.map(([n]) => h("button", { onclick: () => setQuery({ sort: n, dir: sort === n && desc ? "asc" : "desc", page: "" }), "aria-label": `sort by ${n}` }, n, sort === n ? (desc ? " ▼" : " ▲") : ""));
    const select = h("select", { id: "job-filter", "aria-label": "filter by status", onchange: (e: Event) => setQuery({ status: (e.target as HTMLSelectElement).value, page: "" }) },
      ...["", "queued", "active", "paused", "completed", "failed", "cancel-requested", "canceled"].map((st) => h("option", { value: st, selected: st === filter }, st || "all statuses")));
    return [
      h("h1", {}, "Jobs"),
      h("div", { class: "tools" }, h("label", { for: "job-filter" }, "Status "), select),
      table([head[0]!, head[1]!, head[2]!, head[3]!, "tasks", head[4]!, head[5]!], rows.slice(page * PAGE, page * PAGE + PAGE).map((j) =>
        h("tr", { "data-job": j._id },
          h("td", { class: "wrap" }, h("a", { href: `#/job/${j._id}` }, j.name)), h("td", {}, status(j.status)), h("td", {}, j.priority),
          h("td", {}, bar(j.progress)), h("td", { class: "wrap" }, counts(j.task_counts)), h("td", {}, rel(j.created)), h("td", {}, rel(j.updated)))),
        ["", "", "", "", "hide-narrow", "hide-narrow", ""]),
      pager(rows.length, page, (p) => setQuery({ page: String(p) })),
    ];
  }

  function jobPage(id: string, q: URLSearchParams): HTMLElement[] {
    const j = state.job && state.job._id === id ? state.job : undefined;
    if (!j) {
      void loadJob(id).then(() => { if (state.job) schedule(); });
      return [h("h1", {}, "Job"), h("p", {}, "Loading…")];
    }
    const tasks: Doc[] = j.tasks ?? [];
    const page = Math.min(Number(q.get("page") ?? 0) || 0, Math.max(0, Math.ceil(tasks.length / PAGE) - 1));
    const pri = h("input", { id: "priority", type: "number", value: j.priority, "aria-label": "job priority", size: 5 }) as HTMLInputElement;
    const post = (what: string, path: string, body?: unknown) => act(what, () => api("POST", `/api/jobs/${id}/${path}`, body ?? {}));
    const paused = j.status === "paused";
    const done = ["completed", "canceled", "failed"].includes(j.status);
    return [
      h("h1", {}, `Job ${j.name}`),
      h("dl", { class: "kv" }, h("dt", {}, "status"), h("dd", {}, status(j.status)), h("dt", {}, "progress"), h("dd", {}, bar(j.progress)),
        h("dt", {}, "tasks"), h("dd", {}, counts(j.task_counts)), h("dt", {}, "type"), h("dd", {}, j.type || "—"), h("dt", {}, "id"), h("dd", {}, j._id),
        h("dt", {}, "submitted"), h("dd", {}, rel(j.created)), h("dt", {}, "updated"), h("dd", {}, rel(j.updated))),
      h("div", { class: "tools" },
        h("button", { id: "job-cancel", class: "danger", disabled: done || j.status === "cancel-requested", onclick: () => void post("cancel", "cancel") }, "Cancel job"),
        h("button", { id: "job-requeue", onclick: () => void post("requeue failed", "requeue", { failed_only: true }) }, "Requeue failed"),
        h("button", { id: "job-pause", disabled: done, onclick: () => void post(paused ? "resume" : "pause", paused ? "resume" : "pause") }, paused ? "Resume" : "Pause"),
        pri, h("button", { id: "job-priority", onclick: () => void post("priority", "priority", { priority: Number(pri.value) }) }, "Set priority")),
      h("h2", {}, "Latest outputs"),
      j.outputs && j.outputs.length ? h("ul", {}, ...j.outputs.map((o: string) => h("li", {}, h("code", {}, o)))) : h("p", { class: "muted" }, "none yet"),
      h("h2", {}, `Tasks (${tasks.length})`),
      table(["name", "status", "type", "worker", "progress", "activity"], tasks.slice(page * PAGE, page * PAGE + PAGE).map((t) =>
        h("tr", {}, h("td", { class: "wrap" }, h("a", { href: `#/task/${id}/${t._id}` }, t.name)), h("td", {}, status(t.status)), h("td", {}, t.task_type),
          h("td", {}, t.worker ? state.workers.get(t.worker)?.nickname ?? t.worker : "—"), h("td", {}, bar(t.progress ?? 0)), h("td", { class: "wrap" }, t.activity))),
        ["", "", "hide-narrow", "", "hide-narrow", "hide-narrow"]),
      pager(tasks.length, page, (p) => setQuery({ page: String(p) })),
      h("h2", {}, "Dependencies"),
      graph(id, tasks),
    ];
  }
  /** tasks in columns by depth (longest chain of parents), edges parent → child */
  function graph(job: string, tasks: Doc[]): HTMLElement {
    if (tasks.length > GRAPH_MAX) return h("p", { class: "muted" }, `the graph is drawn for jobs of up to ${GRAPH_MAX} tasks`);
    const byId = new Map(tasks.map((t) => [t._id, t]));
    const depth = new Map<string, number>();
    const depthOf = (t: Doc, guard = 0): number => {
      const known = depth.get(t._id);
      if (known !== undefined) return known;
      const d = guard > GRAPH_MAX ? 0 : Math.max(-1, ...t.parents.map((p: string) => (byId.has(p) ? depthOf(byId.get(p)!, guard + 1) : -1))) + 1;
      depth.set(t._id, d);
      return d;
    };
    const cols: Doc[][] = [];
    for (const t of tasks) (cols[depthOf(t)] ??= []).push(t);
    const NW = 130, NH = 26, GX = 40, GY = 8;
    const pos = new Map<string, { x: number; y: number }>();
    cols.forEach((col, c) => col.forEach((t, r) => pos.set(t._id, { x: c * (NW + GX) + 4, y: r * (NH + GY) + 4 })));
    const W = cols.length * (NW + GX) + 8, H = Math.max(...cols.map((c) => c.length)) * (NH + GY) + 8;
    const svg = s("svg", { viewBox: `0 0 ${W} ${H}`, width: W, height: H, role: "img", "aria-label": `dependency graph of ${tasks.length} tasks` });
    for (const t of tasks) for (const p of t.parents) {
      const a = pos.get(p), b = pos.get(t._id);
      if (a && b) svg.append(s("line", { x1: a.x + NW, y1: a.y + NH / 2, x2: b.x, y2: b.y + NH / 2, stroke: "#9aa3ad" }));
    }
    const FILL: Record<string, string> = { completed: "#d7f0de", active: "#d9e7fb", failed: "#f9d6d3", "soft-failed": "#fbe3d0", canceled: "#eee", paused: "#fff1c9" };
    for (const t of tasks) {
      const p = pos.get(t._id)!;
      const a = s("a", { href: `#/task/${job}/${t._id}` });
      a.append(s("rect", { x: p.x, y: p.y, width: NW, height: NH, rx: 4, fill: FILL[t.status] ?? "#fff", stroke: "#5b6570" }),
        s("text", { x: p.x + 5, y: p.y + 17 }, `${ICON[t.status] ?? "•"} ${String(t.name).slice(0, 18)}`), s("title", {}, `${t.name}: ${t.status}`));
      svg.append(a);
    }
    return h("div", { class: "graph" }, svg);
  }

  function taskPage(jobId: string, taskId: string): HTMLElement[] {
    const j = state.job && state.job._id === jobId ? state.job : undefined;
    if (!j) {
      void loadJob(jobId).then(() => schedule());
      return [h("h1", {}, "Task"), h("p", {}, "Loading…")];
    }
    const t = (j.tasks ?? []).find((x: Doc) => x._id === taskId);
    if (!t) return [h("h1", {}, "Task"), h("p", {}, "No such task in this job.")];
    const w = t.worker ? state.workers.get(t.worker) : undefined;
    const hist = state.taskHistory.get(taskId) ?? [];
    const pre = h("pre", { id: "log", class: "log", tabindex: 0, "aria-label": "task log", "aria-live": "off" }, state.log || "");
    const old = document.getElementById("log");
    const keep = old ? old.scrollTop + old.clientHeight >= old.scrollHeight - 4 : true;
    setTimeout(() => { if (keep) pre.scrollTop = pre.scrollHeight; });
    return [
      h("h1", {}, `Task ${t.name}`),
      h("p", {}, "of job ", h("a", { href: `#/job/${jobId}` }, j.name)),
      h("dl", { class: "kv" }, h("dt", {}, "status"), h("dd", { id: "task-status" }, status(t.status)), h("dt", {}, "progress"), h("dd", {}, bar(t.progress ?? 0)),
        h("dt", {}, "type"), h("dd", {}, t.task_type), h("dt", {}, "worker"), h("dd", {}, w ? h("a", { href: `#/workers?focus=${w._id}` }, w.nickname) : t.worker || "—"),
        h("dt", {}, "activity"), h("dd", {}, t.activity || "—"), h("dt", {}, "id"), h("dd", {}, t._id)),
      h("h2", {}, "Status history"),
      hist.length ? h("ol", { id: "history" }, ...hist.map((e) => h("li", {}, status(e.status), " ", rel(e.at), e.worker ? ` on ${state.workers.get(e.worker)?.nickname ?? e.worker}` : "")))
        : h("p", { class: "muted" }, `${t.status} (no changes since the manager started)`),
      h("h2", {}, "Log (live)"),
      pre,
    ];
  }

  function workersPage(q: URLSearchParams): HTMLElement[] {
    const rows = [...state.workers.values()].sort((a, b) => String(a.nickname).localeCompare(String(b.nickname)));
    const page = Math.min(Number(q.get("page") ?? 0) || 0, Math.max(0, Math.ceil(rows.length / PAGE) - 1));
    const lazy = h("input", { type: "checkbox", id: "lazy" }) as HTMLInputElement;
    const ask = (w: Doc, st: string) => act(`${w.nickname} ${st}`, () => api("POST", `/api/workers/${w._id}/status-request`, { status: st, lazy: lazy.checked }));
    const current = (w: Doc) => {
      if (!w.current_task) return "—";
      for (const j of [state.job, ...state.jobs.values()]) { if (j && j.tasks && j.tasks.some((t: Doc) => t._id === w.current_task)) return h("a", { href: `#/task/${j._id}/${w.current_task}` }, w.current_task); }
      return w.current_task;
    };
    return [
      h("h1", {}, `Workers (${rows.length})`),
      h("div", { class: "tools" }, lazy, h("label", { for: "lazy" }, "lazy (after the current task)")),
      table(["name", "status", "task types", "current task", "last seen", "actions"], rows.slice(page * PAGE, page * PAGE + PAGE).map((w) =>
        h("tr", { "data-worker": w._id },
          h("td", { class: "wrap" }, w.nickname), h("td", {}, status(w.status)), h("td", { class: "wrap" }, (w.supported_task_types ?? []).join(", ")),
          h("td", {}, current(w)), h("td", { class: "wrap" }, state.seen.has(w._id) ? rel(state.seen.get(w._id)) : "", " ", h("span", { class: "muted" }, w.last_activity)),
          h("td", {}, h("span", { class: "tools" },
            h("button", { onclick: () => void ask(w, "asleep"), "aria-label": `sleep ${w.nickname}` }, "Sleep"),
            h("button", { onclick: () => void ask(w, "awake"), "aria-label": `wake ${w.nickname}` }, "Wake"),
            h("button", { class: "danger", onclick: () => void ask(w, "shutdown"), "aria-label": `shut down ${w.nickname}` }, "Shut down"))))),
        ["", "", "hide-narrow", "", "hide-narrow", ""]),
      pager(rows.length, page, (p) => setQuery({ page: String(p) })),
      h("h2", {}, `Blacklist (${state.blacklist.length})`),
      state.blacklist.length === 0 ? h("p", { class: "muted" }, "no worker is blacklisted") :
        table(["worker", "job", "task type", ""], state.blacklist.slice(0, 200).map((l) =>
          h("tr", {}, h("td", {}, state.workers.get(l.worker)?.nickname ?? l.worker), h("td", { class: "wrap" }, h("a", { href: `#/job/${l.job}` }, state.jobs.get(l.job)?.name ?? l.job)), h("td", {}, l.task_type),
            h("td", {}, h("button", { "aria-label": `forget blacklist line of ${l.worker} for ${l.task_type}`, onclick: () => void act("forget", async () => { await api("DELETE", `/api/workers/${l.worker}/blacklist`, { job: l.job, task_type: l.task_type }); await loadBlacklist(); }) }, "Forget"))))),
    ];
  }

  function hostPage(q: URLSearchParams): HTMLElement[] {
    const host = state.host;
    if (!host) {
      void api("GET", "/api/dashboard/host").then((d) => { state.host = d; schedule(); }, () => {});
      return [h("h1", {}, "Host"), h("p", {}, "Loading…")];
    }
    const containers: Doc[] = host.containers;
    const page = Math.min(Number(q.get("page") ?? 0) || 0, Math.max(0, Math.ceil(containers.length / PAGE) - 1));
    const routes: Doc[] = host.routes;
    return [
      h("h1", {}, "Host"),
      h("p", {}, `Docker: ${host.docker}; catalog revision ${host.revision}. `, h("button", { onclick: () => { state.host = undefined; schedule(); } }, "Refresh")),
      h("h2", {}, `Deployments (${host.deployments.length})`),
      h("p", { class: "wrap" }, host.deployments.join(", ") || "none"),
      h("h2", {}, `Services (${containers.length} containers)`),
      table(["deployment", "service", "container", "state", "health", "started"], containers.slice(page * PAGE, page * PAGE + PAGE).map((c) =>
        h("tr", {}, h("td", {}, c.deployment), h("td", {}, c.service), h("td", { class: "wrap" }, c.name), h("td", {}, status(c.state)), h("td", {}, c.health), h("td", {}, rel(c.started_at ?? "")))),
        ["", "", "hide-narrow", "", "hide-narrow", "hide-narrow"]),
      pager(containers.length, page, (p) => setQuery({ page: String(p) })),
      h("h2", {}, `Proxy routes (${routes.length}, read-only)`),
      routes.length === 0 ? h("p", { class: "muted" }, "no routes") : table(["host", "path", "source", "backends"], routes.slice(0, 500).map((r) =>
        h("tr", {}, h("td", { class: "wrap" }, r.hostname), h("td", {}, r.pathBegin), h("td", {}, r.source),
          h("td", { class: "wrap" }, (r.backends ?? []).map((b: Doc) => `${b.address}${b.up ? " ✓ up" : " ✗ down"}`).join(", "))))),
    ];
  }

  window.addEventListener("hashchange", () => {
    state.message = "";
    const r = route();
    if (r.name === "task") { state.log = ""; void loadLog(r.args[0]!, r.args[1]!).then(schedule); }
    if (r.name === "host") state.host = undefined;
    if (r.name === "workers") void loadBlacklist().then(schedule);
    connect();
    render();
    main.focus();
  });
  // sign-out: the header's form, posted by fetch so the request carries this page's Origin (the
  // browser sends `Origin: null` for a form posted from a no-referrer page: the CSRF check refuses it)
  const signOut = document.querySelector<HTMLFormElement>("form.signout");
  signOut?.addEventListener("submit", (e) => {
    e.preventDefault();
    es?.close();
    fetch(signOut.action, { method: "POST", credentials: "same-origin" }).then((r) => {
      if (r.ok || r.status === 401) return location.replace(r.ok ? r.url : "/"); // the signed-out page (after the 303)
      state.message = `sign out failed: ${r.status}`;
      schedule();
    }, (err: Error) => {
      state.message = `sign out failed: ${err.message}`;
      schedule();
    });
  });
  setInterval(() => { if (route().name === "" || document.querySelector("time")) schedule(); }, 10_000); // relative times age
  render();
  connect();
  void loadAll().catch((err) => { main.textContent = `cannot load: ${(err as Error).message}`; });
}

/** what /dashboard/app.js serves: the function's own text, called */
export const APP_JS = `"use strict";\n(${dashboardApp.toString()})();\n`;
