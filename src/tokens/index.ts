export { TokenRegistry } from "./registry.js";
export { getToken, regenerateToken, revokeToken, listTokens, readTokens, tokensPath, TokenStoreError } from "./store.js";
export { parseTokens, serializeTokens, hashToken, newToken, TokensFileError, type Tokens, type TokenEntry } from "./file.js";
export { acquireLock, withLock, LockTimeout } from "./lock.js";
