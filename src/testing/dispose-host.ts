/**
 * `node dist/src/testing/dispose-host.js <data dir> <env as JSON>`: start a test server on a
 * host's data dir and dispose of it (every machine destroyed, nothing left, or exit 1 with what
 * was). Run under `nsenter --net=…` it cleans a host that ran in a network namespace of its own,
 * where its bridge, links and rules are.
 */
import { TestServer } from './harness.js';

const [dataDir, env] = process.argv.slice(2);
if (!dataDir || !env) {
  process.stderr.write('usage: dispose-host.js <data dir> <env as JSON>\n');
  process.exit(2);
}
TestServer.start({ dataDir, env: JSON.parse(env) as Record<string, string> })
  .then((server) => server.dispose())
  .then(
    () => process.exit(0),
    (err: unknown) => {
      process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(1);
    },
  );
