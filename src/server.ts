import { writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import { DEFAULT_CONFIG } from './domain/machine.js';
import { uploadHostTag } from './domain/template.js';
import { buildApp } from './http/app.js';
import type { AnyRoute } from './http/route.js';
import { RuncRuntime } from './runtime/runc/runc-runtime.js';
import { run } from './runtime/runc/command.js';
import type { Runtime } from './runtime/runtime.js';
import { AuthService } from './service/auth-service.js';
import { ComputeService } from './service/compute-service.js';
import { ExecService } from './service/exec-service.js';
import { FileService } from './service/file-service.js';
import { FileWatchService } from './service/file-watch.js';
import { LifecycleScheduler } from './service/lifecycle-scheduler.js';
import { MachineOperations } from './service/machine-operations.js';
import { MachineCore } from './service/machine-core.js';
import { MachineService } from './service/machine-service.js';
import { ProcessService } from './service/process-service.js';
import { PtyService } from './service/pty-service.js';
import { DesktopService } from './service/desktop-service.js';
import { PaperspaceService } from './service/paperspace-service.js';
import { AccessorService } from './service/accessor-service.js';
import { ServerSecret } from './service/secrets.js';
import { StartupScriptRuns } from './service/startup-script-runs.js';
import { StartupScriptService } from './service/startup-script-service.js';
import { NetworkService } from './service/network-service.js';
import { VolumeService } from './service/volume-service.js';
import { WarmPoolService } from './service/warm-pools.js';
import type { Settings } from './settings.js';
import { PostgresStore } from './store/postgres/postgres-store.js';
import { SqliteStore } from './store/sqlite/sqlite-store.js';
import type { Store } from './store/store.js';
import { ensureBaseTemplate } from './templates/base-template.js';
import { TemplateCatalog } from './templates/templates.js';
import { LayerStore } from './templates/layers.js';
import { BuildLogs } from './service/build-log.js';
import { TemplateApi } from './service/template-api.js';
import { TemplateBuilder } from './service/template-builds.js';
import { TemplateService } from './service/template-service.js';
import { UploadStore } from './service/uploads.js';
import { Metrics } from './service/metrics.js';
import { HostService } from './service/host-service.js';
import { VERSION } from './version.js';

/** A running Hangar server and its parts. */
export interface HangarServer {
  settings: Settings;
  app: FastifyInstance;
  routes: AnyRoute[];
  store: Store;
  runtime: Runtime;
  machines: MachineService;
  /** Background processes inside machines (in memory; killed when the server stops). */
  processes: ProcessService;
  /** Machine operations as events: the Paperspace-style surface's, and the recorder of every other. */
  operations: MachineOperations;
  pools: WarmPoolService;
  auth: AuthService;
  scheduler: LifecycleScheduler;
  /** This host among the hosts sharing the store: its heartbeat, and the others' states. */
  hosts: HostService;
  /** Base URL once listening, e.g. http://127.0.0.1:8080. */
  url: string;
  /** An admin key generated at this first start (shown once), else null. */
  generatedAdminKey: string | null;
  /** Stop serving; machines keep running and are re-adopted by the next start. */
  close(): Promise<void>;
  /** What is in flight now: HTTP requests being answered, and machine operations running in the background. */
  inFlight(): string[];
}

/** Options that tests and benchmarks change; production uses the defaults. */
export interface StartOptions {
  /** Listen on the settings' address. @default true */
  listen?: boolean;
  /** Run the lifecycle scheduler. @default true */
  scheduler?: boolean;
  /**
   * The clock of machines and their events (timers, auto snapshots): tests move it
   * forward to fire what is due hours later through the real scheduler. @default Date.now
   */
  now?: () => number;
}

/** The store the settings choose: PostgreSQL when HANGAR_DATABASE_URL is set, else the SQLite file. */
async function openStore(settings: Settings, log: (err: Error) => void): Promise<Store> {
  if (settings.databaseUrl === null) return new SqliteStore({ path: settings.databasePath, busyTimeoutMs: settings.sqliteBusyTimeoutMs });
  return PostgresStore.open({ url: settings.databaseUrl, onConnectionError: log, busyTimeoutMs: settings.postgresBusyTimeoutMs }).catch((err: Error) => {
    throw new Error(`the PostgreSQL database of HANGAR_DATABASE_URL is not usable (${err.message})`, { cause: err });
  });
}

/** Compose store, runtime, services and HTTP; re-adopt machines; listen. */
export async function startServer(settings: Settings, options: StartOptions = {}): Promise<HangarServer> {
  let app: FastifyInstance | undefined;
  // Fastify's logger, once the app exists: an idle database connection may drop at any time.
  const store = await openStore(settings, (err) => app?.log.warn({ err }, 'database connection lost; the next query reconnects'));
  try {
    const secret = await ServerSecret.load(store);
    const auth = new AuthService(store, settings.keyRateLimit);
    const generatedAdminKey = await auth.bootstrap(settings.bootstrapKey, Date.now());
    if (generatedAdminKey) {
      await writeFile(join(settings.dataDir, 'admin-key'), `${generatedAdminKey}\n`, { mode: 0o600 });
    }
    await ensureBaseTemplate({ templatesDir: settings.templatesDir, busyboxPath: settings.busyboxPath });
    const catalog = new TemplateCatalog([settings.templatesDir, ...settings.templatePath]);
    const layers = new LayerStore(settings.layersDir);
    // The gvisor tier only when runsc answers; without it gvisor creates are refused (422).
    const runsc = settings.gvisor && (await run(settings.gvisor.runscPath, ['--version']).then(() => settings.gvisor, () => null));
    const runtime = new RuncRuntime({
      runcPath: settings.runcPath,
      criuPath: settings.criuPath,
      machinesDir: settings.machinesDir,
      snapshotsDir: settings.snapshotsDir,
      volumesDir: settings.volumesDir,
      instancePrefix: settings.instancePrefix,
      stateDir: settings.runcStateDir,
      gvisor: runsc ? { binary: runsc.runscPath, stateDir: runsc.stateDir, platform: runsc.platform } : null,
      pidsLimit: settings.pidsLimit,
      userNamespaces: settings.userNamespaces,
      // Fastify's logger, once the app below exists (nothing the runtime does before logs).
      logger: { warn: (o, m) => app?.log.warn(o, m) },
      subnet: settings.subnet,
    });
    // An API server (HANGAR_HOST_CAPACITY=0) holding no machine of its own runs nothing on this
    // host: it needs no runc and makes no host resource (no bridge, rules or cgroups).
    const apiOnly = settings.fleet.capacityMachines === 0 && (await store.machinesInStatus(['creating', 'running', 'paused', 'error'], settings.fleet.hostId)).length === 0;
    const runtimeInfo = await runtime.info().catch((err: Error) => {
      if (apiOnly) return { name: 'runc', version: 'not used (an API server: HANGAR_HOST_CAPACITY=0)', instancePrefix: settings.instancePrefix };
      throw new Error(`runc is not usable (${err.message}); install it with: apt-get install runc`);
    });
    const snapshotSupport = await runtime.snapshotSupport();

    let ready = false;
    // Services log through Fastify's logger, which exists only once the app is built.
    const serviceLog = {
      info: (o: object, m?: string) => app?.log.info(o, m),
      warn: (o: object, m?: string) => app?.log.warn(o, m),
      error: (o: object, m?: string) => app?.log.error(o, m),
    };
    const operations = new MachineOperations({ store, secret, log: serviceLog, now: options.now, hostId: settings.fleet.hostId });
    const metrics = new Metrics(store);
    const templates = new TemplateService({
      store,
      catalog,
      layers,
      log: serviceLog,
      builtinScript: fileURLToPath(new URL('../../scripts/build-builtin-template.sh', import.meta.url)),
      builtinDir: settings.templatePath[0] ?? null,
      deleteSnapshot: (id) => runtime.deleteSnapshot(id),
    });
    const { fleet } = settings;
    let hosts: HostService | undefined;
    const core = new MachineCore({
      store,
      runtime,
      templates,
      secret,
      log: serviceLog,
      // Placement sends at most HANGAR_HOST_CAPACITY here; creates sent here directly are bounded the same way.
      maxMachines: Math.min(settings.maxMachines, fleet.capacityMachines),
      hostId: fleet.hostId,
      hostState: (id) => hosts!.stateOf(id),
      subnet: settings.subnet,
      now: options.now,
      recorder: operations,
      timer: metrics,
    });
    hosts = new HostService({
      core,
      hostId: fleet.hostId,
      capacityMachines: fleet.capacityMachines,
      heartbeatMs: fleet.heartbeatMs,
      downAfterMs: fleet.downAfterMs,
      forgetAfterMs: fleet.forgetAfterMs,
      // An API server keeps no snapshot: it shares no directory.
      snapshotStore: apiOnly ? null : await runtime.snapshotStore(),
      log: serviceLog,
    });
    const pools = new WarmPoolService({ core, store, log: serviceLog });
    // A host that takes no machines (HANGAR_HOST_CAPACITY=0) keeps no warm machines either: refills would only record errors.
    if (fleet.capacityMachines === 0) await pools.stop();
    const buildLogs = new BuildLogs(settings.buildLogsDir);
    const uploads = new UploadStore(settings.uploadsDir, settings.maxUploadBytes, uploadHostTag(settings.fleet.hostId));
    const builder = new TemplateBuilder({ core, templates, layers, logs: buildLogs, uploads, concurrency: settings.buildConcurrency });
    const volumes = new VolumeService(core);
    const networks = new NetworkService(store, core.now);
    const machines = new MachineService({ core, pools, volumes, networks, retentionMs: settings.retentionMs });
    const exec = new ExecService({ machines, runtime, templates });
    const processes = new ProcessService({ machines, runtime, exec });
    const pty = new PtyService({ machines, runtime, exec });
    const startupScripts = new StartupScriptService({ store, now: options.now });
    const startupScriptRuns = new StartupScriptRuns({ store, processes, log: serviceLog, now: options.now });
    const accessors = new AccessorService({ store, machines, secret, now: machines.now });
    const paperspace = new PaperspaceService({
      store,
      machines,
      accessors,
      operations,
      templates,
      secret,
      machineTypes: settings.paperspace.machineTypes,
      regions: settings.regions,
      diskSizesGb: settings.paperspace.diskSizesGb,
      startupScripts: startupScriptRuns,
    });
    const built = buildApp({
      machines,
      volumes,
      startupScripts,
      startupScriptRuns,
      networks,
      pools,
      exec,
      processes,
      pty,
      desktop: new DesktopService({ machines, templates }),
      consoleDir: settings.consoleDir,
      files: new FileService({ machines, runtime }),
      fileWatches: new FileWatchService({ machines, runtime }),
      templates: new TemplateApi({ templates, builder, uploads, logs: buildLogs, secret }),
      metrics,
      compute: new ComputeService({ machines, runtime, templates, node: hostname(), version: VERSION, runtimeInfo }),
      paperspace,
      accessors,
      operations,
      paperspaceBase: settings.paperspace.basePath,
      auth,
      version: VERSION,
      logLevel: settings.logLevel,
      ingressDomain: settings.ingressDomain,
      isReady: () => ready,
      hosts: { list: () => hosts.list(), loads: () => store.hostLoads(), drain: (id, on) => hosts.drain(id, on) },
      fleet: {
        hostId: fleet.hostId,
        hasPeers: () => hosts.hasPeers(),
        targetOf: (id) => hosts.targetOf(id),
        place: () => hosts.place(),
        reserve: (id) => hosts.reserve(id),
        machineHost: async (id) => (await store.getMachine(id))?.hostId ?? null,
        templateHost: async (authorization, name) => {
          const team = await auth.teamOfKey(authorization);
          const build = (team === null ? null : await store.currentTemplate(team, name)) ?? (await store.currentTemplate(null, name));
          return build?.hostId ?? null;
        },
        poolHost: async (template, config) => {
          const pool = await pools.matching(template, { ...DEFAULT_CONFIG, ...config });
          return pool ? hosts.poolHost((await store.poolMachines(pool.name)).map((m) => m.hostId)) : null;
        },
        buildHost: async (id) => (await store.getTemplateBuild(id))?.hostId ?? null,
        uploadHost: (id) => hosts.hostOfUpload(id),
        uploadTarget: (seed) => hosts.uploadTarget(seed),
        takesMachines: fleet.capacityMachines > 0,
        snapshotHost: async (id) => {
          const snap = await store.getSnapshot(id);
          return snap ? ((await store.getMachine(snap.machineId))?.hostId ?? null) : null;
        },
      },
      info: async () => ({
        version: VERSION,
        runtime: { name: runtimeInfo.name, version: runtimeInfo.version, instance_prefix: runtimeInfo.instancePrefix },
        store: store.kind,
        snapshots: {
          available: true,
          memory: snapshotSupport.memory,
          criu: snapshotSupport.criuVersion,
          reason: snapshotSupport.reason,
        },
        limits: { max_machines: settings.maxMachines, pids_per_machine: settings.pidsLimit, body_bytes: 1024 * 1024 },
        templates: (await catalog.list()).map((t) => ({ name: t.name, description: t.description, runtime: t.runtime })),
      }),
    });
    app = built.app;
    if (!snapshotSupport.memory && !apiOnly) {
      app.log.warn({ reason: snapshotSupport.reason }, 'memory snapshots unavailable: pause keeps the filesystem only and resume restarts init');
    }
    await layers.removeStaging();
    await uploads.sweep();
    if (!apiOnly) {
      const recovered = await machines.recover();
      app.log.info(recovered, 'machines reconciled with the host');
    }
    await builder.recover();
    await templates.collect(builder.pinned);
    const interrupted = await operations.recover();
    if (interrupted > 0) app.log.warn({ events: interrupted }, 'operations a previous run left unfinished are recorded as errors');
    const scheduler = new LifecycleScheduler(machines, settings.sweepIntervalMs, app.log);
    let url = '';
    if (options.listen !== false) {
      url = await app.listen({ host: settings.host, port: settings.port });
    } else {
      await app.ready();
    }
    // Known to the others once it answers (a server that does not listen takes no forwarded request).
    await hosts.register(fleet.advertiseUrl ?? (url === '' ? null : url));
    await hosts.beat();
    hosts.start();
    if (options.scheduler !== false) {
      await scheduler.sweep();
      scheduler.start();
      if (fleet.capacityMachines > 0) pools.start();
    }
    ready = true;
    let closed = false;
    return {
      settings,
      app,
      routes: built.routes,
      inFlight: () => [...built.inFlight(), ...[...operations.allInFlight()].map(([id, op]) => `${op} of ${id}`)],
      store,
      runtime,
      machines,
      processes,
      operations,
      pools,
      auth,
      scheduler,
      hosts,
      url,
      generatedAdminKey,
      close: async () => {
        if (closed) return;
        closed = true;
        ready = false;
        await scheduler.stop();
        await hosts.stop();
        await pools.stop();
        await builder.close();
        // Before the HTTP server: followers of a process's output get its exit and end.
        await processes.close();
        // The killed scripts' events record their ends before the store closes.
        await startupScriptRuns.drain();
        await pty.close();
        await app!.close();
        // Operations answered already but still running finish (and record their events) first.
        await operations.drain();
        // Activity held in memory must reach the store before it closes.
        await machines.stopActivityTracking();
        await store.close();
        // Only removes what is empty: machines left running keep their cgroups and state. An API server made none.
        if (!apiOnly) await runtime.teardown();
      },
    };
  } catch (err) {
    await store.close();
    throw err;
  }
}

/**
 * Close the server, waiting at most `ms` for the requests and operations in flight. Past the
 * bound they are abandoned (the process may exit; the next start's reconciliation settles
 * each machine before or after its operation, or in error with why), and named.
 */
export async function closeWithin(server: HangarServer, ms: number): Promise<{ finished: boolean; abandoned: string[]; closed: Promise<void> }> {
  let timer: NodeJS.Timeout | undefined;
  const bound = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), ms)));
  const closed = server.close();
  const first = await Promise.race([closed.then(() => 'closed' as const), bound]);
  clearTimeout(timer);
  return { finished: first === 'closed', abandoned: first === 'closed' ? [] : server.inFlight(), closed };
}
