// The store's entry: atomic files and directories with the right mode.
export { writeFileAtomic, fsyncDir, tempName, removeStaleTemps } from "./atomic.js";
export { ensureDir } from "./dirs.js";
export { openJournal, Journal, JournalError } from "./journal.js";
export type { JournalOptions, OpenedJournal, JournalCut, JournalStats, CompactStep } from "./journal.js";
export { ShamanStore, CheckoutError, parseCdf, pathProblem, sizeProblem, isCheckoutId, checkoutRelPath, CDF_LIMITS, SHA256_HEX_RE,
  checkoutFiles, copyCheckout, cdfText, definitionSha, readCheckoutSum, writeCheckoutSum, shamanRoot, CheckoutNotFound, CheckoutTooLarge } from "./shaman/index.js";
export type { CdfEntry, CdfResult, CdfLimits, BlobKey, BlobState, UploadOutcome, UploadOptions, Requirement, ShamanStats, GcOptions, GcResult, CheckoutFile } from "./shaman/index.js";
