import { emptyPluginConfig } from './plugin-types.js';
import { describe, expect, it } from 'vitest';
import { parsePluginConfig } from './plugin-config.js';

describe('parsePluginConfig', () => {
  it('accepts any object, with every field at its zero value', () => {
    expect(parsePluginConfig('{"description":"foo plugin"}')).toEqual({ ...emptyPluginConfig(), Description: 'foo plugin' });
  });

  it("decodes like Go: case-insensitive names, exact match first, null leaves zero values, unknown fields ignored", () => {
    const config = parsePluginConfig(
      JSON.stringify({
        ENTRYPOINT: ['/a'],
        interface: { socket: 'x.sock', types: ['docker.volumedriver/1.0'], protocolscheme: 'moby.plugins.http/v1' },
        WorkDir: null,
        workdir: '/w',
        user: { uid: 1000 },
        env: [{ name: 'A', value: null }],
        Unknown: 1,
      }),
    );
    expect(config.Entrypoint).toEqual(['/a']);
    expect(config.Interface).toEqual({ ProtocolScheme: 'moby.plugins.http/v1', Socket: 'x.sock', Types: ['docker.volumedriver/1.0'] });
    expect(config.WorkDir).toBe('/w');
    expect(config.User).toEqual({ UID: 1000 });
    expect(config.Env).toEqual([{ Description: '', Name: 'A', Settable: null, Value: null }]);
  });

  it("refuses what Go refuses, as 400 'failed to parse config'", () => {
    const cases: Array<[string, string | RegExp]> = [
      ['', /^failed to parse config: /],
      ['{"a":', /^failed to parse config: /],
      ['[]', 'failed to parse config: json: cannot unmarshal array into Go value of type plugin.Config'],
      ['{"Entrypoint":"/bin/x"}', 'failed to parse config: json: cannot unmarshal string into Go struct field Config.Entrypoint of type []string'],
      ['{"Interface":{"Socket":1}}', 'json: cannot unmarshal number into Go struct field Interface.Interface.Socket of type string'],
      ['{"User":{"UID":-1}}', 'json: cannot unmarshal number -1 into Go struct field User.User.UID of type uint32'],
      ['{} {}', /^failed to parse config: /],
    ];
    for (const [text, message] of cases) {
      let error: unknown;
      try {
        parsePluginConfig(text);
      } catch (err) {
        error = err;
      }
      expect(error, text).toMatchObject({ kind: 'invalid-parameter' });
      expect((error as Error).message, text).toMatch(message);
    }
  });
});
