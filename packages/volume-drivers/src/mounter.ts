import { BerthError } from '@berth/errdefs';
import { readMountInfo, type MountInfo, PROC_MOUNTINFO } from './mountinfo.js';
import { commandOutput, runCommand } from './run-command.js';

export interface MountRequest {
  device: string;
  target: string;
  /** File system type; `''` lets mount(8) detect it. */
  type: string;
  /** Comma-separated mount options; `''` for none. */
  options: string;
}

/**
 * How the local driver mounts and inspects mounts. The default runs mount(8) and umount(8) and
 * reads `/proc/self/mountinfo`; tests and unusual hosts can supply their own.
 */
export interface Mounter {
  /** Rejects with what mount said (password included; the caller masks it). */
  mount(request: MountRequest, options?: { signal?: AbortSignal | undefined }): Promise<void>;
  /** `recursive`: the sub-mounts below `target` too (`umount -R`), for what was mounted with `rbind`. */
  unmount(target: string, options?: { signal?: AbortSignal | undefined; recursive?: boolean | undefined }): Promise<void>;
  mounts(): Promise<MountInfo[]>;
}

export interface SystemMounterOptions {
  mountBinary?: string | undefined;
  umountBinary?: string | undefined;
  /** Deadline of one mount or umount call (default {@link DEFAULT_MOUNT_TIMEOUT_MS}). */
  timeoutMs?: number | undefined;
  mountInfoFile?: string | undefined;
}

/** moby gives a volume plugin 2 minutes to mount; a network file system gets as long here. */
export const DEFAULT_MOUNT_TIMEOUT_MS = 120_000;

export class SystemMounter implements Mounter {
  readonly #mount: string;
  readonly #umount: string;
  readonly #timeoutMs: number;
  readonly #mountInfoFile: string;

  constructor(options: SystemMounterOptions = {}) {
    this.#mount = options.mountBinary ?? '/bin/mount';
    this.#umount = options.umountBinary ?? '/bin/umount';
    this.#timeoutMs = options.timeoutMs ?? DEFAULT_MOUNT_TIMEOUT_MS;
    this.#mountInfoFile = options.mountInfoFile ?? PROC_MOUNTINFO;
  }

  async mount(request: MountRequest, options?: { signal?: AbortSignal | undefined }): Promise<void> {
    const args: string[] = [];
    if (request.type !== '') args.push('-t', request.type);
    if (request.options !== '') args.push('-o', request.options);
    // `--` keeps a device that starts with `-` from being read as an option.
    args.push('--', request.device, request.target);
    await this.#run(this.#mount, args, options?.signal);
  }

  async unmount(target: string, options?: { signal?: AbortSignal | undefined; recursive?: boolean | undefined }): Promise<void> {
    await this.#run(this.#umount, [...(options?.recursive === true ? ['-R'] : []), '--', target], options?.signal);
  }

  mounts(): Promise<MountInfo[]> {
    return readMountInfo(this.#mountInfoFile);
  }

  async #run(file: string, args: string[], signal: AbortSignal | undefined): Promise<void> {
    const result = await runCommand(file, args, { signal, timeoutMs: this.#timeoutMs });
    if (result.code !== 0) throw new BerthError('system', commandOutput(result));
  }
}
