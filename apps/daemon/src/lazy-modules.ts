/**
 * The heavy parts berthd needs only for managed plugins (gRPC to containerd) or registries (HTTP
 * client, content store), loaded on first use: a daemon that serves volumes starts faster and
 * smaller without them.
 */
type ContainerdModule = typeof import('@berth/plugin-executor-containerd');
type RegistryModule = typeof import('@berth/plugin-registry');

let containerd: Promise<ContainerdModule> | undefined;
let registry: Promise<RegistryModule> | undefined;

export function loadContainerd(): Promise<ContainerdModule> {
  return (containerd ??= import('@berth/plugin-executor-containerd'));
}

export function loadRegistry(): Promise<RegistryModule> {
  return (registry ??= import('@berth/plugin-registry'));
}
