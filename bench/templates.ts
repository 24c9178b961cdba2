/**
 * Template rows of `npm run bench` (issue 10): build times (Debian with one package, an
 * OCI archive, a layer over `base`), and a service that answers right after create from
 * a `start_cmd` template, next to a cold create plus starting the service by hand, and
 * next to podman starting the same service. Also runnable alone:
 * `node dist/bench/templates.js` prints just these rows.
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { run } from '../src/runtime/runc/command.js';
import { boundedLoop, type LoopOutcome } from './bounded-loop.js';
import { withInstance, type BenchInstance } from './hangar-instance.js';
import { cleanupPodman, importRootfs, IMAGE, LABEL, PODMAN_RUN_FLAGS, shortReason, timed } from './podman.js';

const execFileP = promisify(execFile);

export interface TemplatePlan {
  debianBuilds: number;
  archiveBuilds: number;
  layeredBuilds: number;
  serviceCreates: number;
  podmanServices: number;
  budgetMs: number;
}

export const DEFAULT_TEMPLATE_PLAN: TemplatePlan = { debianBuilds: 1, archiveBuilds: 5, layeredBuilds: 5, serviceCreates: 20, podmanServices: 10, budgetMs: 120_000 };

/** What the template rows measured, in milliseconds. */
export interface TemplateSamples {
  /** POST /v1/templates until ready: Debian 13 (variant apt) with `hello`, from the mirror apt uses. */
  debianBuildMs: number[];
  /** Upload of a small OCI archive, then its build until ready. */
  archiveBuildMs: number[];
  /** A template over `base` with one `run` step, until ready. */
  layeredBuildMs: number[];
  /** Create from a start_cmd template (busybox httpd) until an exec's wget gets the page. */
  serviceCreateMs: number[];
  /** Create from the same layers without start_cmd, start httpd with exec, until wget gets the page. */
  coldServiceMs: number[];
  /** Resume of a paused machine of the same template until its service answers: what a start_cmd create should match. */
  resumeServedMs: number[];
  /** `podman run -d` of the base rootfs running httpd, until `podman exec wget` gets the page. */
  podman: { available: true; serviceMs: number[] } | { available: false; reason: string };
  loops: Record<string, LoopOutcome>;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function buildAndWait(inst: BenchInstance, body: Record<string, unknown>): Promise<void> {
  const start = await inst.client.expect<{ id: string }>(202, 'POST', '/v1/templates', body);
  for (;;) {
    const b = await inst.client.expect<{ status: string; error: unknown }>(200, 'GET', `/v1/templates/${String(body.name)}/builds/${start.body.id}`);
    if (b.body.status === 'ready') return;
    if (b.body.status === 'error') throw new Error(`template build ${String(body.name)} failed: ${JSON.stringify(b.body.error)}`);
    await sleep(20);
  }
}

/** Poll an exec until the page answers; returns when it did. */
async function untilServed(inst: BenchInstance, id: string): Promise<void> {
  for (let i = 0; i < 2_000; i++) {
    const r = await inst.client.expect<{ exit_code: number }>(200, 'POST', `/v1/machines/${id}/exec`, { cmd: 'wget -q -O- http://127.0.0.1:8080/ >/dev/null' });
    if (r.body.exit_code === 0) return;
  }
  throw new Error(`machine ${id}: the service never answered`);
}

/** A small OCI archive (busybox and a file) made with umoci, as bytes. */
async function ociArchive(work: string, n: number): Promise<Buffer> {
  const layout = join(work, `layout-${n}`);
  await execFileP('umoci', ['init', '--layout', layout]);
  await execFileP('umoci', ['new', '--image', `${layout}:img`]);
  const bundle = join(work, `bundle-${n}`);
  await execFileP('umoci', ['unpack', '--image', `${layout}:img`, bundle]);
  await mkdir(join(bundle, 'rootfs', 'bin'), { recursive: true });
  await execFileP('cp', ['/bin/busybox', join(bundle, 'rootfs', 'bin', 'busybox')]);
  await writeFile(join(bundle, 'rootfs', 'marker'), `archive ${n}\n`);
  await execFileP('umoci', ['repack', '--image', `${layout}:img`, bundle]);
  const tar = join(work, `image-${n}.tar`);
  await execFileP('tar', ['-C', layout, '-cf', tar, '.']);
  return readFile(tar);
}

async function upload(inst: BenchInstance, bytes: Buffer): Promise<string> {
  const res = await fetch(`${inst.server.url}/v1/uploads`, { method: 'POST', headers: { authorization: `Bearer ${inst.apiKey}` }, body: new Uint8Array(bytes) });
  if (res.status !== 201) throw new Error(`upload: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { upload_id: string }).upload_id;
}

async function podmanService(rootfs: string, plan: TemplatePlan, signal: AbortSignal, loops: Record<string, LoopOutcome>): Promise<TemplateSamples['podman']> {
  try {
    await run('podman', ['--version']);
    if ((await run('podman', ['image', 'exists', IMAGE]).then(() => true, () => false)) === false) await importRootfs(rootfs);
    const serviceMs: number[] = [];
    loops.podman = await boundedLoop({ count: plan.podmanServices, budgetMs: plan.budgetMs, signal }, async () => {
      const started = await timed(async () => {
        const id = (await run('podman', ['run', '-d', '--label', LABEL, ...PODMAN_RUN_FLAGS, IMAGE, 'httpd', '-f', '-p', '8080', '-h', '/etc'])).trim();
        for (let i = 0; ; i++) {
          const ok = await run('podman', ['exec', id, 'wget', '-q', '-O-', 'http://127.0.0.1:8080/hostname']).then(() => true, () => false);
          if (ok) return id;
          if (i > 500) throw new Error('podman: the service never answered');
        }
      });
      serviceMs.push(started.ms);
      await run('podman', ['rm', '-f', '-t', '0', started.value]);
    });
    return { available: true, serviceMs };
  } catch (err) {
    return { available: false, reason: shortReason(err) };
  } finally {
    await cleanupPodman().catch(() => undefined);
  }
}

/** Measure the template rows on one fresh instance. */
export async function measureTemplates(inst: BenchInstance, plan: TemplatePlan, signal: AbortSignal): Promise<TemplateSamples> {
  const loops: Record<string, LoopOutcome> = {};
  const s: TemplateSamples = { debianBuildMs: [], archiveBuildMs: [], layeredBuildMs: [], serviceCreateMs: [], coldServiceMs: [], resumeServedMs: [], podman: { available: false, reason: 'not run' }, loops };
  const bounds = (count: number) => ({ count, budgetMs: plan.budgetMs, signal });
  loops.debian = await boundedLoop({ ...bounds(plan.debianBuilds), budgetMs: 900_000 }, async (i) => {
    s.debianBuildMs.push((await timed(() => buildAndWait(inst, { name: `deb-${i}`, source: { debian: { suite: 'trixie', packages: ['hello'] } } }))).ms);
  });
  const work = await mkdtemp(join(tmpdir(), 'hangar-bench-oci-'));
  try {
    loops.archive = await boundedLoop(bounds(plan.archiveBuilds), async (i) => {
      const bytes = await ociArchive(work, i);
      s.archiveBuildMs.push((await timed(async () => buildAndWait(inst, { name: `oci-${i}`, source: { image: { upload_id: await upload(inst, bytes) } } }))).ms);
    });
  } finally {
    await rm(work, { recursive: true, force: true });
  }
  loops.layered = await boundedLoop(bounds(plan.layeredBuilds), async (i) => {
    s.layeredBuildMs.push((await timed(() => buildAndWait(inst, { name: `layer-${i}`, source: { template: 'base' }, steps: [{ run: `echo ${i} > /etc/layer` }] }))).ms);
  });
  const www = { run: 'mkdir -p /www && echo up > /www/index.html' };
  await buildAndWait(inst, { name: 'svc', source: { template: 'base' }, steps: [www], start_cmd: 'exec httpd -f -p 8080 -h /www', ready_cmd: 'wget -q -O- http://127.0.0.1:8080/' });
  await buildAndWait(inst, { name: 'svc-cold', source: { template: 'base' }, steps: [www] });
  const createServed = async (template: string, start: boolean): Promise<number> => {
    const t = await timed(async () => {
      const m = await inst.client.expect<{ id: string }>(201, 'POST', '/v1/machines', { template });
      if (start) await inst.client.expect(200, 'POST', `/v1/machines/${m.body.id}/exec`, { cmd: 'httpd -p 8080 -h /www' });
      await untilServed(inst, m.body.id);
      return m.body.id;
    });
    await inst.client.expect(200, 'DELETE', `/v1/machines/${t.value}`);
    return t.ms;
  };
  loops.service = await boundedLoop(bounds(plan.serviceCreates), async () => void s.serviceCreateMs.push(await createServed('svc', false)));
  loops.cold = await boundedLoop(bounds(plan.serviceCreates), async () => void s.coldServiceMs.push(await createServed('svc-cold', true)));
  const held = await inst.client.expect<{ id: string }>(201, 'POST', '/v1/machines', { template: 'svc' });
  loops.resume = await boundedLoop(bounds(Math.min(10, plan.serviceCreates)), async () => {
    await inst.client.expect(200, 'POST', `/v1/machines/${held.body.id}/pause`);
    const t = await timed(async () => {
      await inst.client.expect(200, 'POST', `/v1/machines/${held.body.id}/resume`);
      await untilServed(inst, held.body.id);
    });
    s.resumeServedMs.push(t.ms);
  });
  await inst.client.expect(200, 'DELETE', `/v1/machines/${held.body.id}`);
  s.podman = await podmanService(join(inst.server.settings.templatesDir, 'base', 'rootfs'), plan, signal, loops);
  return s;
}

const p50 = (xs: readonly number[]): number => {
  const v = [...xs].sort((a, b) => a - b);
  return v.length ? v[Math.floor((v.length - 1) / 2)]! : Number.NaN;
};
const ms = (x: number): string => (Number.isNaN(x) ? '–' : x >= 1000 ? `${(x / 1000).toFixed(1)} s` : `${x.toFixed(0)} ms`);

/** The rows as a markdown table. */
export function templateTable(s: TemplateSamples): string {
  const svc = p50(s.serviceCreateMs);
  const cold = p50(s.coldServiceMs);
  const pod = s.podman.available ? p50(s.podman.serviceMs) : Number.NaN;
  const rows = [
    ['template build: Debian 13 + `hello` (mmdebstrap, mirror-bound)', `${s.debianBuildMs.length}`, ms(p50(s.debianBuildMs))],
    ['template build: OCI archive (upload + skopeo + umoci)', `${s.archiveBuildMs.length}`, ms(p50(s.archiveBuildMs))],
    ['template build: `base` + one `run` step', `${s.layeredBuildMs.length}`, ms(p50(s.layeredBuildMs))],
    ['create from a `start_cmd` template until its service answers', `${s.serviceCreateMs.length}`, ms(svc)],
    ['resume of a paused machine of it until its service answers', `${s.resumeServedMs.length}`, ms(p50(s.resumeServedMs))],
    ['cold create + start the service + until it answers', `${s.coldServiceMs.length}`, `${ms(cold)} (${(cold / svc).toFixed(1)}× the start_cmd create)`],
    ['podman run -d + until the service answers', s.podman.available ? `${s.podman.serviceMs.length}` : '0', s.podman.available ? `${ms(pod)} (${(pod / svc).toFixed(1)}×)` : `unavailable: ${s.podman.reason}`],
  ];
  return ['| what | n | p50 |', '| --- | --- | --- |', ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n') + '\n';
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const leftovers: string[] = [];
  const controller = new AbortController();
  process.on('SIGINT', () => controller.abort());
  let samples: TemplateSamples | undefined;
  await withInstance('templates', leftovers, async (inst) => {
    samples = await measureTemplates(inst, DEFAULT_TEMPLATE_PLAN, controller.signal);
  });
  if (samples) process.stdout.write(templateTable(samples));
  if (leftovers.length) process.stderr.write(`LEFT ON THE HOST: ${leftovers.join('; ')}\n`);
  process.exitCode = leftovers.length || !samples ? 1 : 0;
}
