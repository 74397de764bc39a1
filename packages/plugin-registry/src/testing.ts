// For tests of this package and of the packages above it: a real distribution registry (Debian's
// `docker-registry`) on a loopback port.
export { startRegistry, registryUnavailable, htpasswdUnavailable, pushContainerImage, REGISTRY_BINARY } from './test-registry.js';
export type { RunningRegistry, RegistryUser, RegistryTokenAuth } from './test-registry.js';
