// The ACME client against a tiny fake CA on node:http (unit level; the flows are tested on Pebble):
// Retry-After while polling is honoured up to the poll deadline, a challenge the CA could not
// validate is reported with its type, and acme_ca_file's roots go on top of Node's own.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { rootCertificates } from "node:tls";
import { AcmeClient, ChallengeFailed, newKey, trustedRoots, type Solver } from "../../src/proxy/acme/client.js";

type Handler = (path: string, req: IncomingMessage, res: ServerResponse) => void;

/** A fake CA: directory, nonces and account built in; `route` answers the rest. */
async function fakeCa(route: Handler): Promise<{ base: string; close(): Promise<void> }> {
  let nonce = 0;
  const srv = createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      const base = `http://127.0.0.1:${(srv.address() as { port: number }).port}`;
      res.setHeader("Replay-Nonce", `n${++nonce}`);
      const path = req.url ?? "/";
      if (path === "/dir") return res.end(JSON.stringify({ newNonce: `${base}/nonce`, newAccount: `${base}/acct`, newOrder: `${base}/order` }));
      if (path === "/nonce") return res.end();
      if (path === "/acct") {
        res.writeHead(201, { Location: `${base}/acct/1` });
        return res.end(JSON.stringify({ status: "valid" }));
      }
      route(path, req, res);
    });
  });
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  const base = `http://127.0.0.1:${(srv.address() as { port: number }).port}`;
  return { base, close: () => new Promise((r) => srv.close(() => r())) };
}

const SOLVER: Solver = { types: ["http-01", "tls-alpn-01"], present() {}, remove() {} };
const PEM = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";

/** an order whose authorization is already valid; the order polls answer with `pollHeaders` first */
function orderFlow(base: () => string, pollHeaders: Record<string, string>): Handler {
  let polls = 0;
  return (path, _req, res) => {
    const order = (status: string) => JSON.stringify({ status, authorizations: [`${base()}/authz`], finalize: `${base()}/fin`, ...(status === "valid" && { certificate: `${base()}/cert` }) });
    if (path === "/order") {
      res.writeHead(201, { Location: `${base()}/order/1` });
      return res.end(order("pending"));
    }
    if (path === "/authz") return res.end(JSON.stringify({ status: "valid", identifier: { type: "dns", value: "h.test" }, challenges: [] }));
    if (path === "/order/1") {
      polls++;
      if (polls === 1) {
        res.writeHead(200, pollHeaders);
        return res.end(order("pending"));
      }
      return res.end(order(polls === 2 ? "ready" : "valid"));
    }
    if (path === "/fin") return res.end(order("processing"));
    if (path === "/cert") return res.end(PEM);
    res.writeHead(404).end("{}");
  };
}

test("Retry-After while polling is the wait (not capped at 5 s), bounded by the poll deadline", async (t) => {
  let base = "";
  const ca = await fakeCa(orderFlow(() => base, { "Retry-After": "30" }));
  t.after(() => ca.close());
  base = ca.base;
  const waits: number[] = [];
  const client = new AcmeClient({ directoryUrl: `${base}/dir`, accountKey: newKey().privateKey, pollTimeoutMs: 120_000, sleep: async (ms) => void waits.push(ms) });
  assert.equal(await client.obtain("h.test", newKey().privateKey, SOLVER), PEM);
  assert.equal(waits[0], 30_000, "the CA's Retry-After");

  let base2 = "";
  const ca2 = await fakeCa(orderFlow(() => base2, { "Retry-After": "3600" }));
  t.after(() => ca2.close());
  base2 = ca2.base;
  const waits2: number[] = [];
  const short = new AcmeClient({ directoryUrl: `${base2}/dir`, accountKey: newKey().privateKey, pollTimeoutMs: 20_000, sleep: async (ms) => void waits2.push(ms) });
  assert.equal(await short.obtain("h.test", newKey().privateKey, SOLVER), PEM);
  assert.ok(waits2[0]! > 15_000 && waits2[0]! <= 20_000, `an hour's Retry-After waits until the poll deadline only (${waits2[0]} ms)`);
});

test("an authorization the CA could not validate fails with the challenge's type and problem", async (t) => {
  let base = "";
  const presented: string[] = [];
  const ca = await fakeCa((path, _req, res) => {
    const chal = (status: string) => [{ type: "http-01", url: `${base}/chal/h`, token: "tok1", status, ...(status === "invalid" && { error: { type: "urn:ietf:params:acme:error:connection", detail: "port 80 refused" } }) },
      { type: "tls-alpn-01", url: `${base}/chal/t`, token: "tok2", status: "pending" }];
    if (path === "/order") {
      res.writeHead(201, { Location: `${base}/order/1` });
      return res.end(JSON.stringify({ status: "pending", authorizations: [`${base}/authz`], finalize: `${base}/fin` }));
    }
    if (path === "/authz") return res.end(JSON.stringify({ status: presented.length ? "invalid" : "pending", identifier: { type: "dns", value: "h.test" }, challenges: chal(presented.length ? "invalid" : "pending") }));
    if (path.startsWith("/chal/")) return res.end("{}");
    res.writeHead(404).end("{}");
  });
  t.after(() => ca.close());
  base = ca.base;
  const client = new AcmeClient({ directoryUrl: `${base}/dir`, accountKey: newKey().privateKey, sleep: async () => {} });
  const solver: Solver = { types: ["tls-alpn-01", "http-01"], present: (type) => void presented.push(type), remove() {} };
  // the first type of the solver's order is the one answered
  const err = await client.obtain("h.test", newKey().privateKey, solver).catch((e: unknown) => e);
  assert.deepEqual(presented, ["tls-alpn-01"]);
  assert.ok(err instanceof ChallengeFailed, String(err));
  assert.equal(err.challengeType, "tls-alpn-01");
});

test("acme_ca_file's roots are added to Node's roots, not put in their place", () => {
  const extra = "-----BEGIN CERTIFICATE-----\nextra\n-----END CERTIFICATE-----\n";
  const roots = trustedRoots([extra])!;
  assert.equal(roots.length, rootCertificates.length + 1);
  for (const r of rootCertificates) assert.ok(roots.includes(r));
  assert.equal(roots.at(-1), extra);
  assert.equal(trustedRoots(undefined), undefined, "no file: Node's defaults, untouched");
  assert.equal(trustedRoots([]), undefined);
});
