/**
 * Write the Kubernetes manifests (manifests.ts, default options) to hangar.yaml beside
 * this file's source: `npm run k8s:render`. The test fails while the committed file differs.
 */
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { renderYaml } from './yaml.js';
import { manifests } from './manifests.js';

/** deploy/kubernetes in the repository, from dist/deploy/kubernetes. */
export const SOURCE_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'deploy', 'kubernetes');

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const path = join(SOURCE_DIR, 'hangar.yaml');
  writeFileSync(path, renderYaml(manifests()));
  console.log(`wrote ${path}`);
}
