// A small keep-alive HTTP/1.1 load generator over a Unix socket (wrk cannot do Unix sockets).
// Raw sockets, one request in flight per connection, responses framed by Content-Length:
// cheap enough that the server, not the client, is what gets measured.
import { connect, type Socket } from "node:net";

export interface LoadResult {
  requests: number;
  seconds: number;
  rps: number;
  p50ms: number;
  p99ms: number;
  errors: number;
}

export async function load(socketPath: string, path: string, headers: Record<string, string>, connections: number, durationMs: number): Promise<LoadResult> {
  const req = Buffer.from(`GET ${path} HTTP/1.1\r\nHost: localhost\r\n${Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join("")}\r\n`);
  const latencies: number[] = [];
  let errors = 0;
  const start = performance.now();
  const end = start + durationMs;
  await Promise.all(
    Array.from({ length: connections }, () =>
      new Promise<void>((resolve) => {
        const s: Socket = connect(socketPath);
        let buf: Buffer = Buffer.alloc(0);
        let sent = 0;
        const fire = () => {
          if (performance.now() >= end) return s.end(), resolve();
          sent = performance.now();
          s.write(req);
        };
        s.on("connect", fire);
        s.on("error", () => (errors++, resolve()));
        s.on("data", (chunk: Buffer) => {
          buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
          for (;;) {
            const headEnd = buf.indexOf("\r\n\r\n");
            if (headEnd < 0) return;
            const m = /content-length: *(\d+)/i.exec(buf.subarray(0, headEnd).toString("latin1"));
            const total = headEnd + 4 + Number(m?.[1] ?? 0);
            if (buf.length < total) return;
            if (buf.subarray(9, 12).toString() !== "200") errors++;
            buf = buf.subarray(total);
            latencies.push(performance.now() - sent);
            fire();
          }
        });
      }),
    ),
  );
  const seconds = (performance.now() - start) / 1000;
  latencies.sort((a, b) => a - b);
  const q = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))] ?? NaN;
  return { requests: latencies.length, seconds, rps: latencies.length / seconds, p50ms: q(0.5), p99ms: q(0.99), errors };
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}
