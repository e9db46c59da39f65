export { writeFileAtomic, fsyncDir, tempName } from "./atomic.js";
export { ensureDir } from "./dirs.js";
