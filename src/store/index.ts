// The store's entry: atomic files and directories with the right mode.
export { writeFileAtomic, fsyncDir, tempName } from "./atomic.js";
export { ensureDir } from "./dirs.js";
export { openJournal, Journal, JournalError } from "./journal.js";
export type { JournalOptions, OpenedJournal, JournalCut, JournalStats, CompactStep } from "./journal.js";
