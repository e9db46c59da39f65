// The dashboard's entry: the manager extension the daemon hands the manager (page, assets, sign-in, host data).
export { dashboardService, type DashboardDeps, SIGN_IN_PATH, SIGN_OUT_PATH, SESSION_TTL_SECS } from "./service.js";
