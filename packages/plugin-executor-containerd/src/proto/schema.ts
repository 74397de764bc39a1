import protobuf from 'protobufjs';

/*
 * The subset of containerd's API (1.6 wire format, still current in 1.7/2.x) that the executor uses,
 * written as protobufjs descriptors. Field numbers and types are facts of the wire format; message
 * and package names matter only where they travel on the wire (gRPC method paths and `Any` type
 * URLs). Fields the executor never reads or writes are left out: protobuf skips unknown fields.
 */

type Field = readonly [id: number, type: string, rule?: 'repeated' | 'map'];

function message(fields: Record<string, Field>, nested?: Record<string, protobuf.AnyNestedObject>): protobuf.IType {
  const out: protobuf.IType = { fields: {} };
  for (const [name, [id, type, rule]] of Object.entries(fields)) {
    out.fields[name] =
      rule === 'map'
        ? ({ keyType: 'string', type, id } as protobuf.IMapField)
        : rule === 'repeated'
          ? { rule, type, id }
          : { type, id };
  }
  if (nested !== undefined) out.nested = nested;
  return out;
}

const descriptor: protobuf.INamespace = {
  nested: {
    google: {
      nested: {
        protobuf: {
          nested: {
            Any: message({ typeUrl: [1, 'string'], value: [2, 'bytes'] }),
            Empty: message({}),
            Timestamp: message({ seconds: [1, 'int64'], nanos: [2, 'int32'] }),
          },
        },
      },
    },
    containerd: {
      nested: {
        v1: {
          nested: {
            types: {
              nested: {
                Status: { values: { UNKNOWN: 0, CREATED: 1, RUNNING: 2, STOPPED: 3, PAUSED: 4, PAUSING: 5 } },
                Process: message({
                  containerId: [1, 'string'],
                  id: [2, 'string'],
                  pid: [3, 'uint32'],
                  status: [4, 'Status'],
                  stdin: [5, 'string'],
                  stdout: [6, 'string'],
                  stderr: [7, 'string'],
                  terminal: [8, 'bool'],
                  exitStatus: [9, 'uint32'],
                  exitedAt: [10, 'google.protobuf.Timestamp'],
                }),
              },
            },
          },
        },
        events: {
          nested: {
            TaskExit: message({
              containerId: [1, 'string'],
              id: [2, 'string'],
              pid: [3, 'uint32'],
              exitStatus: [4, 'uint32'],
              exitedAt: [5, 'google.protobuf.Timestamp'],
            }),
          },
        },
        runc: {
          nested: {
            v1: {
              nested: {
                Options: message({
                  noPivotRoot: [1, 'bool'],
                  noNewKeyring: [2, 'bool'],
                  shimCgroup: [3, 'string'],
                  ioUid: [4, 'uint32'],
                  ioGid: [5, 'uint32'],
                  binaryName: [6, 'string'],
                  root: [7, 'string'],
                  systemdCgroup: [9, 'bool'],
                }),
              },
            },
          },
        },
        services: {
          nested: {
            containers: {
              nested: {
                v1: {
                  nested: {
                    Container: message(
                      {
                        id: [1, 'string'],
                        labels: [2, 'string', 'map'],
                        image: [3, 'string'],
                        runtime: [4, 'Runtime'],
                        spec: [5, 'google.protobuf.Any'],
                        snapshotter: [6, 'string'],
                        snapshotKey: [7, 'string'],
                        createdAt: [8, 'google.protobuf.Timestamp'],
                        updatedAt: [9, 'google.protobuf.Timestamp'],
                      },
                      { Runtime: message({ name: [1, 'string'], options: [2, 'google.protobuf.Any'] }) },
                    ),
                    GetContainerRequest: message({ id: [1, 'string'] }),
                    GetContainerResponse: message({ container: [1, 'Container'] }),
                    CreateContainerRequest: message({ container: [1, 'Container'] }),
                    CreateContainerResponse: message({ container: [1, 'Container'] }),
                    DeleteContainerRequest: message({ id: [1, 'string'] }),
                  },
                },
              },
            },
            tasks: {
              nested: {
                v1: {
                  nested: {
                    CreateTaskRequest: message({
                      containerId: [1, 'string'],
                      stdin: [4, 'string'],
                      stdout: [5, 'string'],
                      stderr: [6, 'string'],
                      terminal: [7, 'bool'],
                      options: [9, 'google.protobuf.Any'],
                    }),
                    CreateTaskResponse: message({ containerId: [1, 'string'], pid: [2, 'uint32'] }),
                    StartRequest: message({ containerId: [1, 'string'], execId: [2, 'string'] }),
                    StartResponse: message({ pid: [1, 'uint32'] }),
                    DeleteTaskRequest: message({ containerId: [1, 'string'] }),
                    DeleteResponse: message({
                      id: [1, 'string'],
                      pid: [2, 'uint32'],
                      exitStatus: [3, 'uint32'],
                      exitedAt: [4, 'google.protobuf.Timestamp'],
                    }),
                    GetRequest: message({ containerId: [1, 'string'], execId: [2, 'string'] }),
                    GetResponse: message({ process: [1, 'containerd.v1.types.Process'] }),
                    ListTasksRequest: message({ filter: [1, 'string'] }),
                    ListTasksResponse: message({ tasks: [1, 'containerd.v1.types.Process', 'repeated'] }),
                    KillRequest: message({
                      containerId: [1, 'string'],
                      execId: [2, 'string'],
                      signal: [3, 'uint32'],
                      all: [4, 'bool'],
                    }),
                    WaitRequest: message({ containerId: [1, 'string'], execId: [2, 'string'] }),
                    WaitResponse: message({ exitStatus: [1, 'uint32'], exitedAt: [2, 'google.protobuf.Timestamp'] }),
                  },
                },
              },
            },
            events: {
              nested: {
                v1: {
                  nested: {
                    SubscribeRequest: message({ filters: [1, 'string', 'repeated'] }),
                    Envelope: message({
                      timestamp: [1, 'google.protobuf.Timestamp'],
                      namespace: [2, 'string'],
                      topic: [3, 'string'],
                      event: [4, 'google.protobuf.Any'],
                    }),
                  },
                },
              },
            },
            version: {
              nested: {
                v1: {
                  nested: {
                    VersionResponse: message({ version: [1, 'string'], revision: [2, 'string'] }),
                  },
                },
              },
            },
          },
        },
      },
    },
  },
};

/** The resolved schema; built once, on first import. */
export const root: protobuf.Root = protobuf.Root.fromJSON(descriptor);
root.resolveAll();
