/**
 * Histories as JSON files, byte for byte in the format `temporal workflow show --output json`
 * writes (proto3 JSON, two-space indent, map keys sorted as Go's protojson sorts them), so a
 * file recorded here and one saved with the CLI are interchangeable and diff cleanly.
 */
import {
  historyFromJSON,
  historyToJSON,
  type History,
} from '@temporalio/common/lib/proto-utils.js';
import proto from '@temporalio/proto';
import { patchProtobufRoot } from '@temporalio/proto/lib/patch-protobuf-root.js';
import type { Type } from 'protobufjs';

export type { History };

const root = patchProtobufRoot(proto) as unknown as { lookupType(name: string): Type };
const historyType = root.lookupType('temporal.api.history.v1.History');

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

function isObject(value: Json | undefined): value is { [key: string]: Json } {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * protobufjs writes map entries in insertion order; Go sorts them. Walks the message with its
 * type to sort every map (payload metadata, memo, headers, search attributes) at any depth.
 */
function sortMaps(type: Type, message: Json): Json {
  // Well-known types (Timestamp, Duration) are scalars in JSON; Struct-like ones have no maps.
  if (!isObject(message) || type.fullName.startsWith('.google.protobuf.')) return message;
  for (const field of type.fieldsArray) {
    const value = message[field.jsonName];
    if (value === undefined) continue;
    field.resolve();
    const valueType =
      field.resolvedType && 'fieldsArray' in field.resolvedType ? field.resolvedType : null;
    if (field.map && isObject(value)) {
      message[field.jsonName] = Object.fromEntries(
        Object.keys(value)
          .sort()
          .map((key) => [key, valueType ? sortMaps(valueType, value[key]!) : value[key]!]),
      );
    } else if (valueType && Array.isArray(value)) {
      message[field.jsonName] = value.map((item) => sortMaps(valueType, item));
    } else if (valueType) {
      message[field.jsonName] = sortMaps(valueType, value);
    }
  }
  return message;
}

/** The history as `temporal workflow show --output json` prints it. */
export function historyToCliJson(history: History): string {
  const json = JSON.parse(historyToJSON(history)) as Json;
  return `${JSON.stringify(sortMaps(historyType, json), null, 2)}\n`;
}

/** Reads a history saved by `temporal workflow show --output json` (or any proto3 JSON history). */
export function historyFromCliJson(text: string): History {
  return historyFromJSON(JSON.parse(text));
}
