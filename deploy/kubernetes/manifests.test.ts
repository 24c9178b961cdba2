/**
 * The Kubernetes manifests: the committed hangar.yaml is what manifests.ts renders; every
 * object passes the Kubernetes API's schema (kubernetes-models' validators, generated from
 * the API's OpenAPI document); every container's environment is one the server boots
 * with; and the pieces fit (selectors, ports, the shared snapshots volume, privilege).
 * kubectl's client dry run cannot run here: it asks an API server for discovery first.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DaemonSet, Deployment } from 'kubernetes-models/apps/v1';
import { Namespace, PersistentVolumeClaim, Service } from 'kubernetes-models/v1';
import type { Container, EnvVar } from 'kubernetes-types/core/v1.js';
import { parseAllDocuments } from 'yaml';
import { roleEnv, roleOf } from '../../src/role.js';
import { loadSettings, SETTING_NAMES, SettingsError } from '../../src/settings.js';
import { API_UID, DATABASE_SECRET, manifests, PORT, type KubeObject } from './manifests.js';
import { SOURCE_DIR } from './render.js';
import { renderYaml } from './yaml.js';

type Any = Record<string, any>;

const VALIDATORS: Record<string, new (o: Any) => { validate(): void }> = {
  'v1/Namespace': Namespace,
  'v1/PersistentVolumeClaim': PersistentVolumeClaim,
  'v1/Service': Service,
  'apps/v1/Deployment': Deployment,
  'apps/v1/DaemonSet': DaemonSet,
};

/** What the kubelet gives a container: its fields and secrets resolved, then `$(VAR)` references expanded in order. */
function resolveEnv(env: EnvVar[], dataDir: string): Record<string, string> {
  const fields: Record<string, string> = { 'metadata.name': 'hangar-api-7d9f8c6b5-x2x9z', 'status.podIP': '10.244.1.7', 'spec.nodeName': 'node-1.cluster.internal', 'status.hostIP': '192.0.2.10' };
  const secrets: Record<string, string | undefined> = { url: 'postgresql://hangar@db.internal/hangar' };
  const out: Record<string, string> = {};
  for (const e of env) {
    let value: string | undefined;
    if (e.value !== undefined) value = e.value.replace(/\$\(([A-Z_]+)\)/g, (whole, name: string) => out[name] ?? whole);
    else if (e.valueFrom?.fieldRef) value = fields[e.valueFrom.fieldRef.fieldPath];
    else if (e.valueFrom?.secretKeyRef) {
      assert.equal(e.valueFrom.secretKeyRef.name, DATABASE_SECRET);
      value = secrets[e.valueFrom.secretKeyRef.key];
      if (value === undefined) assert.equal(e.valueFrom.secretKeyRef.optional, true, `${e.name}: a required key the Secret does not document`);
    }
    if (value !== undefined) out[e.name] = value;
  }
  // The data dir is the container's own; here the check must not write to the machine's /var/lib.
  return { ...out, HANGAR_DATA_DIR: dataDir };
}

