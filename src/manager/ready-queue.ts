// The scheduler's index: per task type, a heap of buckets (one per job), each bucket a heap of
// its ready tasks. A bucket is keyed by its best task, so the top of a type's heap is that type's
// best ready task; a job's priority change or pause re-keys only its buckets (O(types · log jobs)).
//
// Picking for a worker is a best-first walk over these heaps that never mutates them: expand
// the best candidate; a blacklisted bucket or a task this worker failed is skipped by expanding
// its heap children instead. Cost: O((k + s) · log(k + s)) for k supported task types and s
// skipped entries — the worker's own exclusions ranked above its pick (blacklisted buckets, and
// at most blacklist_threshold - 1 failed tasks per bucket it is not blacklisted from). It does not
// grow with the number of queued tasks.
import { IndexedHeap } from "./heap.js";
import { Bucket, bucketKey, taskBefore, type TaskState } from "./state.js";

function bucketBefore(a: Bucket, b: Bucket): boolean {
  return taskBefore(a.heap.items[0]!, b.heap.items[0]!);
}

/** One frontier entry: a bucket node of a type heap, or a task node of a bucket heap. */
class Candidate {
  pos = -1;
  constructor(
    readonly key: TaskState, // the best task under this node (the node's own task for a task node)
    readonly types: IndexedHeap<Bucket> | undefined, // set for a bucket node
    readonly bucket: Bucket | undefined, // set for a task node
    readonly at: number,
  ) {}
}

function candidateBefore(a: Candidate, b: Candidate): boolean {
  return taskBefore(a.key, b.key);
}

export class ReadyQueue {
  private readonly byType = new Map<string, IndexedHeap<Bucket>>();
  /** the best-first walk's frontier, reused (empty between picks) */
  private readonly frontier = new IndexedHeap<Candidate>(candidateBefore);

  /** Puts `task` in its bucket (it became ready); `open`: its job is schedulable. */
  add(task: TaskState, open: boolean): void {
    task.bucket.heap.push(task, bucketKey(task));
    this.sync(task.bucket, open);
  }

  remove(task: TaskState, open: boolean): void {
    task.bucket.heap.remove(task);
    this.sync(task.bucket, open);
  }

  /**
   * Brings a bucket's place among its type's buckets in line with its tasks and its job: in the
   * type heap (at the right place) when it has ready tasks and `open`, out of it otherwise.
   */
  sync(bucket: Bucket, open: boolean): void {
    const want = open && bucket.heap.size > 0;
    if (!want) {
      if (bucket.pos >= 0) this.typeHeap(bucket.type).remove(bucket);
      return;
    }
    if (bucket.pos < 0) this.typeHeap(bucket.type).push(bucket);
    else this.typeHeap(bucket.type).fix(bucket);
  }

  /**
   * The best ready task of one of `types` for worker `workerId`: not in a bucket that blacklists
   * the worker, not a task it failed.
   */
  pick(types: readonly string[], workerId: string): TaskState | undefined {
    const frontier = this.frontier;
    for (const type of types) {
      const heap = this.byType.get(type);
      if (heap && heap.size > 0) frontier.push(new Candidate(heap.items[0]!.heap.items[0]!, heap, undefined, 0));
    }
    const found = this.walk(workerId);
    frontier.clear();
    return found;
  }

  private walk(workerId: string): TaskState | undefined {
    const frontier = this.frontier;
    for (;;) {
      const best = frontier.peek();
      if (!best) break;
      frontier.remove(best);
      if (best.types) {
        const heap = best.types;
        const bucket = heap.items[best.at]!;
        for (let child = 2 * best.at + 1; child <= 2 * best.at + 2 && child < heap.size; child++) {
          frontier.push(new Candidate(heap.items[child]!.heap.items[0]!, heap, undefined, child));
        }
        const banned = bucket.banned !== undefined && bucket.banned.has(workerId);
        if (!banned) frontier.push(new Candidate(best.key, undefined, bucket, 0));
        continue;
      }
      const tasks = best.bucket!.heap;
      const failedBy = best.key.failedBy;
      if (failedBy === undefined || !failedBy.includes(workerId)) return best.key;
      for (let child = 2 * best.at + 1; child <= 2 * best.at + 2 && child < tasks.size; child++) {
        frontier.push(new Candidate(tasks.items[child]!, undefined, best.bucket, child));
      }
    }
    return undefined;
  }

  private typeHeap(type: string): IndexedHeap<Bucket> {
    let heap = this.byType.get(type);
    if (!heap) this.byType.set(type, (heap = new IndexedHeap<Bucket>(bucketBefore)));
    return heap;
  }
}
