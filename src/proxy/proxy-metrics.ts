// The proxy's series in the metrics registry (see stevedore(8), METRICS).
import { metrics } from "../metrics/index.js";

export const requests = metrics.counter("stevedore_proxy_requests_total", "Proxied requests by route (host + path prefix; \"\" when none matched), route source and status class.", ["route", "source", "code"]);
export const upstreamErrors = metrics.counter("stevedore_proxy_upstream_errors_total", "Failed upstream attempts by route and kind (connect, timeout, reset).", ["route", "kind"]);
export const duration = metrics.histogram("stevedore_proxy_request_duration_seconds", "Time from the request head to the end of the answer, by route.", ["route"]);
export const upstreamDuration = metrics.histogram("stevedore_proxy_upstream_duration_seconds", "Time from the first connect attempt to the end of the upstream's response, by route.", ["route"]);

const CLASSES = ["0xx", "1xx", "2xx", "3xx", "4xx", "5xx"];
/** 200 -> "2xx"; 0 (client gone before an answer) -> "0xx" */
export function statusClass(status: number): string {
  return CLASSES[Math.floor(status / 100)] ?? "5xx";
}
