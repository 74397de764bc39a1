import type { JsonValue } from './scanner.js';

/**
 * The Go types a JSON document is decoded into, described well enough to reproduce Go's
 * `UnmarshalTypeError` texts (`json: cannot unmarshal string into Go struct field
 * CreateOptions.Labels of type map[string]string`).
 */
export type GoType =
  | { readonly kind: 'string' }
  | { readonly kind: 'bool' }
  | { readonly kind: 'map'; readonly goName: string; readonly elem: GoType }
  | { readonly kind: 'slice'; readonly goName: string; readonly elem: GoType }
  | { readonly kind: 'struct'; readonly goName: string; readonly fields: Readonly<Record<string, GoType>> }
  | { readonly kind: 'any' };

export const goString: GoType = { kind: 'string' };
export const goBool: GoType = { kind: 'bool' };
export const goAny: GoType = { kind: 'any' };
export const goStringMap: GoType = { kind: 'map', goName: 'map[string]string', elem: goString };
export const goStringSlice: GoType = { kind: 'slice', goName: '[]string', elem: goString };

export function goStruct(goName: string, fields: Record<string, GoType>): GoType {
  return { kind: 'struct', goName, fields };
}

export class GoUnmarshalTypeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'GoUnmarshalTypeError';
  }
}

interface ErrorContext {
  struct: string;
  fields: string[];
}

/**
 * Decodes like Go's `json.Unmarshal` into `type`: struct fields match their name exactly or else
 * case-insensitively, unknown fields are ignored, `null` leaves the zero value (`undefined`, or
 * `null` for maps, slices and interfaces), a repeated map field merges. The first type mismatch in
 * document order is thrown, as the one Go reports.
 */
export function decodeGo(value: JsonValue, type: GoType): unknown {
  return decode(value, type, undefined, undefined);
}

function decode(value: JsonValue, type: GoType, context: ErrorContext | undefined, existing: unknown): unknown {
  if (value.kind === 'null') return type.kind === 'string' || type.kind === 'bool' || type.kind === 'struct' ? existing : null;
  switch (type.kind) {
    case 'any':
      return toPlain(value);
    case 'string':
      if (value.kind === 'string') return value.value;
      break;
    case 'bool':
      if (value.kind === 'bool') return value.value;
      break;
    case 'slice':
      if (value.kind === 'array') return value.items.map((item) => decode(item, type.elem, context, undefined));
      break;
    case 'map':
      if (value.kind === 'object') {
        const out: Record<string, unknown> = isRecord(existing) ? existing : Object.create(null);
        // Go decodes every map element into a fresh zero value, so `null` (or a repeated key's
        // `null`) stores the element type's zero value rather than dropping or keeping anything.
        for (const [key, item] of value.entries) out[key] = decode(item, type.elem, context, undefined) ?? zeroValue(type.elem);
        return out;
      }
      break;
    case 'struct':
      if (value.kind === 'object') return decodeStruct(value.entries, type, context, existing);
      break;
  }
  throw typeError(valueName(value), type, context);
}

function zeroValue(type: GoType): unknown {
  switch (type.kind) {
    case 'string':
      return '';
    case 'bool':
      return false;
    case 'struct':
      return {};
    default:
      return null;
  }
}

function decodeStruct(
  entries: Array<[string, JsonValue]>,
  type: Extract<GoType, { kind: 'struct' }>,
  context: ErrorContext | undefined,
  existing: unknown,
): Record<string, unknown> {
  const out: Record<string, unknown> = isRecord(existing) ? existing : {};
  const names = Object.keys(type.fields);
  const struct = type.goName.slice(type.goName.lastIndexOf('.') + 1);
  for (const [key, item] of entries) {
    const field = names.includes(key) ? key : names.find((name) => name.toLowerCase() === key.toLowerCase());
    if (field === undefined) continue;
    const fieldType = type.fields[field] as GoType;
    const fieldContext = { struct, fields: [...(context?.fields ?? []), field] };
    const decoded = decode(item, fieldType, fieldContext, out[field]);
    if (decoded !== undefined) out[field] = decoded;
  }
  return out;
}

function typeError(value: string, type: GoType, context: ErrorContext | undefined): GoUnmarshalTypeError {
  const target = goTypeName(type);
  if (context === undefined) return new GoUnmarshalTypeError(`json: cannot unmarshal ${value} into Go value of type ${target}`);
  return new GoUnmarshalTypeError(
    `json: cannot unmarshal ${value} into Go struct field ${context.struct}.${context.fields.join('.')} of type ${target}`,
  );
}

function goTypeName(type: GoType): string {
  switch (type.kind) {
    case 'string':
    case 'bool':
      return type.kind;
    case 'any':
      return 'interface {}';
    default:
      return type.goName;
  }
}

function valueName(value: JsonValue): string {
  return value.kind === 'object' ? 'object' : value.kind === 'array' ? 'array' : value.kind;
}

function toPlain(value: JsonValue): unknown {
  switch (value.kind) {
    case 'null':
      return null;
    case 'string':
    case 'bool':
      return value.value;
    case 'number':
      return Number(value.literal);
    case 'array':
      return value.items.map(toPlain);
    case 'object': {
      const out: Record<string, unknown> = Object.create(null);
      for (const [key, item] of value.entries) out[key] = toPlain(item);
      return out;
    }
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
