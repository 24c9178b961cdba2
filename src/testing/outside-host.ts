/**
 * A host outside the machines' network for tests of outbound traffic: a network namespace
 * the test makes (no packet leaves the host), with an HTTP server on two addresses.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run, runWithInput } from '../runtime/runc/command.js';
import { waitFor } from './harness.js';

/** A host outside the machines' network, in a namespace of its own: two addresses, an HTTP server on each. */
export interface Outside {
  /** On the link to the host. */
  near: string;
  /** Behind it (routed through `near`). */
  far: string;
  close(): Promise<void>;
}

/** Make the outside host (its namespace, link, addresses and server); `close` removes all of it. */
export async function makeOutside(): Promise<Outside> {
  const r = randomInt(0, 256);
  const tag = randomInt(0, 36 ** 6).toString(36).padStart(6, '0');
  const ns = `hgtest-out-${tag}`;
  const veth = `hgto${tag}`;
  const near = `198.18.${r}.2`;
  const far = `198.19.${r}.1`;
  await runWithInput('ip', ['-batch', '-'], [
    `netns add ${ns}`,
    `link add ${veth} type veth peer name eth0 netns ${ns}`,
    `addr add 198.18.${r}.1/30 dev ${veth}`,
    `link set ${veth} up`,
  ].join('\n') + '\n');
  await runWithInput('ip', ['-n', ns, '-batch', '-'], [
    `addr add ${near}/30 dev eth0`,
    'link set eth0 up',
    'link set lo up',
    `addr add ${far}/32 dev lo`,
  ].join('\n') + '\n');
  await run('ip', ['route', 'add', `${far}/32`, 'via', near]);
  const dir = await mkdtemp(join(tmpdir(), 'hangar-outside-'));
  await writeFile(join(dir, 'index.html'), 'outside\n');
  const httpd: ChildProcess = spawn('ip', ['netns', 'exec', ns, 'busybox', 'httpd', '-f', '-p', '80', '-h', dir], { stdio: 'ignore' });
  const close = async (): Promise<void> => {
    httpd.kill('SIGKILL');
    await run('ip', ['link', 'del', veth]).catch(() => undefined);
    await run('ip', ['netns', 'del', ns]).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await waitFor(async () => (await hostGet(`http://${far}/`)) === 'outside\n');
  } catch (err) {
    await close();
    throw err;
  }
  return { near, far, close };
}

/** Fetch from the host with a short timeout; the body, or null when it could not connect. */
export async function hostGet(url: string): Promise<string | null> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(3_000) });
    return await res.text();
  } catch {
    return null;
  }
}
