import { conflict, invalidParameter, notFound, system, type BerthError } from '@berth/errdefs';

// moby's plugin error catalogue (`daemon/pkg/plugin/errors.go`), texts verbatim.

export const pluginNotFound = (name: string): BerthError => notFound(`plugin "${name}" not found`);

export const pluginAmbiguous = (name: string): BerthError =>
  invalidParameter(`multiple plugins found for "${name}"`);

export const pluginDisabled = (name: string): BerthError => conflict(`plugin ${name} found but disabled`);

export const pluginInUse = (name: string): BerthError => conflict(`plugin ${name} is in use`);

export const pluginEnabled = (name: string): BerthError => conflict(`plugin ${name} is enabled`);

export const pluginAlreadyExists = (name: string): BerthError => conflict(`plugin ${name} already exists`);

/** moby's `v2.ErrInadequateCapability`, untyped there (a 500). */
export const inadequateCapability = (capability: string): BerthError =>
  system(`plugin does not provide "${capability}" capability`);

/** A v1 plugin whose `Plugin.Activate` answer does not list the requested subsystem. */
export const notImplements = (name: string, implementation: string): BerthError =>
  system(
    `Plugin does not implement the requested driver: plugin="${name}", requested implementation="${implementation}"`,
  );
