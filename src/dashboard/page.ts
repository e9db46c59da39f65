// The dashboard's HTML shells (the app and the sign-in page) and its style sheet, as strings in the
// bundle. No inline script or style anywhere: the CSP allows only /dashboard/app.js and app.css.
const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function shell(title: string, body: string, script: boolean): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>${esc(title)}</title>
<link rel="stylesheet" href="/dashboard/app.css">
<link rel="icon" href="data:,">
${script ? '<script type="module" src="/dashboard/app.js"></script>\n' : ""}</head>
<body>
${body}
</body>
</html>
`;
}

export function appHtml(): string {
  return shell(
    "stevedore farm",
    `<a class="skip" href="#main">Skip to content</a>
<header class="top">
  <span class="brand">stevedore farm</span>
  <nav aria-label="pages">
    <a href="#/">Overview</a><a href="#/jobs">Jobs</a><a href="#/workers">Workers</a><a href="#/host">Host</a>
  </nav>
  <span id="conn" class="conn" role="status" aria-live="polite">connecting…</span>
  <form class="signout" method="post" action="/dashboard/sign-out"><button type="submit" id="sign-out">Sign out</button></form>
</header>
<main id="main" tabindex="-1"><p>Loading…</p></main>`,
    true,
  );
}

/** `reason` shown above the instructions: a warning (expired, refused) or a notice (signed out) */
export function signInHtml(reason: string, kind: "warn" | "notice" = "warn"): string {
  return shell(
    "stevedore farm: sign in",
    `<main class="signin">
<h1>Sign in to the stevedore farm dashboard</h1>
${reason ? (kind === "warn" ? `<p class="warn" role="alert">${esc(reason)}</p>\n` : `<p class="msg" role="status">${esc(reason)}</p>\n`) : ""}<p>On the manager's host, run</p>
<pre><code>stevedore dashboard</code></pre>
<p>and open the one-time link it prints (it works once, for a few minutes). The link signs this browser in with a cookie.</p>
</main>`,
    false,
  );
}

export const APP_CSS = `
:root { --fg:#1d2327; --muted:#5b6570; --bg:#fff; --line:#d5d9de; --accent:#1f5fae; --ok:#1c7c3a; --bad:#b3261e; --warn:#8a5a00; --head:#f4f6f8; }
* { box-sizing: border-box; }
body { margin:0; font:14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color:var(--fg); background:var(--bg); }
a { color:var(--accent); }
a:focus-visible, button:focus-visible, select:focus-visible, input:focus-visible, pre:focus-visible { outline:3px solid #f0b400; outline-offset:2px; }
main:focus { outline:none; }
.skip { position:absolute; left:-999px; } .skip:focus { left:8px; top:8px; background:#fff; padding:4px; z-index:2; }
.top { display:flex; flex-wrap:wrap; align-items:center; gap:8px 16px; padding:8px 16px; background:#14202e; color:#fff; }
.top a { color:#dbe8ff; text-decoration:none; padding:6px 8px; border-radius:4px; }
.top a[aria-current="page"] { background:#2d4462; color:#fff; }
.brand { font-weight:700; }
nav { display:flex; flex-wrap:wrap; gap:2px; }
.conn { margin-left:auto; font-size:13px; padding:2px 8px; border-radius:10px; background:#2d4462; }
.conn.down { background:#b3261e; font-weight:700; }
.signout { margin:0; } .signout button { min-height:28px; padding:2px 10px; background:#14202e; color:#dbe8ff; border-color:#5d7390; }
.signout button:hover { background:#2d4462; color:#fff; }
main { padding:12px 16px 40px; max-width:1400px; margin:0 auto; }
h1 { font-size:20px; margin:8px 0 12px; } h2 { font-size:16px; margin:20px 0 8px; }
.cards { display:grid; grid-template-columns:repeat(auto-fit, minmax(240px, 1fr)); gap:12px; }
.card { border:1px solid var(--line); border-radius:6px; padding:10px 12px; }
.card h2 { margin-top:0; }
.card ul { list-style:none; padding:0; margin:0; } .card li { display:flex; justify-content:space-between; padding:2px 0; }
.tablewrap { overflow-x:auto; border:1px solid var(--line); border-radius:6px; }
table { border-collapse:collapse; width:100%; }
th, td { text-align:left; padding:6px 8px; border-bottom:1px solid var(--line); vertical-align:top; white-space:nowrap; }
th { background:var(--head); font-weight:600; }
th button { font:inherit; background:none; border:0; padding:0; min-height:0; cursor:pointer; color:inherit; }
td .tools { margin:0; flex-wrap:nowrap; gap:4px; } td .tools button { padding:2px 8px; min-height:28px; }
td.wrap { white-space:normal; word-break:break-word; min-width:120px; }
.st { display:inline-flex; align-items:center; gap:4px; font-weight:600; }
.st-completed, .st-awake { color:var(--ok); }
.st-failed, .st-error, .st-timeout, .st-soft-failed { color:var(--bad); }
.st-paused, .st-asleep, .st-cancel-requested, .st-canceled, .st-offline { color:var(--warn); }
.st-active { color:var(--accent); }
.bar { width:120px; height:12px; background:#e6e9ed; border:1px solid #b9c0c8; border-radius:3px; overflow:hidden; display:inline-block; vertical-align:middle; }
.bar > span { display:block; height:100%; background:var(--accent); }
.pct { margin-left:6px; font-variant-numeric:tabular-nums; }
.tools { display:flex; flex-wrap:wrap; gap:8px; align-items:center; margin:8px 0; }
input[type=number] { width:6em; }
button, select, input { font:inherit; padding:5px 10px; border:1px solid #8d969f; border-radius:4px; background:#fff; min-height:32px; }
button { cursor:pointer; background:#f2f5f8; } button.danger { border-color:var(--bad); color:var(--bad); }
button:disabled { opacity:.5; cursor:default; }
.pager { display:flex; gap:8px; align-items:center; margin:8px 0; }
.muted { color:var(--muted); }
.warn { color:var(--bad); font-weight:600; }
pre.log { background:#0f1720; color:#dfe6ee; padding:10px; border-radius:6px; max-height:60vh; overflow:auto; white-space:pre-wrap; word-break:break-all; font-size:12px; }
svg { max-width:100%; height:auto; display:block; }
svg text { font:11px system-ui, sans-serif; fill:#1d2327; }
.graph { overflow:auto; border:1px solid var(--line); border-radius:6px; max-height:70vh; }
.graph svg { max-width:none; }
dl.kv { display:grid; grid-template-columns:max-content 1fr; gap:4px 12px; margin:0; } dl.kv dt { color:var(--muted); } dl.kv dd { margin:0; word-break:break-word; }
.signin { max-width:640px; } .signin pre { background:var(--head); padding:10px; border-radius:6px; }
.msg { padding:6px 10px; border-radius:4px; background:#eef4fb; margin:8px 0; }
@media (max-width: 600px) {
  main { padding:8px 8px 32px; }
  .top { padding:6px 8px; gap:4px 8px; } .top a { padding:4px 6px; }
  th, td { padding:5px 6px; }
  .hide-narrow { display:none; }
  .bar { width:64px; }
}
`;
