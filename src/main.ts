import { startServer } from './server.js';
import { loadSettings, SettingsError } from './settings.js';

/** `npm start`: run the server in the foreground until SIGINT/SIGTERM. */
async function main(): Promise<void> {
  const settings = loadSettings();
  const server = await startServer(settings);
  const lines = [
    `Hangar ${server.settings.instancePrefix} listening on ${server.url}`,
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
    server.app.log.info({ signal }, 'stopping; machines keep running and are re-adopted at the next start');
    server.close().then(
      () => process.exit(0),
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
