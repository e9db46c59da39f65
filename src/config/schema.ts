// Every config key, its type, default and group. The man page stevedore.conf(5) mirrors this table.
// static: read once at start (a reload that changes one logs "restart required" and keeps the running value).
// dynamic: swapped atomically by a reload.

export type KeyType = "string" | "integer" | "boolean" | "strings";
export interface KeySpec {
  type: KeyType;
  default: string | number | boolean | string[];
  group: "static" | "dynamic";
  min?: number;
  max?: number;
}

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;

export const KEYS = {
  // files, sockets, listeners (static)
  state_dir: { type: "string", default: "/var/lib/stevedore", group: "static" },
  docker_socket: { type: "string", default: "/run/docker.sock", group: "static" },
  query_socket_path: { type: "string", default: "/run/stevedore/query.sock", group: "static" },
  query_socket_mode: { type: "string", default: "0666", group: "static" },
  query_max_connections: { type: "integer", default: 20000, group: "static", min: 1, max: 1000000 },
  admin_socket_path: { type: "string", default: "/run/stevedore/admin.sock", group: "static" },
  command_socket_path: { type: "string", default: "/run/stevedore/command.sock", group: "static" },
  command_max_frame_bytes: { type: "integer", default: 1 * MiB, group: "static", min: 1 * KiB, max: 64 * MiB },
  core_listen: { type: "string", default: "127.0.0.1:8000", group: "static" },
  core_key_file: { type: "string", default: "", group: "static" }, // "" = <state_dir>/corekey.bin
  core_tls_cert: { type: "string", default: "", group: "static" },
  core_tls_key: { type: "string", default: "", group: "static" },
  manager_listen: { type: "string", default: "127.0.0.1:8083", group: "static" },
  manager_tls_cert: { type: "string", default: "", group: "static" },
  manager_tls_key: { type: "string", default: "", group: "static" },
  manager_jwt_keys_dir: { type: "string", default: "", group: "static" },
  manager_registration_secret: { type: "string", default: "", group: "static" },
  proxy_http_listen: { type: "string", default: "0.0.0.0:80", group: "static" },
  proxy_https_listen: { type: "string", default: "0.0.0.0:443", group: "static" },
  metrics_listen: { type: "string", default: "", group: "static" }, // "" = off; e.g. 127.0.0.1:9273

  // dynamic
  log_level: { type: "string", default: "info", group: "dynamic" },
  // operators' logs and metrics (issue 14): access log destination "stderr" | "off" | a file path
  // (reopened on SIGUSR1); keep the query string (secret-looking values still redacted); line format
  access_log: { type: "string", default: "stderr", group: "dynamic" },
  access_log_query: { type: "boolean", default: false, group: "dynamic" },
  log_format: { type: "string", default: "logfmt", group: "dynamic" },
  shutdown_timeout_secs: { type: "integer", default: 30, group: "dynamic", min: 0, max: 3600 },
  ingress_domain: { type: "string", default: "", group: "dynamic" },
  catalog_debounce_ms: { type: "integer", default: 25, group: "dynamic", min: 0, max: 10000 },
  catalog_resync_secs: { type: "integer", default: 300, group: "dynamic", min: 1, max: 86400 },
  catalog_stale_after_secs: { type: "integer", default: 30, group: "dynamic", min: 0, max: 86400 },
  poll_default_timeout_secs: { type: "integer", default: 60, group: "dynamic", min: 1, max: 290 },
  poll_max_waiters: { type: "integer", default: 10000, group: "dynamic", min: 1, max: 1000000 },
  proxy_max_header_bytes: { type: "integer", default: 16 * KiB, group: "dynamic", min: 1 * KiB, max: 1 * MiB },
  proxy_connect_timeout_secs: { type: "integer", default: 5, group: "dynamic", min: 1, max: 600 },
  proxy_response_timeout_secs: { type: "integer", default: 60, group: "dynamic", min: 1, max: 3600 },
  proxy_idle_timeout_secs: { type: "integer", default: 60, group: "dynamic", min: 1, max: 3600 },
  proxy_max_connections: { type: "integer", default: 10000, group: "dynamic", min: 1, max: 1000000 },
  // issue 16 (hostile clients): a TLS handshake (proxy https, core and manager TLS) must finish within this
  tls_handshake_timeout_secs: { type: "integer", default: 5, group: "dynamic", min: 1, max: 300 },
  proxy_default_cert: { type: "string", default: "", group: "dynamic" },
  proxy_default_key: { type: "string", default: "", group: "dynamic" },
  core_deployment: { type: "string", default: "core", group: "dynamic" },
  core_max_body_bytes: { type: "integer", default: 1 * MiB, group: "dynamic", min: 1 * KiB, max: 1 * GiB },
  core_bind_contents_max_bytes: { type: "integer", default: 1 * GiB, group: "dynamic", min: 1, max: 1024 * GiB },
  core_image_max_bytes: { type: "integer", default: 4 * GiB, group: "dynamic", min: 1, max: 1024 * GiB },
  core_download_timeout_secs: { type: "integer", default: 30, group: "dynamic", min: 1, max: 3600 },
  core_stop_timeout_secs: { type: "integer", default: 10, group: "dynamic", min: 0, max: 3600 },
  manager_blacklist_threshold: { type: "integer", default: 3, group: "dynamic", min: 1, max: 1000 },
  manager_task_fail_after_softfail_count: { type: "integer", default: 3, group: "dynamic", min: 1, max: 1000 },
  manager_job_fail_percentage: { type: "integer", default: 10, group: "dynamic", min: 0, max: 100 },
  manager_worker_timeout_secs: { type: "integer", default: 60, group: "dynamic", min: 1, max: 86400 },
  manager_task_timeout_secs: { type: "integer", default: 600, group: "dynamic", min: 1, max: 604800 },
  shaman_gc_period_secs: { type: "integer", default: 86400, group: "dynamic", min: 60, max: 31536000 },
  shaman_gc_max_age_secs: { type: "integer", default: 31 * 86400, group: "dynamic", min: 60, max: 315360000 },
  shaman_max_file_size: { type: "integer", default: 64 * GiB, group: "dynamic", min: 1, max: 16 * 1024 * GiB },
  // JSON APIs (core, manager): hostile clients (issue 16)
  api_header_timeout_secs: { type: "integer", default: 5, group: "dynamic", min: 1, max: 300 },

  // automatic HTTPS (ACME, issue 15)
  acme: { type: "boolean", default: false, group: "dynamic" },
  acme_email: { type: "string", default: "", group: "dynamic" },
  acme_directory_url: { type: "string", default: "https://acme-v02.api.letsencrypt.org/directory", group: "dynamic" },
  acme_ca_file: { type: "string", default: "", group: "dynamic" },
  acme_hosts: { type: "strings", default: ["ingress"], group: "dynamic" },
  acme_renew_before_days: { type: "integer", default: 0, group: "dynamic", min: 0, max: 3650 }, // 0 = a third of the lifetime
  acme_challenges: { type: "strings", default: ["http-01", "tls-alpn-01"], group: "dynamic" },
} as const satisfies Record<string, KeySpec>;

