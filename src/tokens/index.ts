// The query tokens' entry: the tokens file, its lock, the store commands and the daemon's registry.
export { TokenRegistry } from "./registry.js";
export { getToken, regenerateToken, revokeToken, listTokens, readTokens, tokensPath, TokenStoreError } from "./store.js";
export { parseTokens, serializeTokens, hashToken, newToken, TokensFileError, type Tokens, type TokenEntry } from "./file.js";
export { acquireLock, withLock, LockTimeout } from "./lock.js";
