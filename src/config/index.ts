export * from "./schema.js";
export { loadConfig, loadConfigAsync, readConfigText, parseConfig, configPath, ConfigError, DEFAULT_CONFIG_PATH } from "./load.js";
export { parseToml } from "./toml.js";
