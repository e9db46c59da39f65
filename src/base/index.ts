// The base layer's entry: small rules every other module may use (it imports nothing of src/).
export { DEPLOYMENT_NAME, isDeploymentName, deploymentNameError } from "./names.js";
export { isHostPattern, formatHostPort, parseHostPort } from "./host-port.js";
export { Serializer, KeyedLock, mapLimit } from "./serial.js";
