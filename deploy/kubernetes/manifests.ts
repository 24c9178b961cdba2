/**
 * Hangar on Kubernetes: API servers as a Deployment (unprivileged, HANGAR_HOST_CAPACITY=0),
 * hosts as a privileged DaemonSet (one per node, on the node's network), PostgreSQL by
 * reference (a Secret holding its URL), paused machines' snapshots on one ReadWriteMany
 * volume every host mounts. Typed with kubernetes-types, so an unknown or misspelt field
 * fails the build; `render.ts` writes them to hangar.yaml, which is what a person applies.
 * docs/kubernetes.md says how, and what was and was not checked.
 */
import type { DaemonSet, Deployment } from 'kubernetes-types/apps/v1.js';
import type { Container, EnvVar, Namespace, PersistentVolumeClaim, Probe, Service } from 'kubernetes-types/core/v1.js';

/** What an installation chooses. */
export interface ManifestOptions {
  namespace: string;
  /** An image holding Node 20+, this repository built (`npm ci && npm run build`), and for hosts runc, CRIU, iproute2, iptables and busybox-static. */
  image: string;
  apiReplicas: number;
  /** The machine subnet of every host (each node's bridge is its own): a range the cluster's pods, services and nodes do not use. */
  machineSubnet: string;
  /** Size of the shared snapshots volume. */
  snapshotsStorage: string;
  /** Machines each host takes at most (HANGAR_HOST_CAPACITY). */
  hostCapacity: number;
}

export const DEFAULT_OPTIONS: ManifestOptions = {
  namespace: 'hangar',
  image: 'hangar:0.1.0',
  apiReplicas: 2,
  machineSubnet: '172.31.240.0/20',
  snapshotsStorage: '100Gi',
  hostCapacity: 500,
};

/** Every object, in the order `kubectl apply -f` creates them. */
export type KubeObject = Namespace | PersistentVolumeClaim | Deployment | DaemonSet | Service;

/** The port every Hangar server listens on. */
export const PORT = 8080;
/** The unprivileged user API servers run as. */
export const API_UID = 10001;
/** Mounted from the node on hosts: the data dir and the shared template directory (HANGAR_TEMPLATE_PATH's default) below it. */
const HANGAR_DIR = '/var/lib/hangar';
const DATA_DIR = `${HANGAR_DIR}/data`;
const SNAPSHOTS_DIR = '/var/lib/hangar-snapshots';
/** The Secret the operator creates: `url` (required) is HANGAR_DATABASE_URL, `bootstrap-key` (optional) HANGAR_BOOTSTRAP_KEY. */
export const DATABASE_SECRET = 'hangar-database';

const labels = (component: 'api' | 'host'): Record<string, string> => ({ 'app.kubernetes.io/name': 'hangar', 'app.kubernetes.io/component': component });

const literal = (name: string, value: string): EnvVar => ({ name, value });
const fromField = (name: string, fieldPath: string): EnvVar => ({ name, valueFrom: { fieldRef: { fieldPath } } });

/** What API servers and hosts share: the database, and where they listen. */
function commonEnv(): EnvVar[] {
  return [
    { name: 'HANGAR_DATABASE_URL', valueFrom: { secretKeyRef: { name: DATABASE_SECRET, key: 'url' } } },
    { name: 'HANGAR_BOOTSTRAP_KEY', valueFrom: { secretKeyRef: { name: DATABASE_SECRET, key: 'bootstrap-key', optional: true } } },
    literal('HANGAR_LISTEN', `0.0.0.0:${PORT}`),
    literal('HANGAR_DATA_DIR', DATA_DIR),
  ];
}

/** Ready once the server has reconciled its machines (`GET /healthz`). */
const readiness: Probe = { httpGet: { path: '/healthz', port: 'http' }, periodSeconds: 5, failureThreshold: 3 };

/** The server in its fleet role (src/role.ts): `api` runs no machine, `agent` is a host. */
function container(name: string, role: 'api' | 'agent', o: ManifestOptions, env: EnvVar[]): Container {
  return {
    name,
    image: o.image,
    workingDir: '/opt/hangar',
    command: ['node', 'dist/src/main.js', role],
    env,
    ports: [{ name: 'http', containerPort: PORT }],
    readinessProbe: readiness,
  };
}

