// systemd's readiness protocol (sd_notify) for Type=notify: READY=1, RELOADING=1, STOPPING=1.
import { spawn } from "node:child_process";
import { Serializer } from "../base/index.js";
import { log } from "../log.js";

/**
 * Node has no Unix datagram sockets (node:dgram is UDP only, node:net is stream only), and the
 * runtime takes no native addons, so the message is sent by systemd's own `systemd-notify`
 * (the unit sets NotifyAccess=all: the sender is our child, not the main process). It is passed
 * --pid=<our pid> (MAINPID) and, by default, waits for systemd to process the message
 * (sd_notify_barrier, systemd ≥ 246), which closes the race of a sender gone before systemd
 * looked up its cgroup. Messages go out one at a time, in order. Without NOTIFY_SOCKET (not
 * started by systemd as Type=notify) nothing is sent.
 */
export class SystemdNotifier {
  private readonly queue = new Serializer();

  constructor(
    private readonly env: NodeJS.ProcessEnv = process.env,
    private readonly command = "systemd-notify",
  ) {}

  get enabled(): boolean {
    return Boolean(this.env.NOTIFY_SOCKET);
  }

  /** Send `VARIABLE=VALUE` assignments (e.g. "READY=1", "STATUS=..."); resolves once sent (or failed: logged). */
  send(...assignments: string[]): Promise<void> {
    if (!this.enabled) return Promise.resolve();
    return this.queue.run(() => this.spawnOne(assignments));
  }

  /** RELOADING=1 with the CLOCK_MONOTONIC time systemd ≥ 253 asks for (node's hrtime is that clock) */
  reloading(): Promise<void> {
    return this.send("RELOADING=1", `MONOTONIC_USEC=${process.hrtime.bigint() / 1000n}`);
  }

  private spawnOne(assignments: string[]): Promise<void> {
    return new Promise((resolve) => {
      let stderr = "";
      let failed = false; // "close" follows "error" too
      const child = spawn(this.command, [`--pid=${process.pid}`, ...assignments], { env: this.env, stdio: ["ignore", "ignore", "pipe"] });
      child.stderr.setEncoding("utf8").on("data", (c: string) => (stderr += c));
      child.once("error", (err: NodeJS.ErrnoException) => {
        failed = true;
        log.warn("systemd notification not sent", { what: assignments[0], error: err.code === "ENOENT" ? `${this.command} not found` : err.message });
        resolve();
      });
      child.once("close", (code) => {
        if (failed) return;
        if (code !== 0) log.warn("systemd notification not sent", { what: assignments[0], error: stderr.trim() || `exit ${code}` });
        else log.debug("systemd notified", { what: assignments.join(" ") });
        resolve();
      });
    });
  }
}
