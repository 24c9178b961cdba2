/**
 * `npm run openapi [-- --check]`: write docs/openapi.json from the route schemas, or
 * (with --check) fail when the committed file differs from what the code generates.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { allRoutes, openApiDocument } from './app.js';
import { VERSION } from '../version.js';

const unused = () => {
  throw new Error('not called while generating the document');
};
const routes = allRoutes({
  machines: { now: Date.now } as never,
  volumes: {} as never,
  startupScripts: {} as never,
  startupScriptRuns: {} as never,
  networks: {} as never,
  pools: {} as never,
  exec: {} as never,
  processes: {} as never,
  files: {} as never,
  fileWatches: {} as never,
  templates: {} as never,
  metrics: {} as never,
  compute: {} as never,
  paperspace: {} as never,
  accessors: {} as never,
  operations: {} as never,
  paperspaceBase: '/paperspace/v1',
  auth: {} as never,
  info: unused,
  isReady: () => false,
  hosts: {} as never,
});
const text = `${JSON.stringify(openApiDocument(routes, VERSION), null, 2)}\n`;
const target = new URL('../../../docs/openapi.json', import.meta.url);
if (process.argv.includes('--check')) {
  const committed = await readFile(target, 'utf8').catch(() => '');
  if (committed !== text) {
    process.stderr.write('docs/openapi.json is out of date: run `npm run build && npm run openapi` and commit it.\n');
    process.exit(1);
  }
  process.stdout.write('docs/openapi.json matches the code.\n');
} else {
  await writeFile(target, text);
  process.stdout.write('wrote docs/openapi.json\n');
}
