// Counters, gauges and histograms with labels, kept in a registry the text encoder reads.
// Recording is cheap: a child per label set is looked up once (callers may keep it) and holds a number.

export type MetricType = "counter" | "gauge" | "histogram";

/** One time series' numbers (counter, gauge) */
export class Cell {
  value = 0;
  inc(n = 1): void {
    this.value += n;
  }
  set(v: number): void {
    this.value = v;
  }
  dec(n = 1): void {
    this.value -= n;
  }
  reset(): void {
    this.value = 0;
  }
}

export class HistogramCell {
  readonly counts: Float64Array;
  sum = 0;
  count = 0;
  constructor(readonly buckets: readonly number[]) {
    this.counts = new Float64Array(buckets.length);
  }
  observe(v: number): void {
    const b = this.buckets;
    for (let i = 0; i < b.length; i++)
      if (v <= b[i]!) {
        this.counts[i]!++;
        break;
      }
    this.sum += v;
    this.count++;
  }
  reset(): void {
    this.counts.fill(0);
    this.sum = 0;
    this.count = 0;
  }
}

/** A sample produced at scrape time by a collect function: label values (in labelNames order) and value. */
export type Sample = [labels: readonly string[], value: number];

export abstract class Family<C> {
  readonly children = new Map<string, { labels: readonly string[]; cell: C }>();
  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: MetricType,
    readonly labelNames: readonly string[],
  ) {}
  protected abstract make(): C;
  /** the series of these label values (in labelNames order) */
  labels(...values: string[]): C {
    const key = values.length === 1 ? values[0]! : values.join("\u0000");
    let child = this.children.get(key);
    if (!child) this.children.set(key, (child = { labels: values, cell: this.make() }));
    return child.cell;
  }
}

export class CounterFamily extends Family<Cell> {
  protected make(): Cell {
    return new Cell();
  }
  inc(n = 1): void {
    this.labels().inc(n);
  }
}

export class GaugeFamily extends Family<Cell> {
  /** read at scrape time instead of (or besides) the recorded cells */
  collect: (() => Sample[]) | undefined;
  protected make(): Cell {
    return new Cell();
  }
  set(v: number): void {
    this.labels().set(v);
  }
}

export class HistogramFamily extends Family<HistogramCell> {
  constructor(name: string, help: string, labelNames: readonly string[], readonly buckets: readonly number[]) {
    super(name, help, "histogram", labelNames);
  }
  protected make(): HistogramCell {
    return new HistogramCell(this.buckets);
  }
}

/** Prometheus client libraries' default latency buckets, in seconds. */
export const DEFAULT_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

export class Registry {
  readonly families = new Map<string, Family<unknown>>();
  /** run before encoding (process figures), by name: registering again replaces, never piles up */
  private readonly beforeScrape = new Map<string, () => void>();

  private add<F extends Family<unknown>>(f: F): F {
    const existing = this.families.get(f.name);
    // the same definition twice (a component started again in tests) is the same family
    if (existing) {
      if (existing.type !== f.type || existing.labelNames.join() !== f.labelNames.join()) throw new Error(`metric ${f.name} defined twice differently`);
      return existing as F;
    }
    if (!NAME.test(f.name) || f.name.startsWith("__")) throw new Error(`bad metric name ${f.name}`);
    for (const l of f.labelNames) if (!LABEL.test(l) || l.startsWith("__") || l === "le") throw new Error(`bad label name ${l}`);
    this.families.set(f.name, f);
    return f;
  }

  counter(name: string, help: string, labelNames: readonly string[] = []): CounterFamily {
    return this.add(new CounterFamily(name, help, "counter", labelNames));
  }

  gauge(name: string, help: string, labelNames: readonly string[] = [], collect?: () => Sample[]): GaugeFamily {
    const g = this.add(new GaugeFamily(name, help, "gauge", labelNames));
    if (collect) g.collect = collect;
    return g;
  }

  histogram(name: string, help: string, labelNames: readonly string[] = [], buckets: readonly number[] = DEFAULT_BUCKETS): HistogramFamily {
    return this.add(new HistogramFamily(name, help, labelNames, [...buckets].sort((a, b) => a - b)));
  }

  /** `fn` runs before each scrape; a second hook of the same `name` replaces the first. */
  onScrape(name: string, fn: () => void): void {
    this.beforeScrape.set(name, fn);
  }

  refresh(): void {
    for (const fn of this.beforeScrape.values()) fn();
  }

  /**
   * As fresh, for tests (the process registry outlives a test): every recorded value back to zero,
   * every collect function and scrape hook dropped (they hold an earlier test's components). The
   * families stay defined, and the series they had stay at zero: modules keep handles to them.
   */
  reset(): void {
    for (const f of this.families.values()) {
      for (const { cell } of f.children.values()) (cell as Cell | HistogramCell).reset();
      if (f instanceof GaugeFamily) f.collect = undefined;
    }
    this.beforeScrape.clear();
  }
}

/**
 * The process's registry, the Prometheus clients' default registry: interfaces record into it, the
 * daemon's metrics listener serves it. The one allowed module-level mutable value besides the umask
 * lock (see src/README.md): one daemon per process, and injecting it would thread a parameter through
 * every layer for no second registry. Tests that read it call reset() first.
 */
export const metrics = new Registry();
