import { hostname } from 'node:os';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, realpathSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { defaultSubnet, parseCidr, type Cidr } from './domain/network.js';
import { CONFIG_LIMITS } from './domain/machine.js';
import { DEFAULT_MACHINE_TYPES, type MachineType } from './domain/machine-type.js';
import { defaultBurst } from './domain/team.js';

/**
 * Every setting of the server, read once from the environment at start-up.
 * A bad value fails the boot with a message naming the variable.
 */
const EnvSchema = z.object({
  /** `host:port` to listen on. @default '127.0.0.1:8080' */
  HANGAR_LISTEN: z
    .string()
    .regex(/^(\[[0-9a-fA-F:]+\]|[^:\s]+):\d{1,5}$/, 'must be host:port, e.g. 127.0.0.1:8080')
    .default('127.0.0.1:8080'),
  /** All state of one server: database, templates, machine layers. @default './.data' */
  HANGAR_DATA_DIR: z.string().min(1).default('.data'),
  /**
   * The PostgreSQL database to keep state in, as a `postgres://` URL (`?host=/dir` for a
   * unix socket). Unset: the SQLite file `<data dir>/hangar.db`. @default unset
   */
  HANGAR_DATABASE_URL: z
    .string()
    .regex(/^postgres(ql)?:\/\/\S+$/, 'must be a postgres:// or postgresql:// URL, e.g. postgres://hangar@db.internal/hangar')
    .optional(),
  /**
   * How long a SQLite store call waits while another process holds the database file
   * locked before it fails with 503 STORE_BUSY (the server keeps answering meanwhile). @default 5000
   */
  HANGAR_SQLITE_BUSY_TIMEOUT_MS: z.coerce.number().int().min(0).max(600_000).default(5000),
  /**
   * How long a PostgreSQL store call waits for a lock another session holds, or for a free
   * pooled connection, before it fails with 503 STORE_BUSY. @default 5000
   */
  HANGAR_POSTGRES_BUSY_TIMEOUT_MS: z.coerce.number().int().min(1).max(600_000).default(5000),
  /** If set, an admin API key with exactly this value exists. */
  HANGAR_BOOTSTRAP_KEY: z.string().min(16, 'must be at least 16 characters').optional(),
  /** How long destroyed machines stay listable under state=destroyed. @default 86400000 (24 h) */
  HANGAR_RETENTION_MS: z.coerce.number().int().min(0).default(86_400_000),
  /** How often lifecycle deadlines are checked. @default 250 */
  HANGAR_SWEEP_INTERVAL_MS: z.coerce.number().int().min(10).max(1000).default(250),
  /** Maximum tasks (processes and threads) per machine. @default 512 */
  HANGAR_PIDS_LIMIT: z.coerce.number().int().min(16).max(65_536).default(512),
  /**
   * Requests a second each API key may send (a token bucket; admin keys are not limited).
   * 0 turns it off. @default 0
   */
  HANGAR_KEY_RATE_LIMIT: z.coerce.number().min(0).max(1_000_000).default(0),
  /** Requests a key may send at once before HANGAR_KEY_RATE_LIMIT applies. @default 2 × the limit, at least 1 */
  HANGAR_KEY_RATE_BURST: z.coerce.number().int().min(1).max(1_000_000).optional(),
  /** How long a SIGTERM/SIGINT stop waits for requests and operations in flight before it abandons them. @default 30000 */
  HANGAR_STOP_TIMEOUT_MS: z.coerce.number().int().min(100).max(3_600_000).default(30_000),
  /** Maximum machines holding resources on this host. @default 2000 */
  HANGAR_MAX_MACHINES: z.coerce.number().int().min(1).default(2000),
  /** The runc binary. @default 'runc' */
  HANGAR_RUNC: z.string().default('runc'),
  /** The criu binary, for memory snapshots. @default 'criu' */
  HANGAR_CRIU: z.string().default('criu'),
  /** The runsc binary (gVisor) of the gvisor isolation tier; empty: no such tier. @default 'runsc' */
  HANGAR_RUNSC: z.string().default('runsc'),
  /** gVisor's platform (how runsc intercepts system calls). @default 'ptrace' */
  HANGAR_GVISOR_PLATFORM: z.enum(['ptrace', 'kvm', 'systrap']).default('ptrace'),
  /**
   * `on`: each new container-tier machine runs in a user namespace of its own, its root
   * an unprivileged range of host ids (docs/security.md); `off`: its root is the host's root
   * (for a kernel without idmapped mounts). Machines made before keep theirs. @default 'on'
   */
  HANGAR_USER_NAMESPACES: z.enum(['on', 'off']).default('on'),
  /** A statically linked busybox for the base template. @default '/bin/busybox' */
  HANGAR_BUSYBOX: z.string().default('/bin/busybox'),
  /**
   * The machines' private IPv4 subnet, /16 to /28; the host takes its first address.
   * @default a /20 in 10.0.0.0/8 chosen by the data dir's hash
   */
  HANGAR_SUBNET: z
    .string()
    .optional()
    .superRefine((v, ctx) => {
      if (v === undefined) return;
      const parsed = parseCidr(v);
      if ('error' in parsed) ctx.addIssue({ code: 'custom', message: `${v} ${parsed.error}` });
      else if (parsed.cidr.prefix < 16 || parsed.cidr.prefix > 28) ctx.addIssue({ code: 'custom', message: 'prefix length must be 16 to 28' });
    }),
  /**
   * Shared, read-only template directories searched after `<data>/templates`, separated by
   * `:` (absolute paths; empty: none). `scripts/setup.sh` builds the `desktop` template into
   * the default once per host, because every data dir (each test server's too) shares it.
   * @default '/var/lib/hangar/templates'
   */
  HANGAR_TEMPLATE_PATH: z
    .string()
    .regex(/^(\/[^:]*(:\/[^:]*)*)?$/, 'must be absolute directories separated by ":", e.g. /var/lib/hangar/templates')
    .default('/var/lib/hangar/templates'),
  /** Base path of the Paperspace-style API. @default '/paperspace/v1' */
  HANGAR_PAPERSPACE_BASE: z
    .string()
    .regex(/^(\/[A-Za-z0-9._~-]+)+$/, 'must be a path such as /paperspace/v1 (no trailing slash)')
    .default('/paperspace/v1'),
  /**
   * The server's regions, comma-separated (e.g. `ny2,ca1,ams1`): a Paperspace-style create
   * may name any of them, and machines created without one are in the first. One host
   * serves every region it names. @default 'local'
   */
  HANGAR_REGIONS: z
    .string()
    .regex(/^[A-Za-z0-9._-]{1,64}(,[A-Za-z0-9._-]{1,64}){0,31}$/, 'must be 1-32 names of 1-64 letters, digits, dots, dashes or underscores, separated by commas')
    .refine((v) => new Set(v.split(',')).size === v.split(',').length, 'must not name a region twice')
    .optional(),
  /** The older form of HANGAR_REGIONS with one region; setting both is an error. */
  HANGAR_PAPERSPACE_REGION: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, 'must be 1-64 letters, digits, dots, dashes or underscores').optional(),
  /**
   * Machine types of the Paperspace-style API, as JSON: `[{"label":"C1","vcpus":1,"memory_mb":512}, ...]`.
   * @default C1 1/512, C2 1/1024, C3 2/2048, C4 2/4096, C5 4/8192 (vCPUs/MiB)
   */
  HANGAR_PAPERSPACE_MACHINE_TYPES: z.string().optional(),
  /** Disk sizes (GB, 1 GB = 1024 MiB) a Paperspace-style create may ask for, comma-separated. @default '1,2,5,10,25,50,100,250,500,1000' */
  HANGAR_PAPERSPACE_DISK_SIZES: z
    .string()
    .regex(/^\d+(,\d+)*$/, 'must be whole numbers of GB separated by commas')
    .default('1,2,5,10,25,50,100,250,500,1000'),
  /**
   * Host-based ingress: a request whose Host is `{port}-{machine id}.{this domain}` is
   * proxied to that port of the machine. Unset: host-based ingress is off.
   */
  HANGAR_INGRESS_DOMAIN: z
    .string()
    .regex(
      /^(?=.{1,200}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/,
      'must be a domain name such as machines.example.com (no scheme, port or trailing dot)',
    )
    .transform((v) => v.toLowerCase())
    .optional(),
  /** The built web console served at /console. @default dist/console beside the server's build */
  HANGAR_CONSOLE_DIR: z.string().min(1).default(fileURLToPath(new URL('../console', import.meta.url))),
  /** Fastify log level. @default 'info' */
  /** Largest archive a template build may be sent (POST /v1/uploads), in MiB. */
  HANGAR_MAX_UPLOAD_MB: z.coerce.number().int().min(1).max(1_048_576).default(4096),
  /** Template builds running at once; later ones queue. */
  HANGAR_BUILD_CONCURRENCY: z.coerce.number().int().min(1).max(16).default(1),
  /** This host's name among the hosts sharing the database. @default `{hostname}/{instance prefix}` */
  HANGAR_HOST_ID: z.string().regex(/^[A-Za-z0-9._/:-]{1,128}$/, 'must be 1-128 letters, digits or . _ / : -').optional(),
  /** The URL other servers forward this host's machine requests to. @default http://{listen address} once listening */
  HANGAR_ADVERTISE_URL: z
    .string()
    .regex(/^https?:\/\/[^\s/?#]+$/, 'must be http(s)://host[:port], with no path')
    .optional(),
  /** How many machines placement puts on this host at most; 0: an API server that runs none. @default HANGAR_MAX_MACHINES */
  HANGAR_HOST_CAPACITY: z.coerce.number().int().min(0).optional(),
  /**
   * Where snapshots (pause, live and template ones) are kept. Point every host of a fleet at
   * one shared directory (NFS, CephFS…) and a paused machine of a lost or draining host
   * resumes on another. @default <data dir>/snapshots
   */
  HANGAR_SNAPSHOTS_DIR: z.string().min(1).optional(),
  /** How often this host records that it is alive. */
  HANGAR_HEARTBEAT_MS: z.coerce.number().int().min(50).max(60_000).default(2000),
  /** A host silent this long is marked down by another and its running machines are failed; at least 2 × HANGAR_HEARTBEAT_MS. */
  HANGAR_HOST_DOWN_AFTER_MS: z.coerce.number().int().min(100).max(3_600_000).default(15_000),
  /**
   * A down or stopped host silent this long, which no live machine names, is removed from the hosts
   * (API server pods come and go); at least HANGAR_HOST_DOWN_AFTER_MS. A host that comes back registers anew.
   */
  HANGAR_HOST_FORGET_AFTER_MS: z.coerce.number().int().min(100).max(30 * 86_400_000).default(86_400_000),
  HANGAR_LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});

/** The parsed, defaulted settings. */
export interface Settings {
  host: string;
  port: number;
  dataDir: string;
  bootstrapKey: string | undefined;
  retentionMs: number;
  sweepIntervalMs: number;
  pidsLimit: number;
  maxMachines: number;
  /** HANGAR_STOP_TIMEOUT_MS: a stop's bound on waiting for what is in flight. */
  stopTimeoutMs: number;
  /** Requests per API key (HANGAR_KEY_RATE_LIMIT, HANGAR_KEY_RATE_BURST); null: unlimited. */
  keyRateLimit: { perSecond: number; burst: number } | null;
  runcPath: string;
  criuPath: string;
  /** The gvisor tier's runsc (HANGAR_RUNSC, HANGAR_GVISOR_PLATFORM), its state under /run; null: the tier is off. */
  gvisor: { runscPath: string; platform: 'ptrace' | 'kvm' | 'systrap'; stateDir: string } | null;
  /** HANGAR_USER_NAMESPACES: new container-tier machines get user namespaces of their own. */
  userNamespaces: boolean;
  busyboxPath: string;
  /** Shared template directories searched after `templatesDir`, in order. */
  templatePath: string[];
  logLevel: z.infer<typeof EnvSchema>['HANGAR_LOG_LEVEL'];
  /** Host-based ingress's domain (lowercase), or null when host-based ingress is off. */
  ingressDomain: string | null;
  /** The built web console's directory (index.html and assets/), served at /console. */
  consoleDir: string;
  /** The Paperspace-style API's settings. */
  /** The server's regions; the first is the default (HANGAR_REGIONS). */
  regions: string[];
  paperspace: { basePath: string; machineTypes: MachineType[]; diskSizesGb: number[] };
  /** Derived: carried by every host resource of this server (hash of the data dir). */
  instancePrefix: string;
  /** The machines' private subnet. */
  subnet: Cidr;
  /** The SQLite file, used when `databaseUrl` is null. */
  databasePath: string;
  /** HANGAR_SQLITE_BUSY_TIMEOUT_MS: how long SQLite calls wait for a file another process holds locked. */
  sqliteBusyTimeoutMs: number;
  /** HANGAR_POSTGRES_BUSY_TIMEOUT_MS: how long PostgreSQL store calls wait for a lock or a connection. */
  postgresBusyTimeoutMs: number;
  /** The PostgreSQL database's URL (HANGAR_DATABASE_URL), or null for the SQLite file. */
  databaseUrl: string | null;
  templatesDir: string;
  machinesDir: string;
  snapshotsDir: string;
  /** Layers of built templates, one directory per content digest. */
  layersDir: string;
  /** Archives sent for template builds. */
  uploadsDir: string;
  /** Template build logs. */
  buildLogsDir: string;
  maxUploadBytes: number;
  buildConcurrency: number;
  /** Volume images (one directory each) and their host mounts (`mounts/`). */
  volumesDir: string;
  runcStateDir: string;
  /** The fleet: this host's id and URL, its capacity, and the heartbeat bounds. */
  fleet: { hostId: string; advertiseUrl: string | null; capacityMachines: number; heartbeatMs: number; downAfterMs: number; forgetAfterMs: number };
}

const MachineTypesSchema = z
  .array(
    z.strictObject({
      label: z.string().regex(/^[A-Za-z0-9._+-]{1,64}$/),
      vcpus: z.number().int().min(CONFIG_LIMITS.vcpus.min).max(CONFIG_LIMITS.vcpus.max),
      memory_mb: z.number().int().min(CONFIG_LIMITS.memory_mb.min).max(CONFIG_LIMITS.memory_mb.max),
    }),
  )
  .min(1)
  .refine((ts) => new Set(ts.map((t) => t.label)).size === ts.length, 'labels must be unique');

function parseMachineTypes(raw: string | undefined): MachineType[] {
  if (raw === undefined) return DEFAULT_MACHINE_TYPES.map((t) => ({ ...t }));
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch {
    throw new SettingsError('Invalid settings:\n  HANGAR_PAPERSPACE_MACHINE_TYPES: must be JSON, e.g. [{"label":"C1","vcpus":1,"memory_mb":512}]');
  }
  const r = MachineTypesSchema.safeParse(json);
  if (!r.success) {
    const lines = r.error.issues.map((i) => `HANGAR_PAPERSPACE_MACHINE_TYPES${i.path.length ? `[${i.path.join('.')}]` : ''}: ${i.message}`);
    throw new SettingsError(`Invalid settings:\n  ${lines.join('\n  ')}`);
  }
  return r.data;
}

function parseDiskSizes(raw: string): number[] {
  const sizes = [...new Set(raw.split(',').map(Number))];
  const bad = sizes.find((gb) => gb < 1 || gb * 1024 > CONFIG_LIMITS.disk_mb.max);
  if (bad !== undefined) throw new SettingsError(`Invalid settings:\n  HANGAR_PAPERSPACE_DISK_SIZES: ${bad} GB is outside 1-${CONFIG_LIMITS.disk_mb.max / 1024}`);
  return sizes;
}

/** The name of every environment variable the server reads. */
export const SETTING_NAMES: readonly string[] = Object.keys(EnvSchema.shape);

/** Thrown when the environment holds a bad setting. */
export class SettingsError extends Error {
  override name = 'SettingsError';
}

/** Parse settings from an environment (process.env by default). Creates the data dir. */
export function loadSettings(env: Record<string, string | undefined> = process.env): Settings {
  const parsed = EnvSchema.safeParse(env);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    throw new SettingsError(`Invalid settings:\n  ${lines.join('\n  ')}`);
  }
  const e = parsed.data;
  const sep = e.HANGAR_LISTEN.lastIndexOf(':');
  const host = e.HANGAR_LISTEN.slice(0, sep).replace(/^\[|\]$/g, '');
  const port = Number(e.HANGAR_LISTEN.slice(sep + 1));
  if (port > 65_535) throw new SettingsError('Invalid settings:\n  HANGAR_LISTEN: port must be at most 65535');
  mkdirSync(resolve(e.HANGAR_DATA_DIR), { recursive: true, mode: 0o700 });
  const dataDir = realpathSync(resolve(e.HANGAR_DATA_DIR));
  const instancePrefix = `hangar-${createHash('sha256').update(dataDir).digest('hex').slice(0, 8)}`;
  if (e.HANGAR_HOST_DOWN_AFTER_MS < 2 * e.HANGAR_HEARTBEAT_MS) {
    throw new SettingsError(`Invalid settings:\n  HANGAR_HOST_DOWN_AFTER_MS: must be at least 2 × HANGAR_HEARTBEAT_MS (${2 * e.HANGAR_HEARTBEAT_MS})`);
  }
  if (e.HANGAR_HOST_FORGET_AFTER_MS < e.HANGAR_HOST_DOWN_AFTER_MS) {
    throw new SettingsError(`Invalid settings:\n  HANGAR_HOST_FORGET_AFTER_MS: must be at least HANGAR_HOST_DOWN_AFTER_MS (${e.HANGAR_HOST_DOWN_AFTER_MS})`);
  }
  return {
    host,
    port,
    dataDir,
    bootstrapKey: e.HANGAR_BOOTSTRAP_KEY,
    retentionMs: e.HANGAR_RETENTION_MS,
    sweepIntervalMs: e.HANGAR_SWEEP_INTERVAL_MS,
    pidsLimit: e.HANGAR_PIDS_LIMIT,
    maxMachines: e.HANGAR_MAX_MACHINES,
    stopTimeoutMs: e.HANGAR_STOP_TIMEOUT_MS,
    keyRateLimit: e.HANGAR_KEY_RATE_LIMIT === 0 ? null : { perSecond: e.HANGAR_KEY_RATE_LIMIT, burst: e.HANGAR_KEY_RATE_BURST ?? defaultBurst(e.HANGAR_KEY_RATE_LIMIT) },
    runcPath: e.HANGAR_RUNC,
    criuPath: e.HANGAR_CRIU,
    gvisor: e.HANGAR_RUNSC === '' ? null : { runscPath: e.HANGAR_RUNSC, platform: e.HANGAR_GVISOR_PLATFORM, stateDir: `/run/${instancePrefix}-gvisor` },
    userNamespaces: e.HANGAR_USER_NAMESPACES === 'on',
    busyboxPath: e.HANGAR_BUSYBOX,
    templatePath: e.HANGAR_TEMPLATE_PATH.split(':').filter(Boolean).map((d) => resolve(d)),
    logLevel: e.HANGAR_LOG_LEVEL,
    ingressDomain: e.HANGAR_INGRESS_DOMAIN ?? null,
    consoleDir: resolve(e.HANGAR_CONSOLE_DIR),
    regions: regionsOf(e.HANGAR_REGIONS, e.HANGAR_PAPERSPACE_REGION),
    paperspace: {
      basePath: e.HANGAR_PAPERSPACE_BASE,
      machineTypes: parseMachineTypes(e.HANGAR_PAPERSPACE_MACHINE_TYPES),
      diskSizesGb: parseDiskSizes(e.HANGAR_PAPERSPACE_DISK_SIZES),
    },
    instancePrefix,
    subnet: subnetOf(e.HANGAR_SUBNET, instancePrefix),
    databasePath: join(dataDir, 'hangar.db'),
    sqliteBusyTimeoutMs: e.HANGAR_SQLITE_BUSY_TIMEOUT_MS,
    postgresBusyTimeoutMs: e.HANGAR_POSTGRES_BUSY_TIMEOUT_MS,
    databaseUrl: e.HANGAR_DATABASE_URL ?? null,
    templatesDir: join(dataDir, 'templates'),
    machinesDir: join(dataDir, 'machines'),
    snapshotsDir: e.HANGAR_SNAPSHOTS_DIR === undefined ? join(dataDir, 'snapshots') : resolve(e.HANGAR_SNAPSHOTS_DIR),
    layersDir: join(dataDir, 'layers'),
    uploadsDir: join(dataDir, 'uploads'),
    buildLogsDir: join(dataDir, 'template-builds'),
    maxUploadBytes: e.HANGAR_MAX_UPLOAD_MB * 1024 * 1024,
    buildConcurrency: e.HANGAR_BUILD_CONCURRENCY,
    volumesDir: join(dataDir, 'volumes'),
    runcStateDir: `/run/${instancePrefix}`,
    fleet: {
      hostId: e.HANGAR_HOST_ID ?? keptHostId(dataDir, `${hostname()}/${instancePrefix}`),
      advertiseUrl: e.HANGAR_ADVERTISE_URL ?? null,
      capacityMachines: e.HANGAR_HOST_CAPACITY ?? e.HANGAR_MAX_MACHINES,
      heartbeatMs: e.HANGAR_HEARTBEAT_MS,
      downAfterMs: e.HANGAR_HOST_DOWN_AFTER_MS,
      forgetAfterMs: e.HANGAR_HOST_FORGET_AFTER_MS,
    },
  };
}

/**
 * The host id a data dir got at its first start (`<data dir>/host-id`), so that a new
 * hostname (a rescheduled pod) or a moved data dir still finds its machines its own.
 */
function keptHostId(dataDir: string, fresh: string): string {
  const file = join(dataDir, 'host-id');
  try {
    const kept = readFileSync(file, 'utf8').trim();
    if (/^[A-Za-z0-9._/:-]{1,128}$/.test(kept)) return kept;
  } catch {
    // First start: no file yet.
  }
  writeFileSync(file, `${fresh}\n`, { mode: 0o600 });
  return fresh;
}

function regionsOf(regions: string | undefined, legacy: string | undefined): string[] {
  if (regions !== undefined && legacy !== undefined) {
    throw new SettingsError('Invalid settings:\n  HANGAR_PAPERSPACE_REGION: set HANGAR_REGIONS only (HANGAR_PAPERSPACE_REGION is its older one-region form)');
  }
  return (regions ?? legacy ?? 'local').split(',');
}

function subnetOf(value: string | undefined, instancePrefix: string): Cidr {
  if (value === undefined) return defaultSubnet(instancePrefix.replace(/^hangar-/, ''));
  const parsed = parseCidr(value);
  if ('error' in parsed) throw new SettingsError(`Invalid settings:\n  HANGAR_SUBNET: ${parsed.error}`);
  return parsed.cidr;
}

