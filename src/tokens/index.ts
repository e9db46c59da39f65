// The query tokens' entry: the tokens file, its lock, the store commands and the daemon's registry.
export { TokenRegistry } from "./registry.js";
export { getToken, regenerateToken, revokeToken, listTokens, readTokens, tokensPath, TokenStoreError } from "./store.js";
export { parseTokens, serializeTokens, hashToken, newToken, TokensFileError, type Tokens, type TokenEntry } from "./file.js";
export { acquireLock, withLock, LockTimeout } from "./lock.js";
export { signHs256, verifyHs256, signEs256, verifyEs256, isP256, MAX_TOKEN_BYTES, CLOCK_SKEW_SECS, MAX_VERIFY_KEYS, type JwtClaims, type JwtResult, type VerifyOptions } from "./jwt.js";
