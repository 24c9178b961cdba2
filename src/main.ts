import { roleEnv, roleOf } from './role.js';
import { closeWithin, startServer } from './server.js';
import { loadSettings, SettingsError } from './settings.js';

/**
 * `npm start` (`node dist/src/main.js [serve|agent|api]`, also `hangar serve|agent|api`): run
 * the server in the foreground until SIGINT/SIGTERM, as the role says (role.ts).
 */
async function main(): Promise<void> {
  const role = roleOf(process.argv[2]);
  const settings = loadSettings(roleEnv(role, process.env));
  const server = await startServer(settings);
  const lines = [
    `Hangar ${server.settings.instancePrefix} (${role === 'serve' ? 'server' : role === 'agent' ? `host ${settings.fleet.hostId}` : `API server ${settings.fleet.hostId}`}) listening on ${server.url}`,
    `  data dir: ${settings.dataDir}`,
    `  API docs: ${server.url}/openapi.json`,
  ];
  if (server.generatedAdminKey) {
    lines.push(`  admin API key (shown once, also saved to ${settings.dataDir}/admin-key): ${server.generatedAdminKey}`);
  }
  process.stdout.write(`${lines.join('\n')}\n`);
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    server.app.log.info({ signal, inFlight: server.inFlight() }, 'stopping; machines keep running and are re-adopted at the next start');
    // In-flight work gets settings.stopTimeoutMs to finish; what is left is abandoned, said here,
    // and settled by the next start's reconciliation (a machine before or after its operation, or in error with why).
    closeWithin(server, settings.stopTimeoutMs).then(
      ({ finished, abandoned }) => {
        if (!finished) process.stderr.write(`hangar: stopped after ${settings.stopTimeoutMs} ms with ${abandoned.length} in flight, abandoned (the next start reconciles them): ${abandoned.join('; ')}\n`);
        process.exit(finished ? 0 : 1);
      },
      () => process.exit(1),
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof SettingsError ? err.message : err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
  process.exit(1);
});
