export * from "./schema.js";
export { loadConfig, loadConfigAsync, readConfigText, parseConfig, configPath, ConfigError, parseHostPort, isHostPattern, DEFAULT_CONFIG_PATH } from "./load.js";
