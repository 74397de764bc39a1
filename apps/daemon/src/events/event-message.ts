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

/** The JSON moby writes: Go's field order, attribute keys sorted (Go sorts map keys). */
export function encodeEvent(message: EventMessage): string {
  const attributes = Object.fromEntries(Object.entries(message.Actor.Attributes).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  const head = JSON.stringify({
    Type: message.Type,
    Action: message.Action,
    Actor: { ID: message.Actor.ID, Attributes: attributes },
    scope: message.scope,
    time: message.time,
  });
  return `${head.slice(0, -1)},"timeNano":${message.timeNano.toString()}}`;
}
