export { writeFileAtomic, writeFileAtomicSync, fsyncDir } from "./atomic.js";
export { ensureDir, ensureDirSync } from "./dirs.js";
