// Waiting for something, but not past a deadline (stops that drain, start-up that must not hang).

/** Resolves when `p` settles or at `deadline` (a performance.now() time), whichever comes first. */
export async function untilDeadline(p: Promise<unknown>, deadline: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<void>((resolve) => (timer = setTimeout(resolve, Math.max(0, deadline - performance.now()))));
  await Promise.race([p, timeout]);
  clearTimeout(timer);
}
