#!/usr/bin/env node
import { exportDockerMetadata } from '@berth/volume-service';
import { ConfigError, EXPORT_COMMAND, parseCommandLine, USAGE, type DaemonConfig } from './config.js';
import { DataRootLock } from './data-root-lock.js';
import { createDaemon, type Daemon } from './daemon.js';
import { createLogger, type Logger } from './logger.js';
import { BERTH_VERSION } from './version.js';

/** berthd: parse the configuration, start the daemon, stop it gracefully on SIGINT or SIGTERM. */
async function main(argv: readonly string[]): Promise<number> {
  let config: DaemonConfig;
  try {
    const command = parseCommandLine(argv);
    if (command.kind === 'help') {
      process.stdout.write(USAGE);
      return 0;
    }
    if (command.kind === 'version') {
      process.stdout.write(`berthd version ${BERTH_VERSION}\n`);
      return 0;
    }
    if (command.kind === 'export-docker-metadata') return await exportForDockerd(command.dataRoot);
    config = command.config;
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`${err.message}\n`);
    return 1;
  }

  const logger = createLogger({ level: config.logLevel, format: config.logFormat });
  keepRunningOnStrayErrors(logger);
  let daemon: Daemon;
  try {
    daemon = await createDaemon(config, { logger });
  } catch (err) {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
  for (const socket of daemon.sockets) process.stdout.write(`berthd listening on unix://${socket}\n`);
  process.stdout.write(`export DOCKER_HOST=unix://${daemon.sockets[0]}\n`);
  if (daemon.metricsUrl !== undefined) process.stdout.write(`berthd metrics on ${daemon.metricsUrl}\n`);
  logger.info('Daemon has completed initialization', { version: BERTH_VERSION, dataRoot: config.dataRoot });

  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  logger.info(`Processing signal '${signal}'`);
  // A second signal means "now": skip the graceful part.
  const force = (again: NodeJS.Signals): void => {
    logger.warn(`Forcing shutdown on signal '${again}'`);
    process.exit(128 + (again === 'SIGINT' ? 2 : 15));
  };
  process.once('SIGINT', force);
  process.once('SIGTERM', force);
  await daemon.close();
  logger.info('Daemon shutdown complete');
  return 0;
}

/** `berthd export-docker-metadata --data-root D`: writes dockerd's volumes/metadata.db. */
async function exportForDockerd(dataRoot: string): Promise<number> {
  let lock: DataRootLock | undefined;
  try {
    // The same lock a berthd holds: an export never runs beside a daemon on the data-root.
    lock = DataRootLock.acquire(dataRoot);
    const { file, exported, keptStore } = await exportDockerMetadata({ root: dataRoot });
    process.stdout.write(
      `Exported ${exported} volume${exported === 1 ? '' : 's'} to ${file}\n` +
        `berth's own store was kept as ${keptStore}; the next berthd on ${dataRoot} adopts ${file} again.\n`,
    );
    return 0;
  } catch (err) {
    process.stderr.write(`${EXPORT_COMMAND}: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  } finally {
    lock?.release();
  }
}

/** A failure outside any request must not take the API down with it. */
function keepRunningOnStrayErrors(logger: Logger): void {
  // When whoever reads our output goes away (a closed log pipe, `berthd | head`), writes fail with
  // EPIPE. Logging that failure would write again and fail again; the daemon must simply go on.
  for (const stream of [process.stdout, process.stderr]) stream.on('error', () => {});
  process.on('unhandledRejection', (reason) => logger.error('unhandled promise rejection', { error: reason }));
  process.on('uncaughtException', (err) => {
    if ((err as NodeJS.ErrnoException).code === 'EPIPE') return;
    logger.error('uncaught exception', { error: err, stack: err.stack });
  });
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
