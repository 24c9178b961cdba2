/**
 * The conformance suite every Runtime implementation passes (runc today, gVisor next).
 * It drives the `Runtime` (and, when given, `SnapshotRuntime`) interface directly, on
 * real machines, and checks behaviour a machine's owner can observe from inside it, never
 * a runtime's internals. A runtime-specific test file calls `runtimeConformance` with a
 * factory for a runtime on a fresh instance.
 *
 * The template must hold a POSIX shell and busybox-like tools: sh, cat, echo, sleep,
 * kill, pwd, id, stty, df, hostname, test.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it, type TestContext } from 'node:test';
import type { MachineConfig } from '../domain/machine.js';
import { newMachineId, randomLowerAlnum } from '../domain/ids.js';
import {
  ExecStartError,
  ResizeRefusedError,
  RuntimeError,
  type ExecOptions,
  type ExecResult,
  type MachineSpec,
  type Runtime,
  type SnapshotRuntime,
} from './runtime.js';

/** The template machines of the suite run. */
export interface ConformanceTemplate {
  /** Read-only root filesystem directory. */
  rootfs: string;
  init: string[];
  env: Record<string, string>;
  cwd: string;
}

/** A runtime on a fresh instance, and what the suite needs around it. */
export interface RuntimeFixture {
  runtime: Runtime;
  /** The same runtime's snapshots, when it has them; the snapshot tests are skipped without. */
  snapshots?: SnapshotRuntime;
  template: ConformanceTemplate;
  /** A free address on the instance's machine subnet for machine `id`. */
  allocateIp(id: string): string;
  /** Host resources of the instance still present (mounts, loop devices, cgroups, namespaces, links, chains…). */
  leftovers(): Promise<string[]>;
  /** Remove the instance's files once the suite is done (after its own teardown). */
  cleanup(): Promise<void>;
  /** Fields every machine of the suite gets (a tier: `{ isolation: 'gvisor' }`). @default none */
  machineDefaults?: Partial<MachineSpec>;
  /**
   * Cases this runtime skips because it lacks the feature, by their title, each with the
   * reason the test report shows. Every other case must pass. @default none
   */
  unsupported?: Readonly<Record<string, string>>;
}

