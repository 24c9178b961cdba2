/**
 * A RuncRuntime on a temporary data dir with an instance prefix of its own, as the
 * runtime conformance suite wants it; shared by the container (runc) and gvisor (runsc)
 * test files, so the two tiers run the one suite on identical instances.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, realpath, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Isolation } from '../../domain/machine.js';
import { defaultSubnet, IpAllocator } from '../../domain/network.js';
import { buildBaseTemplate } from '../../templates/base-template.js';
import { leftovers } from '../../testing/host-leftovers.js';
import type { RuntimeFixture } from '../runtime.conformance.js';
import { RuncRuntime } from './runc-runtime.js';

/** Which tier the fixture's machines get, and the cases that tier skips. */
export interface RuncFixtureOptions {
  isolation: Isolation;
  /** Cases skipped for lack of a feature, by title, with the reason. @default none */
  unsupported?: Readonly<Record<string, string>>;
  /** Container-tier machines in user namespaces of their own (the server's default). @default false */
  userNamespaces?: boolean;
}

/** A fresh instance: real runc (and runsc, CRIU when present), fails at cleanup if anything of its prefix is left. */
export async function runcFixture(o: RuncFixtureOptions): Promise<RuntimeFixture> {
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
    gvisor: { binary: 'runsc', stateDir: `/run/${instancePrefix}-gvisor`, platform: 'ptrace' },
    pidsLimit: 128,
    subnet,
    userNamespaces: o.userNamespaces ?? false,
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
    machineDefaults: { isolation: o.isolation },
    unsupported: o.unsupported,
  };
}
