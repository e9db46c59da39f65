// Active health checks of ingress backends whose container has a `stevedore.ingress.healthcheck`
// label: GET the path every interval with a timeout; `failuresToDown` consecutive failures take
// the backend out of rotation, one success puts it back. Docker's own health status is applied
// when the routing table is built (an unhealthy container is not a backend at all).
import { request } from "node:http";
import { log } from "../log.js";
import { formatHostPort } from "../base/index.js";

export interface HealthOptions {
  intervalMs: number;
  timeoutMs: number;
  failuresToDown: number;
}

export const DEFAULT_HEALTH: HealthOptions = { intervalMs: 5000, timeoutMs: 2000, failuresToDown: 2 };

export class HealthState {
  /** in rotation */
  up = true;
  failures = 0;
  private timer: NodeJS.Timeout | undefined;
  private running = false;

  constructor(
    readonly host: string,
    readonly port: number,
    readonly path: string,
    private opts: HealthOptions,
  ) {}

  start(): void {
    this.probe();
    this.timer = setInterval(() => this.probe(), this.opts.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  private probe(): void {
    if (this.running) return; // never more than one probe in flight per backend
    this.running = true;
    let settled = false;
    const done = (ok: boolean) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      this.running = false;
      this.record(ok);
    };
    const req = request({ host: this.host, port: this.port, path: this.path, method: "GET", agent: false, headers: { "user-agent": "stevedore-healthcheck", connection: "close" } });
    const timer = setTimeout(() => {
      done(false);
      req.destroy();
    }, this.opts.timeoutMs);
    req.on("response", (res) => {
      const status = res.statusCode ?? 0;
      res.resume();
      res.on("error", () => {});
      done(status >= 200 && status < 400);
    });
    req.on("error", () => done(false));
    req.end();
  }

  private record(ok: boolean): void {
    if (this.timer === undefined) return; // stopped
    if (ok) {
      this.failures = 0;
      if (!this.up) {
        this.up = true;
        log.info("proxy backend healthy again", { backend: formatHostPort(this.host, this.port), path: this.path });
      }
      return;
    }
    this.failures++;
    if (this.up && this.failures >= this.opts.failuresToDown) {
      this.up = false;
      log.warn("proxy backend failed its health check, out of rotation", { backend: formatHostPort(this.host, this.port), path: this.path });
    }
  }
}

/** Every active check, keyed by backend and path; checks survive table rebuilds. */
export class HealthChecker {
  private checks = new Map<string, HealthState>();
  private used = new Set<string>();

  constructor(private opts: HealthOptions = DEFAULT_HEALTH) {}

  begin(): void {
    this.used.clear();
  }

  track(host: string, port: number, path: string): HealthState {
    const key = `${host}|${port}|${path}`;
    this.used.add(key);
    let check = this.checks.get(key);
    if (!check) {
      check = new HealthState(host, port, path, this.opts);
      this.checks.set(key, check);
      check.start();
    }
    return check;
  }

  /** stop the checks of backends the new table no longer has */
  sweep(): void {
    for (const [key, check] of this.checks) {
      if (this.used.has(key)) continue;
      check.stop();
      this.checks.delete(key);
    }
  }

  stopAll(): void {
    for (const check of this.checks.values()) check.stop();
    this.checks.clear();
  }
}
