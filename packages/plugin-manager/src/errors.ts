import { conflict, notFound, system, type BerthError } from '@berth/errdefs';

// moby's texts for the manager's refusals (`daemon/pkg/plugin/errors.go`, `manager_linux.go`).

export const pluginNotFound = (name: string): BerthError => notFound(`plugin "${name}" not found`);

export const alreadyEnabled = (name: string): BerthError =>
  conflict(`plugin already enabled: plugin ${name} is enabled`);

export const alreadyDisabled = (name: string): BerthError =>
  conflict(`plugin is already disabled: plugin ${name} found but disabled`);

export const pluginEnabled = (name: string): BerthError => conflict(`plugin ${name} is enabled`);

export const setWhileEnabled = (): BerthError =>
  system('cannot set on an active plugin, disable plugin before setting');

const NAMED_USERS = 10;

/**
 * `plugin <name> is in use`, moby's text, followed by the volumes holding references when they
 * are known: `plugin x:latest is in use by volumes: a, b`.
 */
export function pluginInUse(name: string, users: readonly string[] = []): BerthError {
  let text = `plugin ${name} is in use`;
  if (users.length > 0) {
    const shown = users.slice(0, NAMED_USERS).join(', ');
    const more = users.length > NAMED_USERS ? ` and ${users.length - NAMED_USERS} more` : '';
    text += ` by volumes: ${shown}${more}`;
  }
  return conflict(text);
}

/** The text of anything thrown, for a log field. */
export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
