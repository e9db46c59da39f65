export * from "./schema.js";
export { loadConfig, loadConfigAsync, readConfigText, parseConfig, configPath, ConfigError, parseHostPort, formatHostPort, isHostPattern, DEFAULT_CONFIG_PATH } from "./load.js";
