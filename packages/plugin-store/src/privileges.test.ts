import { describe, expect, it } from 'vitest';
import { parsePluginConfig } from './plugin-config.js';
import { computePrivileges, validatePrivileges, type PluginPrivilege } from './privileges.js';

const p = (Name: string, Value: string[]): PluginPrivilege => ({ Name, Description: 'Description', Value });

describe('privileges', () => {
  it('compares as multisets, values sorted, descriptions ignored (TestValidatePrivileges)', () => {
    const cases: Array<[string, PluginPrivilege[], PluginPrivilege[], boolean]> = [
      ['diff-len', [p('Privilege1', ['abc', 'def', 'ghi'])], [p('Privilege1', ['abc', 'def', 'ghi']), p('Privilege2', ['123', '456', '789'])], false],
      [
        'diff-value',
        [p('Privilege1', ['abc', 'def', 'GHI']), p('Privilege2', ['123', '456', '***'])],
        [p('Privilege1', ['abc', 'def', 'ghi']), p('Privilege2', ['123', '456', '789'])],
        false,
      ],
      [
        'diff-order-but-same-value',
        [p('Privilege1', ['abc', 'def', 'GHI']), p('Privilege2', ['123', '456', '789'])],
        [p('Privilege2', ['123', '456', '789']), p('Privilege1', ['GHI', 'abc', 'def'])],
        true,
      ],
      ['single-element-same', [p('allow-all-devices', ['true'])], [p('allow-all-devices', ['true'])], true],
      ['single-element-diff-value', [p('allow-all-devices', ['false'])], [p('allow-all-devices', ['true'])], false],
      [
        'first-sorted-element-diff-value',
        [p('allow-all-devices', ['false']), p('network', ['host'])],
        [p('allow-all-devices', ['true']), p('network', ['host'])],
        false,
      ],
      ['empty-privileges', [], [], true],
    ];
    for (const [name, required, given, ok] of cases) {
      const run = (): void => validatePrivileges(required, given);
      if (ok) expect(run, name).not.toThrow();
      else expect(run, name).toThrow('incorrect privileges');
    }
  });

  it("computes them from a config in moby's order", () => {
    const config = parsePluginConfig(
      JSON.stringify({
        Network: { Type: 'host' },
        IpcHost: true,
        PidHost: true,
        Mounts: [{ Source: '/var/lib', Destination: '/x' }, { Destination: '/y' }],
        Linux: { AllowAllDevices: true, Capabilities: ['CAP_SYS_ADMIN'], Devices: [{ Path: '/dev/fuse' }] },
      }),
    );
    expect(computePrivileges(config).map((x) => [x.Name, x.Value])).toEqual([
      ['network', ['host']],
      ['host ipc namespace', ['true']],
      ['host pid namespace', ['true']],
      ['mount', ['/var/lib']],
      ['device', ['/dev/fuse']],
      ['allow-all-devices', ['true']],
      ['capabilities', ['CAP_SYS_ADMIN']],
    ]);
    expect(computePrivileges(parsePluginConfig('{"Network":{"Type":"bridge"}}'))).toEqual([]);
  });
});
