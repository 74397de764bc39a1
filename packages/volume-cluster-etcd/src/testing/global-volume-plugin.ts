import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** The plugin's script (plain JavaScript: it runs as its own process, as a real plugin does). */
export const GLOBAL_VOLUME_PLUGIN_SCRIPT = fileURLToPath(new URL('../../testing/global-volume-plugin.mjs', import.meta.url));

/**
 * A legacy (v1) volume plugin process answering `Scope: global`, whose volumes are the directories
 * of a shared directory: start one per host, each on that host's plugin socket directory and all on
 * the same shared directory, and the hosts share their volumes as on NFS.
 */
export class GlobalVolumePlugin {
  readonly #child: ChildProcess;
  readonly #exited: Promise<void>;

  private constructor(child: ChildProcess) {
    this.#child = child;
    this.#exited = new Promise((resolve) => child.once('exit', () => resolve()));
  }

  /** Serves `drivers` (driver name → shared directory) on `<socketDir>/<driver>.sock`. */
  static async start(options: { socketDir: string; drivers: Readonly<Record<string, string>> }): Promise<GlobalVolumePlugin> {
    const specs = Object.entries(options.drivers).map(([driver, root]) => `${driver}=${root}`);
    const child = spawn(process.execPath, [GLOBAL_VOLUME_PLUGIN_SCRIPT, options.socketDir, ...specs], { stdio: ['ignore', 'pipe', 'pipe'] });
    const plugin = new GlobalVolumePlugin(child);
    let stderr = '';
    child.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
    await new Promise<void>((resolve, reject) => {
      child.stdout?.once('data', () => resolve());
      child.once('exit', (code) => reject(new Error(`global volume plugin exited (${code}): ${stderr}`)));
    });
    return plugin;
  }

  get pid(): number {
    return this.#child.pid ?? -1;
  }

  async stop(): Promise<void> {
    if (this.#child.exitCode === null && this.#child.signalCode === null) this.#child.kill('SIGTERM');
    await this.#exited;
  }
}
