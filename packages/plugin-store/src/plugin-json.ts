// Decoding JSON into plugin objects the way Go's `encoding/json` fills moby's structs: field names
// match case-insensitively (an exact match first), unknown fields are ignored, `null` leaves scalars
// and structs at their zero value and makes slices and pointers nil, and a value of the wrong type
// is `json: cannot unmarshal <type> into Go struct field <Struct>.<path> of type <go type>`.
// Plugin authors write `config.json` for dockerd and rely on all of this.

export type Shape =
  | { readonly kind: 'string' }
  | { readonly kind: 'bool' }
  | { readonly kind: 'uint32' }
  | { readonly kind: 'slice'; readonly of: Shape; readonly goType: string }
  | { readonly kind: 'pointer'; readonly to: Shape }
  | {
      readonly kind: 'struct';
      readonly goType: string;
      /** In the order Go marshals them. */
      readonly fields: Readonly<Record<string, Shape>>;
      /** Fields dropped from the result at their zero value (`omitempty`). */
      readonly omitEmpty?: readonly string[];
    };

export class GoJsonError extends Error {
  override readonly name = 'GoJsonError';
}

const STRING: Shape = { kind: 'string' };
const BOOL: Shape = { kind: 'bool' };
const UINT32: Shape = { kind: 'uint32' };
const strings = (goType = '[]string'): Shape => ({ kind: 'slice', of: STRING, goType });

const MOUNT: Shape = {
  kind: 'struct',
  goType: 'plugin.Mount',
  fields: {
    Description: STRING,
    Destination: STRING,
    Name: STRING,
    Options: strings(),
    Settable: strings(),
    Source: { kind: 'pointer', to: STRING },
    Type: STRING,
  },
};

const DEVICE: Shape = {
  kind: 'struct',
  goType: 'plugin.Device',
  fields: { Description: STRING, Name: STRING, Path: { kind: 'pointer', to: STRING }, Settable: strings() },
};

const ENV: Shape = {
  kind: 'struct',
  goType: 'plugin.Env',
  fields: { Description: STRING, Name: STRING, Settable: strings(), Value: { kind: 'pointer', to: STRING } },
};

export const CONFIG_SHAPE: Shape = {
  kind: 'struct',
  goType: 'plugin.Config',
  fields: {
    Args: {
      kind: 'struct',
      goType: 'plugin.Args',
      fields: { Description: STRING, Name: STRING, Settable: strings(), Value: strings() },
    },
    Description: STRING,
    Documentation: STRING,
    Entrypoint: strings(),
    Env: { kind: 'slice', of: ENV, goType: '[]plugin.Env' },
    Interface: {
      kind: 'struct',
      goType: 'plugin.Interface',
      fields: { ProtocolScheme: STRING, Socket: STRING, Types: strings('[]plugin.CapabilityID') },
      omitEmpty: ['ProtocolScheme'],
    },
    IpcHost: BOOL,
    Linux: {
      kind: 'struct',
      goType: 'plugin.LinuxConfig',
      fields: {
        AllowAllDevices: BOOL,
        Capabilities: strings(),
        Devices: { kind: 'slice', of: DEVICE, goType: '[]plugin.Device' },
      },
    },
    Mounts: { kind: 'slice', of: MOUNT, goType: '[]plugin.Mount' },
    Network: { kind: 'struct', goType: 'plugin.NetworkConfig', fields: { Type: STRING } },
    PidHost: BOOL,
    PropagatedMount: STRING,
    User: {
      kind: 'pointer',
      to: { kind: 'struct', goType: 'plugin.User', fields: { GID: UINT32, UID: UINT32 }, omitEmpty: ['GID', 'UID'] },
    },
    WorkDir: STRING,
    rootfs: {
      kind: 'pointer',
      to: { kind: 'struct', goType: 'plugin.RootFS', fields: { diff_ids: strings(), type: STRING }, omitEmpty: ['type'] },
    },
  },
  omitEmpty: ['User', 'rootfs'],
};

