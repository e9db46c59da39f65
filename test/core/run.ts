// Per-run names and labels: the same tests may run from several worktrees at once on the one
// engine, so each run names its containers with its own suffix and cleans up only its own.
import { randomBytes } from "node:crypto";

export const RUN = randomBytes(3).toString("hex");
/** put on every container a test makes (stevedore.test=core is the area label) */
export const labels = { "stevedore.test": "core", "stevedore.test.run": RUN };
/** what cleanup removes: this run's containers only */
export const RUN_LABEL = `stevedore.test.run=${RUN}`;
