export { writeFileAtomic, writeFileAtomicSync, fsyncDir } from "./atomic.js";
