import { GoJsonError, type JsonValue } from './json-scanner.js';

/**
 * The Go types a JSON document is decoded into, described well enough to reproduce Go's
 * `UnmarshalTypeError` texts (`json: cannot unmarshal string into Go struct field
 * CreateOptions.Labels of type map[string]string`) and the zero values Go leaves.
 */
export type GoType =
  | { readonly kind: 'string' }
  | { readonly kind: 'bool' }
  | { readonly kind: 'uint32' }
  | { readonly kind: 'map'; readonly goName: string; readonly elem: GoType }
  | { readonly kind: 'slice'; readonly goName: string; readonly elem: GoType }
  | { readonly kind: 'pointer'; readonly elem: GoType }
  | {
      readonly kind: 'struct';
      readonly goName: string;
      /** In the order Go marshals them. */
      readonly fields: Readonly<Record<string, GoType>>;
      /** Fields left out at their zero value (`omitempty`), as Go would marshal the struct. */
      readonly omitEmpty?: readonly string[] | undefined;
    }
  | { readonly kind: 'any' };

export const goString: GoType = { kind: 'string' };
export const goBool: GoType = { kind: 'bool' };
export const goUint32: GoType = { kind: 'uint32' };
export const goAny: GoType = { kind: 'any' };
export const goStringMap: GoType = { kind: 'map', goName: 'map[string]string', elem: goString };
export const goStringSlice: GoType = goSlice('[]string', goString);

export function goStruct(goName: string, fields: Record<string, GoType>, omitEmpty?: readonly string[]): GoType {
  return { kind: 'struct', goName, fields, omitEmpty };
}

export function goSlice(goName: string, elem: GoType): GoType {
  return { kind: 'slice', goName, elem };
}

export function goPointer(elem: GoType): GoType {
  return { kind: 'pointer', elem };
}

export interface DecodeOptions {
  /**
   * Every struct field present, at its zero value when the document has none (what the Go value
   * holds), rather than only the fields the document names. Default false.
   */
  readonly complete?: boolean | undefined;
}

interface ErrorContext {
  struct: string;
  fields: string[];
}

/**
 * Decodes like Go's `json.Unmarshal` into `type`: struct fields match their name exactly or else
 * case-insensitively, unknown fields are ignored, `null` leaves the zero value (`undefined` unless
 * `complete`, or `null` for maps, slices, pointers and interfaces), a repeated struct or map field
 * merges. The first type mismatch in document order is thrown (`GoJsonError`, code `type`), as the
 * one Go reports.
 */
export function decodeGo(value: JsonValue, type: GoType, options: DecodeOptions = {}): unknown {
  return new Decoder(options.complete === true).decode(value, type, undefined, undefined);
}

class Decoder {
  readonly #complete: boolean;

  constructor(complete: boolean) {
    this.#complete = complete;
  }

  decode(value: JsonValue, type: GoType, context: ErrorContext | undefined, existing: unknown): unknown {
    if (value.kind === 'null') {
      if (type.kind === 'string' || type.kind === 'bool' || type.kind === 'uint32' || type.kind === 'struct') {
        return existing ?? (this.#complete ? this.#zero(type) : undefined);
      }
      return null;
    }
    switch (type.kind) {
      case 'any':
        return toPlain(value);
      case 'string':
        if (value.kind === 'string') return value.value;
        break;
      case 'bool':
        if (value.kind === 'bool') return value.value;
        break;
      case 'uint32':
        if (value.kind === 'number') {
          // Go names the literal when a number does not fit the type.
          if (!/^[0-9]+$/.test(value.literal) || Number(value.literal) > 0xffff_ffff) {
            throw typeError(`number ${value.literal}`, type, context);
          }
          return Number(value.literal);
        }
        break;
      case 'pointer':
        return this.decode(value, type.elem, context, existing);
      case 'slice':
        if (value.kind === 'array') return value.items.map((item) => this.decode(item, type.elem, context, undefined));
        break;
      case 'map':
        if (value.kind === 'object') {
          const out: Record<string, unknown> = isRecord(existing) ? existing : Object.create(null);
          // Go decodes every map element into a fresh zero value, so `null` (or a repeated key's
          // `null`) stores the element type's zero value rather than dropping or keeping anything.
          for (const [key, item] of value.entries) out[key] = this.decode(item, type.elem, context, undefined) ?? zeroValue(type.elem);
          return out;
        }
        break;
      case 'struct':
        if (value.kind === 'object') return this.#decodeStruct(value.entries, type, context, existing);
        break;
    }
    throw typeError(valueName(value), type, context);
  }

  #decodeStruct(
    entries: Array<[string, JsonValue]>,
    type: Extract<GoType, { kind: 'struct' }>,
    context: ErrorContext | undefined,
    existing: unknown,
  ): Record<string, unknown> {
    const out = (isRecord(existing) ? existing : this.#complete ? this.#zero(type) : {}) as Record<string, unknown>;
    const names = Object.keys(type.fields);
    const struct = type.goName.slice(type.goName.lastIndexOf('.') + 1);
    for (const [key, item] of entries) {
      const field = names.includes(key) ? key : names.find((name) => name.toLowerCase() === key.toLowerCase());
      if (field === undefined) continue;
      const fieldType = type.fields[field] as GoType;
      const fieldContext = { struct, fields: [...(context?.fields ?? []), field] };
      const decoded = this.decode(item, fieldType, fieldContext, out[field]);
      if (decoded !== undefined) out[field] = decoded;
    }
    omitEmpty(out, type);
    return out;
  }

  /** The zero value of a struct: every field Go marshals, at its zero value. */
  #zero(type: GoType): unknown {
    if (type.kind !== 'struct') return zeroValue(type);
    const out: Record<string, unknown> = {};
    for (const [name, field] of Object.entries(type.fields)) out[name] = this.#zero(field);
    omitEmpty(out, type);
    return out;
  }
}

function omitEmpty(out: Record<string, unknown>, type: Extract<GoType, { kind: 'struct' }>): void {
  for (const name of type.omitEmpty ?? []) {
    const value = out[name];
    if (value === null || value === undefined || value === '' || value === 0 || value === false) delete out[name];
  }
}

function zeroValue(type: GoType): unknown {
  switch (type.kind) {
    case 'string':
      return '';
    case 'bool':
      return false;
    case 'uint32':
      return 0;
    case 'struct':
      return {};
    default:
      return null;
  }
}

function typeError(value: string, type: GoType, context: ErrorContext | undefined): GoJsonError {
  const target = goTypeName(type);
  if (context === undefined) return new GoJsonError('type', `json: cannot unmarshal ${value} into Go value of type ${target}`);
  return new GoJsonError(
    'type',
    `json: cannot unmarshal ${value} into Go struct field ${context.struct}.${context.fields.join('.')} of type ${target}`,
  );
}

function goTypeName(type: GoType): string {
  switch (type.kind) {
    case 'string':
    case 'bool':
    case 'uint32':
      return type.kind;
    case 'any':
      return 'interface {}';
    case 'pointer':
      return goTypeName(type.elem);
    default:
      return type.goName;
  }
}

function valueName(value: JsonValue): string {
  return value.kind === 'object' ? 'object' : value.kind === 'array' ? 'array' : value.kind;
}

/** The value as `JSON.parse` would give it (numbers from their literal); objects have no prototype. */
export function toPlain(value: JsonValue): unknown {
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
