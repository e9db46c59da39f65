// Routing of the JSON API server: method + path pattern ("/service/:id/ctl") to a route, with
// percent-decoded ":name" captures checked against their RegExp; 404 and 405 (+ Allow) otherwise.
import { HttpError } from "./json.js";

interface Compiled<R> {
  route: R;
  method: string;
  /** literal segments as strings, captures as { name } */
  segments: (string | { name: string })[];
}

export type RouteMatch<R> = { route: R; params: Record<string, string> };

export class Router<R extends { method: string; path: string }> {
  private readonly compiled: Compiled<R>[];

  /** `params`: a capture failing its RegExp is a 404 (so handlers only ever see valid values) */
  constructor(routes: readonly R[], private readonly paramRules: Record<string, RegExp> = {}) {
    this.compiled = routes.map((route) => {
      if (!route.path.startsWith("/")) throw new Error(`route path must start with /: ${route.path}`);
      const segments = route.path.slice(1).split("/").map((s) => (s.startsWith(":") ? { name: s.slice(1) } : s));
      return { route, method: route.method.toUpperCase(), segments };
    });
  }

  /**
   * The route for a method and a raw path (no query). Routes are tried in order; HEAD falls back
   * to GET. Throws HttpError 404 (no pattern matches, or a capture is not valid) or 405 with Allow
   * (the routes' methods, in route order).
   */
  match(method: string, path: string): RouteMatch<R> {
    const parts = path.slice(1).split("/");
    const allowed = new Set<string>();
    let found: { c: Compiled<R>; raw: Record<string, string> } | undefined;
    let getFallback: typeof found;
    for (const c of this.compiled) {
      const raw = shapeMatch(c.segments, parts);
      if (!raw) continue;
      allowed.add(c.method); // HEAD is served by GET routes without being listed
      if (!found && c.method === method) found = { c, raw };
      if (!getFallback && method === "HEAD" && c.method === "GET") getFallback = { c, raw };
    }
    found ??= getFallback;
    if (!found) {
      if (allowed.size === 0) throw new HttpError(404, `no such endpoint: ${path}`);
      throw new HttpError(405, `method ${method} not allowed`, { Allow: [...allowed].join(", ") });
    }
    return { route: found.c.route, params: this.decode(found.raw, path) };
  }

  private decode(raw: Record<string, string>, path: string): Record<string, string> {
    const params: Record<string, string> = {};
    for (const [name, value] of Object.entries(raw)) {
      let decoded: string;
      try {
        decoded = decodeURIComponent(value);
      } catch {
        throw new HttpError(404, `no such endpoint: ${path}`);
      }
      const rule = this.paramRules[name];
      if (rule && !rule.test(decoded)) throw new HttpError(404, `no such ${name}: ${JSON.stringify(decoded)}`);
      params[name] = decoded;
    }
    return params;
  }
}

/** the raw captures when the path has the pattern's shape (a capture is one non-empty segment) */
function shapeMatch(segments: Compiled<unknown>["segments"], parts: string[]): Record<string, string> | undefined {
  if (segments.length !== parts.length) return undefined;
  const raw: Record<string, string> = {};
  for (let i = 0; i < parts.length; i++) {
    const seg = segments[i]!;
    const part = parts[i]!;
    if (typeof seg === "string") {
      if (seg !== part) return undefined;
    } else {
      if (part === "") return undefined;
      raw[seg.name] = part;
    }
  }
  return raw;
}
