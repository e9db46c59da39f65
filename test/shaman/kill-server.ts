// Server of the Shaman kill -9 test: the store and its routes on a loopback port over a store dir;
// prints "listening <host:port>". "arm" on stdin: SIGKILL itself right after the next 2xx answer.
import { Socket } from "node:net";
import { createInterface } from "node:readline";
import { createApiServer } from "../../src/http/index.js";
import { setLogSink } from "../../src/log.js";
import { shamanRoutes } from "../../src/shaman/index.js";
import { ShamanStore } from "../../src/store/index.js";

const root = process.argv[2];
if (!root) throw new Error("usage: kill-server STORE_DIR");
setLogSink((line) => {
  if (/level=error|"level":"error"/.test(line)) process.stderr.write(line + "\n");
});

/** kill -9 right after the next successful answer is handed to the kernel (the client still gets
 *  it): the moment an answer given before its blob or checkout is in place would be lost */
function killAfterNextAnswer(): void {
  let answered = false;
  const realWrite = Socket.prototype.write as (this: Socket, ...args: unknown[]) => boolean;
  const realUncork = Socket.prototype.uncork;
  const dieWhenSent = (socket: Socket) => {
    if (answered && socket.writableCorked === 0) process.kill(process.pid, "SIGKILL");
  };
  Socket.prototype.write = function (this: Socket, ...args: unknown[]) {
    const ok = realWrite.apply(this, args);
    const head = typeof args[0] === "string" ? args[0] : Buffer.isBuffer(args[0]) ? args[0].subarray(0, 12).toString("latin1") : "";
    if (head.startsWith("HTTP/1.1 2")) answered = true;
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

const store = await ShamanStore.open(root);
const server = createApiServer({
  name: "shaman-kill",
  listen: "127.0.0.1:0",
  routes: shamanRoutes({ store, maxFileSize: () => 64 * 1024 * 1024, gc: (dryRun) => store.gc({ maxAgeMs: 86400_000, dryRun }), lastGc: () => undefined }),
  before: (req) => {
    req.user = { kind: "user", subject: "kill" };
  },
  limits: () => ({ maxBodyBytes: 16 * 1024 * 1024, maxConnections: 1000, headMs: 10_000, idleMs: 30_000, maxHeaderBytes: 16 * 1024 }),
});
await server.start();
process.stdout.write(`listening ${server.address}\n`);
