export * from "./schema.js";
export { loadConfig, parseConfig, configPath, ConfigError, parseHostPort, isHostPattern, DEFAULT_CONFIG_PATH } from "./load.js";