/** The Kubernetes objects of one Hangar installation. */
export function manifests(options: Partial<ManifestOptions> = {}): KubeObject[] {
  const o = { ...DEFAULT_OPTIONS, ...options };
  const namespace: Namespace = { apiVersion: 'v1', kind: 'Namespace', metadata: { name: o.namespace } };

  const snapshots: PersistentVolumeClaim = {
    apiVersion: 'v1',
    kind: 'PersistentVolumeClaim',
    metadata: { name: 'hangar-snapshots', namespace: o.namespace, labels: labels('host') },
    // Every host mounts it: a paused machine of a lost or draining host resumes on another.
    spec: { accessModes: ['ReadWriteMany'], resources: { requests: { storage: o.snapshotsStorage } } },
  };

  const api: Deployment = {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'hangar-api', namespace: o.namespace, labels: labels('api') },
    spec: {
      replicas: o.apiReplicas,
      selector: { matchLabels: labels('api') },
      template: {
        metadata: { labels: labels('api') },
        spec: {
          automountServiceAccountToken: false,
          securityContext: { runAsNonRoot: true, runAsUser: API_UID, runAsGroup: API_UID, fsGroup: API_UID, seccompProfile: { type: 'RuntimeDefault' } },
          containers: [
            {
              // Runs no machine (its role fixes HANGAR_HOST_CAPACITY at 0): needs no runc, CRIU or privilege, and forwards each request to the host it concerns.
              ...container('api', 'api', o, [
                ...commonEnv(),
                fromField('HANGAR_HOST_ID', 'metadata.name'),
                fromField('POD_IP', 'status.podIP'),
                literal('HANGAR_ADVERTISE_URL', `http://$(POD_IP):${PORT}`),
              ]),
              securityContext: { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } },
              volumeMounts: [
                { name: 'data', mountPath: HANGAR_DIR },
                { name: 'tmp', mountPath: '/tmp' },
              ],
            },
          ],
          volumes: [
            { name: 'data', emptyDir: {} },
            { name: 'tmp', emptyDir: {} },
          ],
        },
      },
    },
  };

  const service: Service = {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'hangar', namespace: o.namespace, labels: labels('api') },
    spec: { selector: labels('api'), ports: [{ name: 'http', port: 80, targetPort: 'http' }] },
  };

  const hosts: DaemonSet = {
    apiVersion: 'apps/v1',
    kind: 'DaemonSet',
    metadata: { name: 'hangar-host', namespace: o.namespace, labels: labels('host') },
    spec: {
      selector: { matchLabels: labels('host') },
      updateStrategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 1 } },
      template: {
        metadata: { labels: labels('host') },
        spec: {
          automountServiceAccountToken: false,
          // The machines' bridge, veths and iptables rules are the node's; the API servers reach the host at the node's address.
          hostNetwork: true,
          dnsPolicy: 'ClusterFirstWithHostNet',
          // A stopping host records a clean stop; its machines keep running and are re-adopted by the next pod.
          terminationGracePeriodSeconds: 120,
          containers: [
            {
              ...container('host', 'agent', o, [
                ...commonEnv(),
                literal('HANGAR_HOST_CAPACITY', String(o.hostCapacity)),
                literal('HANGAR_MAX_MACHINES', String(o.hostCapacity)),
                // One host per node, named by it: its machines stay its own across pod restarts.
                fromField('HANGAR_HOST_ID', 'spec.nodeName'),
                fromField('NODE_IP', 'status.hostIP'),
                literal('HANGAR_ADVERTISE_URL', `http://$(NODE_IP):${PORT}`),
                literal('HANGAR_SNAPSHOTS_DIR', SNAPSHOTS_DIR),
                literal('HANGAR_SUBNET', o.machineSubnet),
              ]),
              // runc, CRIU, loop devices, mounts, network namespaces and iptables need the node's full privilege.
              securityContext: { privileged: true },
              volumeMounts: [
                // Disks, overlays and machine directories; mounts made here reach the node, so machines outlive the pod.
                { name: 'data', mountPath: HANGAR_DIR, mountPropagation: 'Bidirectional' },
                // runc's state (/run/<instance prefix>) and the machines' network namespaces (/run/netns).
                { name: 'run', mountPath: '/run', mountPropagation: 'Bidirectional' },
                { name: 'cgroup', mountPath: '/sys/fs/cgroup' },
                { name: 'dev', mountPath: '/dev' },
                { name: 'snapshots', mountPath: SNAPSHOTS_DIR },
              ],
            },
          ],
          volumes: [
            { name: 'data', hostPath: { path: HANGAR_DIR, type: 'DirectoryOrCreate' } },
            { name: 'run', hostPath: { path: '/run', type: 'Directory' } },
            { name: 'cgroup', hostPath: { path: '/sys/fs/cgroup', type: 'Directory' } },
            { name: 'dev', hostPath: { path: '/dev', type: 'Directory' } },
            { name: 'snapshots', persistentVolumeClaim: { claimName: 'hangar-snapshots' } },
          ],
        },
      },
    },
  };

  return [namespace, snapshots, api, service, hosts];
}
