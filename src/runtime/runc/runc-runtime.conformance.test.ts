/**
 * RuncRuntime against the runtime conformance suite: real runc (and CRIU when the host
 * has it) on a temporary data dir with an instance prefix of its own, so nothing it
 * makes can be mistaken for another server's; everything of that prefix must be gone at the end.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, realpath, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultSubnet, IpAllocator } from '../../domain/network.js';
import { buildBaseTemplate } from '../../templates/base-template.js';
import { leftovers } from '../../testing/host-leftovers.js';
import { runtimeConformance } from '../runtime.conformance.js';
import { RuncRuntime } from './runc-runtime.js';

runtimeConformance('runc (temp data dir)', async () => {
  const dataDir = await realpath(await mkdtemp(join(tmpdir(), 'hangar-conformance-')));
  const hex = randomBytes(4).toString('hex');
  const instancePrefix = `hangar-${hex}`;
  const templatesDir = join(dataDir, 'templates');
  const template = await buildBaseTemplate({ templatesDir, busyboxPath: '/bin/busybox' });
  const subnet = defaultSubnet(hex);
  const ips = new IpAllocator(subnet);
  const runtime = new RuncRuntime({
    runcPath: 'runc',
    criuPath: 'criu',
    machinesDir: join(dataDir, 'machines'),
    snapshotsDir: join(dataDir, 'snapshots'),
    instancePrefix,
    stateDir: `/run/${instancePrefix}`,
    pidsLimit: 128,
    subnet,
  });
  return {
    runtime,
    snapshots: runtime,
    template: { rootfs: join(templatesDir, 'base', 'rootfs'), init: template.init, env: template.env, cwd: template.cwd },
    allocateIp: (id) => {
      const ip = ips.allocate(id);
      if (ip === null) throw new Error('the test subnet is full');
      return ip;
    },
    leftovers: () => leftovers(dataDir, instancePrefix),
    cleanup: async () => {
      await rm(dataDir, { recursive: true, force: true });
      const left = await leftovers(dataDir, instancePrefix);
      if (left.length) throw new Error(`the conformance run left resources on the host: ${left.join('; ')}`);
    },
  };
});
