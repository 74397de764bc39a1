import { goJsonText, goMap } from '@berth/gocompat';

/** One event of `GET /events` (moby's `events.Message`, without the legacy container/image fields). */
export interface EventMessage {
  readonly Type: string;
  readonly Action: string;
  readonly Actor: EventActor;
  readonly scope: string;
  /** Unix seconds. */
  readonly time: number;
  /** Unix nanoseconds; beyond 2^53, hence a bigint. */
  readonly timeNano: bigint;
}

export interface EventActor {
  readonly ID: string;
  readonly Attributes: Readonly<Record<string, string>>;
}

/** The JSON moby writes: Go's field order, attribute keys in Go's order (it sorts map keys). */
export function encodeEvent(message: EventMessage): string {
  const head = goJsonText({
    Type: message.Type,
    Action: message.Action,
    Actor: { ID: message.Actor.ID, Attributes: goMap(message.Actor.Attributes) },
    scope: message.scope,
    time: message.time,
  });
  // Unix nanoseconds exceed 2^53: written from the bigint, digit for digit.
  return `${head.slice(0, -1)},"timeNano":${message.timeNano.toString()}}`;
}