/** Keys of one `[[site]]` table: a static route of the proxy (dynamic). */
export const SITE_KEYS = {
  hostname: { type: "string", default: "", group: "dynamic" },
  path: { type: "string", default: "/", group: "dynamic" },
  backends: { type: "strings", default: [], group: "dynamic" },
  tls_cert: { type: "string", default: "", group: "dynamic" },
  tls_key: { type: "string", default: "", group: "dynamic" },
  tls: { type: "string", default: "", group: "dynamic" }, // "auto": an ACME certificate
  https_redirect: { type: "boolean", default: true, group: "dynamic" }, // with a certificate: HTTP answers 308
} as const satisfies Record<string, KeySpec>;

type ValueOf<S extends KeySpec> = S["type"] extends "string" ? string : S["type"] extends "integer" ? number : S["type"] extends "boolean" ? boolean : string[];
export type Key = keyof typeof KEYS;
export type Values = { -readonly [K in Key]: ValueOf<(typeof KEYS)[K]> };
export type Site = { -readonly [K in keyof typeof SITE_KEYS]: ValueOf<(typeof SITE_KEYS)[K]> } & { line: number };

export type StaticKey = { [K in Key]: (typeof KEYS)[K]["group"] extends "static" ? K : never }[Key];
export type DynamicKey = Exclude<Key, StaticKey>;
export type StaticConfig = Readonly<Pick<Values, StaticKey>>;
export type DynamicConfig = Readonly<Pick<Values, DynamicKey> & { sites: readonly Readonly<Site>[] }>;

export interface Config {
  /** the file this came from ("" when all defaults) */
  readonly file: string;
  readonly static: StaticConfig;
  readonly dynamic: DynamicConfig;
}
