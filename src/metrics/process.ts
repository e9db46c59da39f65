// The process_* series Prometheus client libraries export: CPU, memory, file descriptors, start time.
import { readdirSync, readFileSync } from "node:fs";
import type { Registry } from "./registry.js";

function openFds(): number {
  try {
    return readdirSync("/proc/self/fd").length - 1; // the directory's own descriptor
  } catch {
    return NaN;
  }
}

function maxFds(): number {
  try {
    const m = /^Max open files\s+(\d+)/m.exec(readFileSync("/proc/self/limits", "utf8"));
    return m ? Number(m[1]) : NaN;
  } catch {
    return NaN;
  }
}

/** Register the process series on `registry` (again: the same series and one scrape hook). */
export function registerProcessMetrics(registry: Registry): void {
  const cpu = registry.counter("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.");
  const rss = registry.gauge("process_resident_memory_bytes", "Resident memory size in bytes.");
  const heap = registry.gauge("nodejs_heap_size_used_bytes", "Process heap size used from Node.js in bytes.");
  const fds = registry.gauge("process_open_fds", "Number of open file descriptors.");
  const max = registry.gauge("process_max_fds", "Maximum number of open file descriptors.");
  const start = registry.gauge("process_start_time_seconds", "Start time of the process since unix epoch in seconds.");
  start.set(Math.round((Date.now() - process.uptime() * 1000) / 1000));
  registry.onScrape("process", () => {
    const u = process.cpuUsage();
    cpu.labels().set((u.user + u.system) / 1e6);
    const m = process.memoryUsage();
    rss.set(m.rss);
    heap.set(m.heapUsed);
    fds.set(openFds());
    max.set(maxFds());
  });
}
