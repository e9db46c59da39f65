// The metrics floor: a registry of counters, gauges and histograms, and the Prometheus text encoder.
export { metrics, Registry, Cell, HistogramCell, CounterFamily, GaugeFamily, HistogramFamily, DEFAULT_BUCKETS, type Sample, type MetricType } from "./registry.js";
export { encode, escapeHelp, escapeLabel, formatValue, CONTENT_TYPE } from "./encode.js";
export { registerProcessMetrics } from "./process.js";
