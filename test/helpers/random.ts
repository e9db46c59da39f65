// Seeded PRNG for fuzz tests (mulberry32): the same seed gives the same inputs on every run.

/** Floats in [0, 1). */
export function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), s | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Integers in [0, n). */
export function intRng(seed: number): (n: number) => number {
  const next = rng(seed);
  return (n) => Math.floor(next() * n);
}

/**
 * `buf` with one random edit, as the protocol fuzzers apply them: a byte flipped, a range
 * deleted, one of `pieces` (structural bits of the format, latin1) inserted, a range duplicated,
 * or the tail cut off.
 */
export function mutate(buf: Buffer, rand: (n: number) => number, pieces: readonly string[]): Buffer {
  const at = rand(buf.length + 1);
  switch (rand(5)) {
    case 0: // flip a byte
      if (buf.length === 0) return buf;
      buf = Buffer.from(buf);
      buf[Math.min(at, buf.length - 1)] = rand(256);
      return buf;
    case 1: // delete a range
      return Buffer.concat([buf.subarray(0, at), buf.subarray(Math.min(buf.length, at + 1 + rand(8)))]);
    case 2: // insert a structural piece
      return Buffer.concat([buf.subarray(0, at), Buffer.from(pieces[rand(pieces.length)]!, "latin1"), buf.subarray(at)]);
    case 3: // duplicate a range
      return Buffer.concat([buf.subarray(0, at), buf.subarray(at, at + rand(20)), buf.subarray(at)]);
    default: // truncate
      return buf.subarray(0, at);
  }
}