export const PLUGIN_SHAPE: Shape = {
  kind: 'struct',
  goType: 'plugin.Plugin',
  fields: {
    Config: CONFIG_SHAPE,
    Enabled: BOOL,
    Id: STRING,
    Name: STRING,
    PluginReference: STRING,
    Settings: {
      kind: 'struct',
      goType: 'plugin.Settings',
      fields: {
        Args: strings(),
        Devices: { kind: 'slice', of: DEVICE, goType: '[]plugin.Device' },
        Env: strings(),
        Mounts: { kind: 'slice', of: MOUNT, goType: '[]plugin.Mount' },
      },
    },
  },
  omitEmpty: ['Id', 'PluginReference'],
};

/** Decodes a parsed JSON value into the shape; throws `GoJsonError` with Go's text. */
export function decodeGo(value: unknown, shape: Shape): unknown {
  return decode(value, shape, { struct: shape.kind === 'struct' ? shape.goType : '', path: [] });
}

interface Context {
  /** The Go type name of the innermost struct, as Go's error names it. */
  struct: string;
  path: string[];
}

function decode(value: unknown, shape: Shape, ctx: Context): unknown {
  switch (shape.kind) {
    case 'string':
      if (value === null) return '';
      if (typeof value !== 'string') throw typeError(value, 'string', ctx);
      return value;
    case 'bool':
      if (value === null) return false;
      if (typeof value !== 'boolean') throw typeError(value, 'bool', ctx);
      return value;
    case 'uint32':
      if (value === null) return 0;
      if (typeof value !== 'number') throw typeError(value, 'uint32', ctx);
      // Go names the literal when a number does not fit the type.
      if (!Number.isInteger(value) || value < 0 || value > 0xffff_ffff) throw typeError(value, 'uint32', ctx, `number ${value}`);
      return value;
    case 'pointer':
      return value === null ? null : decode(value, shape.to, ctx);
    case 'slice':
      if (value === null) return null;
      if (!Array.isArray(value)) throw typeError(value, shape.goType, ctx);
      return value.map((item) => decode(item, shape.of, ctx));
    case 'struct':
      return decodeStruct(value, shape, ctx);
  }
}

function decodeStruct(value: unknown, shape: Extract<Shape, { kind: 'struct' }>, ctx: Context): Record<string, unknown> {
  const out = zero(shape);
  if (value === null) return out;
  if (typeof value !== 'object' || Array.isArray(value)) throw typeError(value, shape.goType, ctx);
  const names = Object.keys(shape.fields);
  for (const [key, field] of Object.entries(value as Record<string, unknown>)) {
    const name = names.includes(key) ? key : names.find((n) => n.toLowerCase() === key.toLowerCase());
    if (name === undefined) continue;
    const fieldShape = shape.fields[name] as Shape;
    out[name] = decode(field, fieldShape, { struct: shape.goType.replace(/^.*\./, ''), path: [...ctx.path, name] });
  }
  for (const name of shape.omitEmpty ?? []) if (isEmpty(out[name])) delete out[name];
  return out;
}

/** The zero value of a struct, with every field present that Go marshals at its zero value. */
function zero(shape: Extract<Shape, { kind: 'struct' }>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, field] of Object.entries(shape.fields)) {
    switch (field.kind) {
      case 'string':
        out[name] = '';
        break;
      case 'bool':
        out[name] = false;
        break;
      case 'uint32':
        out[name] = 0;
        break;
      case 'struct':
        out[name] = zero(field);
        break;
      default:
        out[name] = null;
    }
  }
  for (const name of shape.omitEmpty ?? []) if (isEmpty(out[name])) delete out[name];
  return out;
}

function isEmpty(value: unknown): boolean {
  return value === null || value === undefined || value === '' || value === 0 || value === false;
}

function typeError(value: unknown, goType: string, ctx: Context, what = jsonType(value)): GoJsonError {
  const where = ctx.path.length === 0 ? `Go value of type ${goType}` : `Go struct field ${ctx.struct}.${ctx.path.join('.')} of type ${goType}`;
  return new GoJsonError(`json: cannot unmarshal ${what} into ${where}`);
}

function jsonType(value: unknown): string {
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'object') return 'object';
  return typeof value;
}