describe('Kubernetes manifests', () => {
  let objects: Any[];
  let dataDir: string;
  before(async () => {
    const text = await readFile(join(SOURCE_DIR, 'hangar.yaml'), 'utf8');
    assert.equal(text, renderYaml(manifests()), 'deploy/kubernetes/hangar.yaml is stale: run npm run k8s:render');
    objects = parseAllDocuments(text).map((d) => d.toJS() as Any);
    dataDir = await mkdtemp(join(tmpdir(), 'hangar-k8s-'));
  });
  after(async () => {
    await rm(dataDir, { recursive: true, force: true });
  });

  const find = (kind: string, name: string): Any => {
    const o = objects.find((x) => x.kind === kind && x.metadata.name === name);
    assert.ok(o, `no ${kind} ${name}`);
    return o;
  };
  const containerOf = (o: Any): Container => o.spec.template.spec.containers[0];

  it('every object passes the Kubernetes API schema, and a broken one does not', () => {
    assert.deepEqual(objects.map((o) => `${o.kind}/${o.metadata.name}`), ['Namespace/hangar', 'PersistentVolumeClaim/hangar-snapshots', 'Deployment/hangar-api', 'Service/hangar', 'DaemonSet/hangar-host']);
    for (const o of objects) {
      const Model = VALIDATORS[`${o.apiVersion}/${o.kind}`];
      assert.ok(Model, `${o.apiVersion} ${o.kind} has no validator here`);
      new Model(o).validate();
    }
    const broken = structuredClone(find('Deployment', 'hangar-api'));
    broken.spec.template.spec.containers[0].ports[0].containerPort = 'eighty';
    assert.throws(() => new Deployment(broken).validate(), /containerPort must be integer/);
  });

  it('every container boots: its variables are settings, and their values pass them', () => {
    for (const o of objects.filter((x) => x.kind === 'Deployment' || x.kind === 'DaemonSet')) {
      const c = containerOf(o);
      for (const e of c.env ?? []) {
        if (e.name.startsWith('HANGAR_')) assert.ok(SETTING_NAMES.includes(e.name), `${o.metadata.name}: ${e.name} is no setting`);
      }
      try {
        const s = loadSettings(roleEnv(roleOf(c.command?.[2]), resolveEnv(c.env ?? [], dataDir)));
        assert.equal(s.port, PORT);
      } catch (err) {
        if (err instanceof SettingsError) assert.fail(`${o.metadata.name}: ${err.message}`);
        throw err;
      }
    }
    // Each runs in its fleet role (src/role.ts), which checks the environment and fixes what the role says.
    const settingsOf = (c: Container) => loadSettings(roleEnv(roleOf(c.command?.[2]), resolveEnv(c.env ?? [], dataDir)));
    assert.deepEqual(containerOf(find('Deployment', 'hangar-api')).command, ['node', 'dist/src/main.js', 'api']);
    assert.deepEqual(containerOf(find('DaemonSet', 'hangar-host')).command, ['node', 'dist/src/main.js', 'agent']);
    const api = settingsOf(containerOf(find('Deployment', 'hangar-api')));
    assert.equal(api.fleet.capacityMachines, 0);
    assert.equal(api.fleet.advertiseUrl, `http://10.244.1.7:${PORT}`);
    const host = settingsOf(containerOf(find('DaemonSet', 'hangar-host')));
    assert.equal(host.fleet.hostId, 'node-1.cluster.internal', 'a host is named by its node');
    assert.equal(host.fleet.advertiseUrl, `http://192.0.2.10:${PORT}`);
    assert.ok(host.fleet.capacityMachines > 0);
    assert.equal(host.databaseUrl, api.databaseUrl);
  });

  it('the pieces fit: selectors, the service, privilege, and one snapshots volume for every host', () => {
    const api = find('Deployment', 'hangar-api');
    const hosts = find('DaemonSet', 'hangar-host');
    for (const o of [api, hosts]) {
      assert.deepEqual(o.spec.selector.matchLabels, o.spec.template.metadata.labels);
      assert.equal(o.metadata.namespace, 'hangar');
      assert.equal(containerOf(o).readinessProbe?.httpGet?.path, '/healthz');
      assert.deepEqual(containerOf(o).ports, [{ name: 'http', containerPort: PORT }]);
    }
    const service = find('Service', 'hangar');
    assert.deepEqual(service.spec.selector, api.spec.template.metadata.labels, 'the service reaches the API servers only');
    assert.equal(service.spec.ports[0].targetPort, 'http');
    // API servers: no privilege at all (the fleet test runs them so, as this uid).
    const apiPod = api.spec.template.spec;
    assert.equal(apiPod.securityContext.runAsUser, API_UID);
    assert.equal(apiPod.securityContext.runAsNonRoot, true);
    assert.deepEqual(containerOf(api).securityContext, { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } });
    assert.equal(apiPod.volumes.some((v: Any) => v.hostPath), false, 'an API server touches nothing of the node');
    // Hosts: privileged on the node's network, with the node's /run, cgroups and devices, and the shared snapshots.
    const hostPod = hosts.spec.template.spec;
    assert.equal(containerOf(hosts).securityContext?.privileged, true);
    assert.equal(hostPod.hostNetwork, true);
    const claim = find('PersistentVolumeClaim', 'hangar-snapshots');
    assert.deepEqual(claim.spec.accessModes, ['ReadWriteMany']);
    const snapshotsVolume = hostPod.volumes.find((v: Any) => v.persistentVolumeClaim);
    assert.equal(snapshotsVolume.persistentVolumeClaim.claimName, claim.metadata.name);
    const mounts = new Map(containerOf(hosts).volumeMounts!.map((m) => [m.name, m.mountPath]));
    assert.equal(mounts.get(snapshotsVolume.name), containerOf(hosts).env!.find((e) => e.name === 'HANGAR_SNAPSHOTS_DIR')?.value);
    for (const path of ['/run', '/sys/fs/cgroup', '/dev']) assert.ok([...mounts.values()].includes(path), `hosts need the node's ${path}`);
    const dataDir = containerOf(hosts).env!.find((e) => e.name === 'HANGAR_DATA_DIR')!.value!;
    const dataMount = containerOf(hosts).volumeMounts!.find((m) => dataDir.startsWith(m.mountPath));
    assert.equal(dataMount?.mountPropagation, 'Bidirectional', 'machine disks mounted by a host must outlive its pod');
  });

  it('options change what they name', () => {
    const objs: KubeObject[] = manifests({ namespace: 'sandbox', image: 'registry.internal/hangar:1.2.3', apiReplicas: 5 });
    const api = objs.find((o) => o.kind === 'Deployment') as Any;
    assert.equal(api.metadata.namespace, 'sandbox');
    assert.equal(api.spec.replicas, 5);
    assert.equal(containerOf(api).image, 'registry.internal/hangar:1.2.3');
    assert.ok(objs.every((o) => o.kind === 'Namespace' || o.metadata?.namespace === 'sandbox'));
  });
});
