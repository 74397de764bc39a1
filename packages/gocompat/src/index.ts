export { decodeFirstValue, unmarshalValue, quoteChar, GoJsonError } from './json-scanner.js';
export type { JsonValue, GoJsonErrorCode } from './json-scanner.js';
export {
  decodeGo,
  toPlain,
  goString,
  goBool,
  goUint32,
  goAny,
  goStringMap,
  goStringSlice,
  goStruct,
  goSlice,
  goPointer,
} from './json-decode.js';
export type { GoType, DecodeOptions } from './json-decode.js';
export { goField, isJsonObject, jsonTypeName } from './json-fields.js';
export { goQuote } from './quote.js';
export { atoi, parseBool, parseUintReason } from './strconv.js';
export { compareGoStrings, goAnyValue, goJson, goJsonText, goMap } from './encode.js';
export { formatRFC3339, parseRFC3339, ZERO_TIME } from './time.js';
export { parseGoUrl } from './url.js';
export type { GoUrl } from './url.js';
