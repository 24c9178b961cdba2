import { stringify } from 'yaml';
import type { KubeObject } from './manifests.js';

const HEADER = [
  '# Hangar on Kubernetes: written by `npm run k8s:render` from deploy/kubernetes/manifests.ts; edit that, not this.',
  '# Before applying: create the Secret hangar-database (key url: a PostgreSQL URL; bootstrap-key: optional),',
  '# set the image to one you built, and read docs/kubernetes.md.',
].join('\n');

/** The objects as one multi-document YAML file. */
export function renderYaml(objects: readonly KubeObject[]): string {
  return `${HEADER}\n${objects.map((o) => `---\n${stringify(o, { lineWidth: 0 })}`).join('')}`;
}
