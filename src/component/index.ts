// The component floor's entry: the contract every interface implements and the daemon drives.
export type { Component, ComponentFactory, DaemonContext, InheritFn, LaunchResult, ListenerMap, ReloadResult } from "./context.js";
