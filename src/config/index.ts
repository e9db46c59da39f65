// The config's entry: the schema, loading and validation of stevedore.conf (see stevedore.conf(5)).
export * from "./schema.js";
export { loadConfig, loadConfigAsync, readConfigText, parseConfig, configPath, ConfigError, DEFAULT_CONFIG_PATH } from "./load.js";
export { parseToml } from "./toml.js";
export { checkFiles, checkAcmeState, caProblems, byLine, printConfig, type FileCheck } from "./check.js";