const MIB = 1024 * 1024;
const SMALL: MachineConfig = { vcpus: 1, memory_mb: 128, disk_mb: 64 };
/** A safety net for polls, never a measure: every wait ends as soon as its condition holds. */
const PATIENCE_MS = 30_000;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Poll until `fn` gives a truthy value; fail with `what` once the patience is spent. */
async function until<T>(what: string, fn: () => Promise<T> | T): Promise<T> {
  const end = Date.now() + PATIENCE_MS;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

/** What a command printed and how it ended. */
interface Ran extends ExecResult {
  out: string;
  err: string;
}

/**
 * Run `runtimeConformance(name, makeFixture)` from a runtime's test file: one fixture
 * serves the whole suite, whose last test checks that destroy and teardown leave nothing.
 */
export function runtimeConformance(name: string, makeFixture: () => Promise<RuntimeFixture>): void {
  describe(`Runtime conformance: ${name}`, () => {
    let f: RuntimeFixture;
    let made = false;
    let rt: Runtime;
    /** Every machine a test started, destroyed at the end whatever happened. */
    const machines = new Set<string>();
    /** Every snapshot a test made. */
    const snaps = new Set<string>();

    before(async () => {
      f = await makeFixture();
      rt = f.runtime;
      made = true;
    });
    after(async () => {
      if (!made) return; // the fixture itself failed: nothing was started
      // Whatever a failed test left; the last test already did this when all passed.
      try {
        for (const id of machines) await rt.destroy(id);
        for (const s of snaps) await f.snapshots?.deleteSnapshot(s);
        await rt.teardown();
      } finally {
        await f.cleanup();
      }
    });

    function spec(id: string, o: Partial<MachineSpec> = {}): MachineSpec {
      return {
        id,
        hostname: id,
        templateLayers: [f.template.rootfs],
        init: f.template.init,
        env: { ...f.template.env, CONFORMANCE: 'machine-env' },
        cwd: f.template.cwd,
        config: SMALL,
        network: { ip: f.allocateIp(id), outbound: { mode: 'allow' } },
        ...f.machineDefaults,
        ...o,
      };
    }

    async function startMachine(o: Partial<MachineSpec> = {}): Promise<MachineSpec> {
      const s = spec(newMachineId(), o);
      machines.add(s.id);
      const { pid } = await rt.start(s);
      assert.ok(pid > 0, `start gave pid ${pid}`);
      return s;
    }

    function newSnapshotId(): string {
      const id = `snap_${randomLowerAlnum(16)}`;
      snaps.add(id);
      return id;
    }

    async function exec(id: string, argv: string[], o: Partial<ExecOptions> = {}): Promise<Ran> {
      let out = '';
      let err = '';
      const r = await rt.exec(
        id,
        { argv, cwd: '/', env: {}, uid: 0, gid: 0, timeoutMs: PATIENCE_MS, ...o },
        { stdout: (c) => void (out += c.toString()), stderr: (c) => void (err += c.toString()) },
      );
      return { ...r, out, err };
    }

    /** `sh -c script` that must succeed; its stdout, trimmed. */
    async function sh(id: string, script: string): Promise<string> {
      const r = await exec(id, ['sh', '-c', script]);
      assert.equal(r.exitCode, 0, `sh -c ${script}: exit ${r.exitCode}: ${r.err}`);
      return r.out.trim();
    }

    /**
     * Start a daemon that holds `token` only in its memory (a shell variable) and writes
     * it to /tmp/reveal when sent SIGUSR1: it answers only if its process survived.
     * Returns its pid inside the machine.
     */
    async function startKeeper(id: string, token: string): Promise<number> {
      const inner = 'token=$1; trap "echo \\$token > /tmp/reveal" USR1; while :; do sleep 0.05; done';
      const out = await exec(id, ['sh', '-c', `sh -c '${inner}' keeper "$1" >/dev/null 2>&1 </dev/null & echo $!`, 'sh', token]);
      assert.equal(out.exitCode, 0, out.err);
      const pid = Number(out.out.trim());
      assert.ok(pid > 1, `keeper pid ${out.out}`);
      return pid;
    }

    /** Ask the keeper at `pid` for its token; null when no keeper has that pid. */
    async function askKeeper(id: string, pid: number): Promise<string | null> {
      // Only a keeper is signalled: USR1 would kill any other process, which never answers.
      if (!(await argvOf(id, pid)).includes('keeper')) return null;
      await sh(id, 'rm -f /tmp/reveal');
      assert.equal((await exec(id, ['kill', '-USR1', String(pid)])).exitCode, 0);
      return until(`keeper ${pid} to answer`, async () => (await exec(id, ['cat', '/tmp/reveal'])).out.trim() || null);
    }

    /** The argv of the process with `pid` inside the machine; empty when there is none. */
    async function argvOf(id: string, pid: number): Promise<string[]> {
      const r = await exec(id, ['cat', `/proc/${pid}/cmdline`]);
      return r.exitCode === 0 ? r.out.split('\0').filter(Boolean) : [];
    }

    /** Wait until the process with `pid` runs `argv` (it may still be the shell about to exec it). */
    async function runs(id: string, pid: number, argv: string[]): Promise<void> {
      await until(`pid ${pid} to run ${argv.join(' ')}`, async () => (await argvOf(id, pid)).join('\0') === argv.join('\0'));
    }

    /** Wait until no process inside the machine runs `args` (a killed one may take a moment to be reaped). */
    async function gone(id: string, args: RegExp): Promise<void> {
      await until(`${String(args)} to be gone`, async () => !args.test(await sh(id, 'ps -o args')));
    }

    /** A case of the suite, skipped with the fixture's reason when its runtime lacks the feature. */
    function conformanceCase(title: string, fn: (t: TestContext) => Promise<void>): void {
      it(title, async (t) => {
        const why = f.unsupported?.[title];
        if (why !== undefined) {
          t.skip(why);
          return;
        }
        await fn(t);
      });
    }

    conformanceCase('info names the runtime and its version', async () => {
      const info = await rt.info();
      assert.ok(info.name.length > 0 && info.version.length > 0, JSON.stringify(info));
    });

    conformanceCase('start runs init; inspect, list and machinesOnDisk report the machine; unknown ids are null', async () => {
      const s = await startMachine();
      const state = await rt.inspect(s.id);
      assert.equal(state?.status, 'running');
      assert.ok(state.pid > 0);
      assert.deepEqual((await rt.list()).get(s.id), state);
      assert.ok((await rt.machinesOnDisk()).includes(s.id));
      // By name: an init may rewrite its argv (busybox's says just "init").
      assert.equal(posix.basename((await argvOf(s.id, 1))[0] ?? ''), posix.basename(s.init[0] ?? '-'), 'pid 1 is not the spec\'s init');
      assert.equal(await sh(s.id, 'hostname'), s.hostname);
      assert.equal(await rt.inspect(newMachineId()), null);
      assert.equal((await rt.list()).has('mch_nosuchmachine00'), false);
    });

    conformanceCase('start makes the spec\'s cwd exist, and a failed start leaves nothing of the machine', async () => {
      const s = await startMachine({ cwd: '/srv/conformance/work' });
      assert.equal(await sh(s.id, 'test -d /srv/conformance/work && echo yes'), 'yes');
      const broken = spec(newMachineId(), { templateLayers: [join(f.template.rootfs, 'no-such-dir')] });
      machines.add(broken.id);
      await assert.rejects(rt.start(broken), RuntimeError);
      assert.equal(await rt.inspect(broken.id), null);
      assert.equal((await rt.machinesOnDisk()).includes(broken.id), false, 'files of a failed start are left');
    });

    conformanceCase('exec: stdout and stderr apart, the exit code, the machine env, env, cwd and user', async () => {
      const s = await startMachine();
      const r = await exec(s.id, ['sh', '-c', 'echo out; echo err >&2; exit 3']);
      assert.deepEqual([r.out, r.err, r.exitCode, r.timedOut, r.aborted], ['out\n', 'err\n', 3, false, false]);
      assert.equal((await exec(s.id, ['sh', '-c', 'echo $CONFORMANCE'])).out, 'machine-env\n', 'the machine\'s env reaches exec');
      const env = await exec(s.id, ['sh', '-c', 'echo "$A $CONFORMANCE"'], { env: { A: 'set', CONFORMANCE: 'over' } });
      assert.equal(env.out, 'set over\n');
      assert.equal((await exec(s.id, ['pwd'], { cwd: '/tmp' })).out, '/tmp\n');
      assert.equal((await exec(s.id, ['id', '-u'], { uid: 65534, gid: 65534 })).out, '65534\n');
      assert.ok(r.durationMs >= 0);
    });

    conformanceCase('exec: stdin from a buffer or a stream, empty without one', async () => {
      const s = await startMachine();
      assert.equal((await exec(s.id, ['cat'], { stdin: Buffer.from('from a buffer') })).out, 'from a buffer');
      assert.equal((await exec(s.id, ['cat'], { stdin: Readable.from([Buffer.from('from '), Buffer.from('a stream')]) })).out, 'from a stream');
      const none = await exec(s.id, ['sh', '-c', 'cat; echo end']);
      assert.deepEqual([none.out, none.exitCode], ['end\n', 0]);
    });

    conformanceCase('exec: a missing command or cwd is an ExecStartError; timeout and abort kill the command', async () => {
      const s = await startMachine();
      await assert.rejects(exec(s.id, ['no-such-command-here']), (e: unknown) => e instanceof ExecStartError && e.failure === 'not_found');
      await assert.rejects(exec(s.id, ['pwd'], { cwd: '/no/such/dir' }), ExecStartError);
      const timed = await exec(s.id, ['sleep', '601'], { timeoutMs: 200 });
      assert.deepEqual([timed.timedOut, timed.aborted], [true, false]);
      assert.notEqual(timed.exitCode, 0);
      const abort = new AbortController();
      const running = exec(s.id, ['sleep', '602'], { signal: abort.signal });
      await until('the sleep to run', async () => (await sh(s.id, 'ps -o args')).includes('sleep 602'));
      abort.abort();
      const aborted = await running;
      assert.deepEqual([aborted.aborted, aborted.timedOut], [true, false]);
      await gone(s.id, /sleep 60[12]/);
    });

    conformanceCase('startProcess: output, stdin, closeStdin, signal, kill and the pid inside the machine', async () => {
      const s = await startMachine();
      let out = '';
      let err = '';
      const io = { stdout: (c: Buffer) => void (out += c.toString()), stderr: (c: Buffer) => void (err += c.toString()) };
      const base = { cwd: '/', env: {}, uid: 0, gid: 0 };
      const script = ['sh', '-c', 'read line; echo "got $line"; cat; echo bye >&2; exit 5'];
      const reader = await rt.startProcess(s.id, { ...base, argv: script }, io);
      assert.ok(reader.pid > 1);
      await runs(s.id, reader.pid, script);
      assert.equal(reader.write(Buffer.from('hi\n')), 'written');
      assert.equal(reader.write(Buffer.from('rest')), 'written');
      reader.closeStdin();
      assert.equal(reader.write(Buffer.from('late')), 'closed');
      const done = await reader.exited;
      assert.deepEqual([done.exitCode, out, err], [5, 'got hi\nrest', 'bye\n']);

      let trapped = '';
      const trapper = await rt.startProcess(
        s.id,
        { ...base, argv: ['sh', '-c', 'trap "echo term; exit 7" TERM; echo ready; while :; do sleep 0.05; done'] },
        { stdout: (c) => void (trapped += c.toString()), stderr: () => undefined },
      );
      await until('the trap to be set', () => trapped.includes('ready'));
      trapper.signal('TERM');
      assert.equal((await trapper.exited).exitCode, 7);
      assert.match(trapped, /term/);

      const sleeper = await rt.startProcess(s.id, { ...base, argv: ['sleep', '603'] }, { stdout: () => undefined, stderr: () => undefined });
      await runs(s.id, sleeper.pid, ['sleep', '603']);
      sleeper.kill();
      assert.notEqual((await sleeper.exited).exitCode, 0);
      await gone(s.id, /sleep 603/);
      await assert.rejects(rt.startProcess(s.id, { ...base, argv: ['no-such-command-here'] }, io), ExecStartError);
    });

    conformanceCase('startPty: a terminal with its size, resized, and the exit code', async () => {
      const s = await startMachine();
      let screen = '';
      const pty = await rt.startPty(s.id, { argv: ['sh'], cwd: '/', env: { TERM: 'xterm' }, uid: 0, gid: 0, cols: 80, rows: 24 }, (c) => {
        screen += c.toString();
      });
      pty.write(Buffer.from('stty size; tty\n'));
      // tty prints after stty: on a busy host its line can come in a later chunk.
      await until('stty to print 24 80, then tty its terminal', () => /^24 80\r?$/m.test(screen) && /^\/dev\/pts\/\d+\r?$/m.test(screen));
      pty.resize(100, 30);
      pty.write(Buffer.from('stty size\n'));
      await until('stty to print 30 100', () => /^30 100\r?$/m.test(screen));
      pty.write(Buffer.from('exit 4\n'));
      assert.deepEqual(await pty.exited, { exitCode: 4 });

      const killed = await rt.startPty(s.id, { argv: ['sleep', '604'], cwd: '/', env: {}, uid: 0, gid: 0, cols: 80, rows: 24 }, () => undefined);
      await until('the terminal command to run', async () => /sleep 604/.test(await sh(s.id, 'ps -o args')));
      killed.kill();
      await killed.exited;
      await gone(s.id, /sleep 604/);
    });

    conformanceCase('stats, diskUsage, ensureDir and hostPaths of a running machine', async () => {
      const s = await startMachine();
      const stats = await rt.stats(s.id);
      assert.ok(stats, 'no stats for a running machine');
      assert.equal(stats.memory.usage.limit, SMALL.memory_mb * MIB);
      assert.ok(stats.memory.usage.usage > 0 && stats.pids.current >= 1 && stats.cpu.totalNs > 0, JSON.stringify(stats.pids));
      assert.equal(await rt.stats(newMachineId()), null);
      const used = await rt.diskUsage(s.id);
      await sh(s.id, 'dd if=/dev/urandom of=/root/blob bs=1024 count=2048 2>/dev/null && sync');
      const more = await rt.diskUsage(s.id);
      assert.ok(used !== null && more !== null && more >= used + 2 * MIB, `disk usage ${used} then ${more}`);
      await rt.ensureDir(s.id, '/opt/made/by/ensure');
      assert.equal(await sh(s.id, 'test -d /opt/made/by/ensure && echo yes'), 'yes');
      await sh(s.id, 'echo written-inside > /root/seen-from-host');
      assert.equal(await readFile(join(rt.hostPaths(s.id).rootfs, 'root/seen-from-host'), 'utf8'), 'written-inside\n');
    });

    conformanceCase('resize: new CPU and memory limits in force, a larger disk, the processes kept; a disk never shrinks', async () => {
      const s = await startMachine();
      const keeper = await startKeeper(s.id, 'through-resize');
      // From the end of df's last line: a long file system name wraps onto a line of its own.
      const diskKb = async (): Promise<number> => Number((await sh(s.id, 'df -k / | tail -n 1')).split(/\s+/).at(-5));
      const before = await diskKb();
      assert.ok(before > 32 * 1024 && before <= 64 * 1024, `df before: ${before} KiB`);
      const bigger: MachineConfig = { vcpus: 2, memory_mb: 192, disk_mb: 96 };
      try {
        await rt.resize({ ...s, config: bigger }, s.config);
        const after = await diskKb();
        assert.ok(after > 80 * 1024 && after <= 96 * 1024, `df after: ${after} KiB`);
      } catch (err) {
        // A host that can grow a disk neither online nor under a checkpoint refuses before changing anything.
        if (!(err instanceof ResizeRefusedError && err.refusal === 'disk_unsupported')) throw err;
        await rt.resize({ ...s, config: { ...bigger, disk_mb: s.config.disk_mb } }, s.config);
      }
      assert.equal((await rt.stats(s.id))?.memory.usage.limit, bigger.memory_mb * MIB);
      assert.equal(await askKeeper(s.id, keeper), 'through-resize', 'a process did not survive the resize');
      await assert.rejects(rt.resize({ ...s, config: { ...bigger, disk_mb: 32 } }, bigger), RuntimeError);
      assert.equal((await rt.inspect(s.id))?.status, 'running');
    });

    conformanceCase('restart runs init again on the same files; stop keeps the files; destroy removes the machine, twice safely', async () => {
      const s = await startMachine();
      await sh(s.id, 'echo kept > /root/kept; sleep 605 >/dev/null 2>&1 </dev/null &');
      await until('the sleep to run', async () => /sleep 605/.test(await sh(s.id, 'ps -o args')));
      const { pid } = await rt.restart(s);
      assert.ok(pid > 0);
      assert.equal((await rt.inspect(s.id))?.status, 'running');
      assert.equal(await sh(s.id, 'cat /root/kept'), 'kept');
      assert.doesNotMatch(await sh(s.id, 'ps -o args'), /sleep 605/, 'a process outlived the restart');

      await rt.stop(s.id);
      assert.equal(await rt.inspect(s.id), null);
      assert.equal(await rt.diskUsage(s.id), null);
      assert.ok((await rt.machinesOnDisk()).includes(s.id), 'stop removed the machine\'s files');
      await assert.rejects(exec(s.id, ['true']), (e: unknown) => e instanceof ExecStartError && e.failure === 'not_running');

      const other = await startMachine();
      await rt.destroy(s.id);
      await rt.destroy(other.id);
      await rt.destroy(other.id);
      for (const id of [s.id, other.id]) {
        assert.equal(await rt.inspect(id), null);
        assert.equal((await rt.list()).has(id), false);
        assert.equal((await rt.machinesOnDisk()).includes(id), false);
      }
    });

    describe('snapshots', () => {
      /** The snapshot runtime, or a skip when the runtime has none (or no memory snapshots, when `memory`). */
      async function snapshotsOr(t: TestContext, memory: boolean): Promise<SnapshotRuntime | null> {
        const s = f.snapshots;
        if (!s) {
          t.skip('this runtime has no snapshots');
          return null;
        }
        const support = await s.snapshotSupport();
        if (memory && !support.memory) {
          t.skip(`no memory snapshots here: ${support.reason ?? 'unsupported'}`);
          return null;
        }
        return s;
      }

      conformanceCase('pause and resume: the same process, its pid and its memory come back; the snapshot is consumed', async (t) => {
        const snap = await snapshotsOr(t, true);
        if (!snap) return;
        const s = await startMachine();
        const keeper = await startKeeper(s.id, 'kept-in-memory');
        await sh(s.id, 'echo on-disk > /root/file');
        const id = newSnapshotId();
        const paused = await snap.pause(s.id, id);
        assert.equal(paused.memory, true);
        assert.ok(paused.sizeBytes > 0);
        assert.equal(await rt.inspect(s.id), null, 'a paused machine has no container');
        assert.ok((await snap.snapshotsOnDisk()).includes(id));
        const { pid } = await snap.resume(s, id);
        assert.ok(pid > 0);
        assert.equal(await askKeeper(s.id, keeper), 'kept-in-memory', 'the process or its memory was lost');
        assert.equal(await sh(s.id, 'cat /root/file'), 'on-disk');
        assert.equal((await snap.snapshotsOnDisk()).includes(id), false, 'resume left its pause snapshot');
      });

      conformanceCase('a filesystem-only pause keeps the files and restarts init on resume', async (t) => {
        const snap = await snapshotsOr(t, false);
        if (!snap) return;
        const s = await startMachine();
        const keeper = await startKeeper(s.id, 'gone-after-restart');
        await sh(s.id, 'echo on-disk > /root/file');
        const id = newSnapshotId();
        assert.equal((await snap.pause(s.id, id, { memory: false })).memory, false);
        await snap.resume(s, id);
        assert.equal(await sh(s.id, 'cat /root/file'), 'on-disk');
        assert.equal(await askKeeper(s.id, keeper), null, 'a process survived a filesystem-only pause');
      });

      conformanceCase('a live snapshot leaves the machine running; a fork from it has the processes, files and its own name', async (t) => {
        const snap = await snapshotsOr(t, true);
        if (!snap) return;
        const s = await startMachine();
        const keeper = await startKeeper(s.id, 'copied-into-fork');
        await sh(s.id, 'echo source > /root/file');
        const id = newSnapshotId();
        const taken = await snap.snapshot(s.id, id);
        assert.deepEqual([taken.memory, taken.sizeBytes > 0], [true, true]);
        assert.equal((await rt.inspect(s.id))?.status, 'running');
        assert.equal(await askKeeper(s.id, keeper), 'copied-into-fork', 'the source lost its process');

        const fork = spec(newMachineId());
        machines.add(fork.id);
        assert.ok((await snap.fork(fork, id)).pid > 0);
        assert.equal((await rt.inspect(fork.id))?.status, 'running');
        assert.equal(await sh(fork.id, 'hostname'), fork.hostname);
        assert.equal(await askKeeper(fork.id, keeper), 'copied-into-fork', 'the fork lacks the source\'s process');
        await sh(fork.id, 'echo fork > /root/file');
        assert.equal(await sh(s.id, 'cat /root/file'), 'source', 'the fork writes into the source');

        assert.ok((await snap.snapshotsOnDisk()).includes(id), 'a fork consumed its snapshot');
        await snap.deleteSnapshot(id);
        await snap.deleteSnapshot(id);
        assert.equal((await snap.snapshotsOnDisk()).includes(id), false);
        assert.equal((await rt.inspect(fork.id))?.status, 'running', 'deleting the snapshot touched the fork');
      });

      conformanceCase('revertSnapshot: a paused machine resumes as its restore point was; a bad source changes nothing', async (t) => {
        const snap = await snapshotsOr(t, true);
        if (!snap) return;
        const s = await startMachine();
        const first = await startKeeper(s.id, 'restore-point');
        await sh(s.id, 'echo v1 > /root/file');
        const restorePoint = newSnapshotId();
        await snap.snapshot(s.id, restorePoint);
        await sh(s.id, `echo v2 > /root/file; kill ${first}`);
        const later = await startKeeper(s.id, 'after-restore-point');
        const paused = newSnapshotId();
        await snap.pause(s.id, paused);

        await assert.rejects(snap.revertSnapshot(paused, `snap_${randomLowerAlnum(16)}`), RuntimeError);
        const reverted = await snap.revertSnapshot(paused, restorePoint);
        assert.deepEqual([reverted.memory, reverted.sizeBytes > 0], [true, true]);
        assert.ok((await snap.snapshotsOnDisk()).includes(restorePoint), 'the restore point was consumed');
        await snap.resume(s, paused);
        assert.equal(await sh(s.id, 'cat /root/file'), 'v1');
        assert.equal(await askKeeper(s.id, first), 'restore-point');
        if (later !== first) assert.equal(await askKeeper(s.id, later), null, 'a process started after the restore point came back');
      });
    });

    it('destroy and teardown leave nothing of the instance on the host', async () => {
      for (const id of machines) await rt.destroy(id);
      for (const s of snaps) await f.snapshots?.deleteSnapshot(s);
      await rt.teardown();
      assert.deepEqual(await f.leftovers(), []);
      assert.equal((await rt.list()).size, 0);
      assert.deepEqual(await rt.machinesOnDisk(), []);
      if (f.snapshots) assert.deepEqual(await f.snapshots.snapshotsOnDisk(), []);
      machines.clear();
      snaps.clear();
    });
  });
}
