// The deployment name rule, shared by the catalog (labels), the config (core_deployment), the
// tokens file and the core API.

export const DEPLOYMENT_NAME = /^[a-z0-9][a-z0-9_-]{0,62}$/;

export function isDeploymentName(name: string): boolean {
  return DEPLOYMENT_NAME.test(name);
}

/** A clear error for a bad deployment name, or undefined when it is valid. */
export function deploymentNameError(name: string): string | undefined {
  if (isDeploymentName(name)) return undefined;
  return `invalid deployment name ${JSON.stringify(name)}: use 1-63 characters a-z, 0-9, _ and -, starting with a letter or digit`;
}
