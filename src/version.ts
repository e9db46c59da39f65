// Replaced at bundle time by esbuild's --define; tsx runs see the fallback.
declare const STEVEDORE_VERSION: string | undefined;
export const VERSION: string = typeof STEVEDORE_VERSION === "string" ? STEVEDORE_VERSION : "0.1.0-dev";
