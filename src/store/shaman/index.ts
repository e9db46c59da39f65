// The Shaman store's entry: checkout definition files, blobs, checkouts, GC.
export { parseCdf, pathProblem, sizeProblem, CDF_LIMITS, SHA256_HEX_RE } from "./cdf.js";
export type { CdfEntry, CdfResult, CdfLimits } from "./cdf.js";
export { ShamanStore, CheckoutError, isCheckoutId, checkoutRelPath } from "./store.js";
export type { BlobKey, BlobState, UploadOutcome, UploadOptions, Requirement, ShamanStats, GcOptions, GcResult } from "./store.js";
export { checkoutFiles, copyCheckout, cdfText, definitionSha, readCheckoutSum, writeCheckoutSum, shamanRoot, CheckoutNotFound, CheckoutTooLarge } from "./checkout-read.js";
export type { CheckoutFile } from "./checkout-read.js";
