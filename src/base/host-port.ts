// "host:port" addresses and host name patterns (sites, SNI names, upstreams).

const LABEL = "[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?";
const HOST = new RegExp(`^(\\*\\.)?${LABEL}(\\.${LABEL})*$`, "i");

/** A DNS name, optionally with one leading "*." wildcard label. */
export function isHostPattern(host: string): boolean {
  return host.length <= 253 && HOST.test(host);
}

/** "host:port", IPv6 hosts in brackets: the inverse of parseHostPort. */
export function formatHostPort(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

/** "host:port" or "[v6]:port" → parts; undefined when malformed. */
export function parseHostPort(value: string): { host: string; port: number } | undefined {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\[\]]+)):([0-9]{1,5})$/.exec(value);
  if (!m) return undefined;
  const port = Number(m[3]);
  if (port < 0 || port > 65535) return undefined;
  return { host: m[1] ?? m[2]!, port };
}
