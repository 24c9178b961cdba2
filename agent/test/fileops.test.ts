/**
 * hangar-agent's file subcommands against the scripts they replace. Every case builds a
 * small tree, copies it (cp -a: same modes, owners, times), runs the script of
 * FILE_SCRIPTS under the host's busybox (the `base` template's: busybox-static) on one copy
 * and `agent-fileops-test file OP` on the other, then asserts the same exit status, the
 * same stdout, the same stderr and the same resulting tree. Times the operation itself
 * set (a new file's mtime) cannot match between two runs; every other time is fixed in
 * the past first, so only "recent" ones are masked. Runs on the host, as root for the
 * cases that mount a small tmpfs (a full disk, a read-only file system, another device).
 *
 * The binary is built by `agent/build.sh --test`; HANGAR_AGENT_BIN names another one to
 * test instead (the real hangar-agent, or a sanitizer build), with the same subcommands.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  chownSync,
  closeSync,
  openSync,
  lstatSync,
  lutimesSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  renameSync,
  rmSync,
  symlinkSync,
  writeFileSync,
  linkSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { FILE_SCRIPTS, SCRIPT_EXIT, scriptFailure, type FileOperation } from '../../src/service/file-scripts.js';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const BUSYBOX = ['/bin/busybox', '/usr/bin/busybox'].find((p) => spawnSync(p, ['true']).status === 0);
const CC = spawnSync('cc', ['--version']).status === 0;
const ROOT_USER = process.getuid?.() === 0;
const NOBODY = 65534;
const GIVEN_BIN = process.env.HANGAR_AGENT_BIN;

/** The binary under test: HANGAR_AGENT_BIN, or agent-fileops-test built into `dir`. */
function agentBinary(dir: string): string {
  if (GIVEN_BIN) return GIVEN_BIN;
  const out = join(dir, 'agent-fileops-test');
  sh('bash', [join(REPO, 'agent/build.sh'), '--test', out]);
  return out;
}
/** Every time a fixture has, so that any other time was set by the operation under test. */
const FIXED_TIME = 981173106.5;

type Op = Exclude<FileOperation, 'archive' | 'extract'>;

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  out: Buffer;
  err: string;
}

interface Mount {
  /** Relative to the case's root (an empty directory the setup made). */
  at: string;
  /** tmpfs options, e.g. "size=64k". */
  options: string;
  /** Fills the file system once mounted (on both sides). */
  setup?: (dir: string) => void;
  readOnly?: boolean;
}

interface Case {
  name: string;
  setup?: (root: string) => void;
  /** After the fixed times are set (to set other ones). */
  times?: (root: string) => void;
  mounts?: Mount[];
  op: Op;
  args: (root: string) => string[];
  input?: Buffer | string;
  /** stdin a regular file holding `input` (default: a pipe). */
  stdinFile?: boolean;
  uid?: number;
  /** The umask both run with (default: the test's). */
  umask?: number;
  /** What the script is known to answer (documents the case; both must give it). */
  code: number;
  check?: (run: Run, root: string) => void;
}

let work = '';
let bin = '';
let agent = '';
let canMount = false;
const mounted: string[] = [];

function env(): NodeJS.ProcessEnv {
  return { PATH: bin, TZ: 'UTC0', LC_ALL: 'C' };
}

function asRun(r: SpawnSyncReturns<Buffer>): Run {
  // EPIPE: it ended before reading all its stdin (a refused write), as it may.
  if (r.error && (r.error as NodeJS.ErrnoException).code !== 'EPIPE') throw r.error;
  return { code: r.status, signal: r.signal, out: r.stdout, err: r.stderr.toString('utf8') };
}

function ids(uid: number | undefined): { uid?: number; gid?: number } {
  return uid === undefined ? {} : { uid, gid: uid };
}

interface RunOptions {
  input?: Buffer | string;
  stdinFile?: boolean;
  uid?: number;
  umask?: number;
}

/** Runs argv as the file service runs a script: cwd /, the scripts' environment, stdin from a pipe (or a file). */
function run(argv: string[], o: RunOptions = {}): Run {
  if (o.umask !== undefined) argv = [join(bin, 'sh'), '-c', `umask ${o.umask.toString(8)}; exec "$@"`, 'sh', ...argv];
  let fd: number | undefined;
  if (o.stdinFile) {
    const file = join(work, `stdin-${process.pid}`);
    writeFileSync(file, o.input ?? '');
    fd = openSync(file, 'r');
    rmSync(file);
  }
  try {
    const common = { env: env(), cwd: '/', maxBuffer: 1 << 30, ...ids(o.uid) };
    const r = fd === undefined ? spawnSync(argv[0]!, argv.slice(1), { ...common, input: o.input ?? '' }) : spawnSync(argv[0]!, argv.slice(1), { ...common, stdio: [fd, 'pipe', 'pipe'] });
    return asRun(r);
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

function runScript(op: Op, args: string[], o: RunOptions = {}): Run {
  return run([join(bin, 'sh'), '-c', FILE_SCRIPTS[op], 'hangar-files', ...args], o);
}

function runAgent(op: Op, args: string[], o: RunOptions = {}): Run {
  return run([agent, 'file', op, ...args], o);
}

function sh(cmd: string, args: string[]): void {
  const r = spawnSync(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr.toString()}`);
}

/** `dir`/`name` for names that need not be UTF-8. */
function child(dir: Buffer, name: Buffer): Buffer {
  return Buffer.concat([dir, Buffer.from('/'), name]);
}

/** Every time under `p` set to FIXED_TIME (children first, so the directories keep it). */
function fixTimes(p: Buffer | string): void {
  const b = Buffer.from(p);
  if (lstatSync(b).isDirectory()) for (const name of readdirSync(b, { encoding: 'buffer' })) fixTimes(child(b, name));
  lutimesSync(b, FIXED_TIME, FIXED_TIME);
}

/** The tree under `root` as lines: path, mode, size, owner, links, mtime (or "recent"), content or target. */
function snapshot(root: string, recentNs: bigint): string[] {
  const lines: string[] = [];
  const walk = (p: Buffer, rel: string): void => {
    const st = lstatSync(p, { bigint: true });
    let body = '';
    if (st.isFile()) body = createHash('sha256').update(readFileSync(p)).digest('hex');
    else if (st.isSymbolicLink()) body = readlinkSync(p, { encoding: 'buffer' }).toString('latin1');
    const mtime = st.mtimeNs >= recentNs ? 'recent' : String(st.mtimeNs);
    lines.push(JSON.stringify([rel, st.mode.toString(8), String(st.size), `${st.uid}:${st.gid}`, String(st.nlink), mtime, body]));
    if (st.isDirectory()) for (const name of readdirSync(p, { encoding: 'buffer' }).sort(Buffer.compare)) walk(child(p, name), `${rel}/${name.toString('latin1')}`);
  };
  walk(Buffer.from(root), '');
  return lines;
}

/** Stat lines' times the operation set, as "recent" (they differ between two runs by nature). */
function maskRecent(out: Buffer, recentNs: bigint): string {
  return out.toString('latin1').replace(/(\d{4})-(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d)\.(\d{9}) \+0000/g, (all, y, mo, d, h, mi, s, ns: string) => {
    const sec = BigInt(Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s)) / 1000);
    return sec * 1_000_000_000n + BigInt(ns) >= recentNs ? 'recent +0000' : all;
  });
}

let caseNo = 0;

/** Builds the case twice (S for the script, A for the agent), runs both, and compares everything. */
function compare(c: Case): { script: Run; agent: Run; sRoot: string; aRoot: string } {
  const dir = join(work, `case-${++caseNo}`);
  const sRoot = join(dir, 'S');
  const aRoot = join(dir, 'A');
  mkdirSync(sRoot, { recursive: true });
  chmodSync(dir, 0o755);
  chmodSync(sRoot, 0o755);
  c.setup?.(sRoot);
  fixTimes(sRoot);
  c.times?.(sRoot);
  sh('cp', ['-a', sRoot, aRoot]);
  for (const m of c.mounts ?? []) {
    for (const root of [sRoot, aRoot]) {
      const at = join(root, m.at);
      sh('mount', ['-t', 'tmpfs', '-o', `${m.options},mode=0755`, 'tmpfs', at]);
      mounted.push(at);
      m.setup?.(at);
      fixTimes(at);
      if (m.readOnly) sh('mount', ['-o', 'remount,ro', at]);
    }
  }
  // Filesystem timestamps come from a coarse clock that may lag: anything after the fixtures is "recent".
  const recentNs = BigInt(Math.floor(FIXED_TIME + 3600)) * 1_000_000_000n;
  const script = runScript(c.op, c.args(sRoot), c);
  const agentRun = runAgent(c.op, c.args(aRoot), c);
  const why = `${c.name}\nscript stderr: ${script.err}\nagent stderr: ${agentRun.err}`;
  assert.equal(script.code, c.code, `the script's exit status — ${why}`);
  assert.equal(agentRun.signal, script.signal, why);
  assert.equal(agentRun.code, script.code, `exit status — ${why}`);
  if (c.op === 'read') assert.ok(agentRun.out.equals(script.out), `stdout — ${c.name}`);
  else assert.equal(maskRecent(agentRun.out, recentNs), maskRecent(script.out, recentNs), `stdout — ${c.name}`);
  // The same messages (in the order readdir gave the entries, which may differ between the two copies).
  const lines = (s: string, root: string): string[] => s.split(root).join('<ROOT>').split('\n').filter(Boolean).sort();
  assert.deepEqual(lines(agentRun.err, aRoot), lines(script.err, sRoot), `stderr — ${c.name}`);
  const ctx = { machineId: 'm', action: c.op, path: '/p', to: '/q' };
  assert.equal(scriptFailure(agentRun.code ?? -1, agentRun.err, ctx).code, scriptFailure(script.code ?? -1, script.err, ctx).code, why);
  assert.deepEqual(snapshot(aRoot, recentNs), snapshot(sRoot, recentNs), `resulting tree — ${c.name}`);
  c.check?.(agentRun, aRoot);
  return { script, agent: agentRun, sRoot, aRoot };
}

// ---------------------------------------------------------------- fixtures

const ODD_NAMES = ['with space', 'new\nline', 'ünïcødé-名前', '-dash', '*', "quo'te", 'back\\slash', 'tab\there'];

function tree(root: string): void {
  mkdirSync(join(root, 'dir/sub/deeper'), { recursive: true });
  writeFileSync(join(root, 'file'), 'hello\n');
  chmodSync(join(root, 'file'), 0o640);
  writeFileSync(join(root, 'empty'), '');
  writeFileSync(join(root, 'dir/a'), 'a');
  writeFileSync(join(root, 'dir/sub/b'), 'bb');
  writeFileSync(join(root, 'dir/sub/deeper/c'), 'ccc');
  writeFileSync(join(root, 'dir/.hidden'), 'h');
  symlinkSync('file', join(root, 'link'));
  symlinkSync('dir', join(root, 'linkdir'));
  symlinkSync('nowhere', join(root, 'dangling'));
  symlinkSync('loop', join(root, 'loop'));
  // Outside the trees removed below: a symlink into it must be removed, never followed.
  mkdirSync(join(root, 'keep/inner'), { recursive: true });
  writeFileSync(join(root, 'keep/inner/precious'), 'do not remove');
  symlinkSync('../../keep', join(root, 'dir/sub/to-keep'));
  symlinkSync('../../keep/inner/precious', join(root, 'dir/sub/to-precious'));
  sh('mkfifo', [join(root, 'fifo')]);
  socket(join(root, 'socket'));
}

/** A unix socket left behind by a process that listened on it. */
function socket(path: string): void {
  sh(process.execPath, ['-e', `require('node:net').createServer().listen(${JSON.stringify(path)}, () => process.exit(0))`]);
}

function odd(root: string): void {
  mkdirSync(join(root, 'odd'));
  for (const n of ODD_NAMES) writeFileSync(join(root, 'odd', n), n);
  mkdirSync(join(root, 'odd', 'dir with space'));
  // Not UTF-8: names are bytes.
  writeFileSync(child(Buffer.from(join(root, 'odd')), Buffer.from([0xff, 0x41, 0x80])), 'latin');
}

function bytes(n: number, seed = 1): Buffer {
  const b = Buffer.alloc(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    b[i] = x >>> 24;
  }
  return b;
}

const ALL_BYTES = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
const MIB8 = bytes(8 * 1024 * 1024, 7);

// ---------------------------------------------------------------- the cases

const TMP = '.hangar-upload-0123456789abcdef';

const CASES: Case[] = [
  // stat
  ...['file', 'empty', 'dir', 'link', 'linkdir', 'dangling', 'loop', 'fifo', 'dir/sub/deeper/c', 'linkdir/a', 'linkdir/', 'dir/'].map(
    (p): Case => ({ name: `stat ${p}`, setup: tree, op: 'stat', args: (r) => [`${r}/${p}`], code: 0 }),
  ),
  ...['missing', 'missing/x', 'file/x', 'dangling/x', 'file/'].map((p): Case => ({ name: `stat ${p}`, setup: tree, op: 'stat', args: (r) => [`${r}/${p}`], code: 3 })),
  { name: 'stat ""', op: 'stat', args: () => [''], code: 3 },
  { name: 'stat a socket', setup: tree, op: 'stat', args: (r) => [`${r}/socket`], code: 0 },
  { name: 'stat a file from before 1970', setup: tree, times: (r) => lutimesSync(join(r, 'file'), -86400 * 365 * 3 - 0.25, -86400 * 365 * 3 - 0.25), op: 'stat', args: (r) => [`${r}/file`], code: 0 },
  { name: 'stat a file from 2500', setup: tree, times: (r) => lutimesSync(join(r, 'file'), 16725225600.75, 16725225600.75), op: 'stat', args: (r) => [`${r}/file`], code: 0 },
  { name: 'stat a name too long', setup: tree, op: 'stat', args: (r) => [`${r}/${'n'.repeat(256)}`], code: 3 },
  { name: 'stat a relative path', setup: tree, op: 'stat', args: (r) => [`${r.slice(1)}/file`], code: 0 },
  { name: 'stat of odd names', setup: odd, op: 'stat', args: (r) => [`${r}/odd/new\nline`], code: 0 },
  { name: 'stat in a directory nobody may search', setup: (r) => (tree(r), chmodSync(join(r, 'dir'), 0o700)), op: 'stat', args: (r) => [`${r}/dir/a`], uid: NOBODY, code: 3 },

  // list
  { name: 'list a tree', setup: tree, op: 'list', args: (r) => [r], code: 0 },
  { name: 'list a directory', setup: tree, op: 'list', args: (r) => [`${r}/dir`], code: 0 },
  { name: 'list odd names', setup: odd, op: 'list', args: (r) => [`${r}/odd`], code: 0 },
  { name: 'list through a symlink to a directory', setup: tree, op: 'list', args: (r) => [`${r}/linkdir`], code: 0 },
  { name: 'list an empty directory', setup: (r) => mkdirSync(join(r, 'e')), op: 'list', args: (r) => [`${r}/e`], code: 0 },
  { name: 'list only dot files', setup: (r) => (mkdirSync(join(r, 'e')), writeFileSync(join(r, 'e/.x'), '')), op: 'list', args: (r) => [`${r}/e`], code: 0 },
  { name: 'list a file', setup: tree, op: 'list', args: (r) => [`${r}/file`], code: 5 },
  { name: 'list a fifo', setup: tree, op: 'list', args: (r) => [`${r}/fifo`], code: 5 },
  { name: 'list a dangling symlink', setup: tree, op: 'list', args: (r) => [`${r}/dangling`], code: 3 },
  { name: 'list a missing path', setup: tree, op: 'list', args: (r) => [`${r}/missing`], code: 3 },
  { name: 'list ""', op: 'list', args: () => [''], code: 3 },
  { name: 'list a relative path', setup: tree, op: 'list', args: (r) => [`${r.slice(1)}/dir`], code: 0 },
  // cd is logical: "far/.." is the directory holding far, not the parent of far's target.
  { name: 'list through a symlink and ..', setup: (r) => (tree(r), symlinkSync('dir/sub', join(r, 'far'))), op: 'list', args: (r) => [`${r}/far/..`], code: 0 },
  {
    name: 'list a directory nobody may search (cd fails)',
    setup: (r) => (tree(r), chmodSync(join(r, 'dir'), 0o744)),
    op: 'list',
    args: (r) => [`${r}/dir`],
    uid: NOBODY,
    code: 9,
  },
  {
    name: 'list a directory nobody may not read (the glob finds nothing)',
    setup: (r) => (tree(r), chmodSync(join(r, 'dir'), 0o711)),
    op: 'list',
    args: (r) => [`${r}/dir`],
    uid: NOBODY,
    code: 0,
  },

  // mkdir
  { name: 'mkdir nested', setup: tree, op: 'mkdir', args: (r) => [`${r}/new/a/b`], code: 0 },
  { name: 'mkdir existing', setup: tree, op: 'mkdir', args: (r) => [`${r}/dir`], code: 0 },
  { name: 'mkdir through a symlink to a directory', setup: tree, op: 'mkdir', args: (r) => [`${r}/linkdir`], code: 0 },
  { name: 'mkdir under a symlink to a directory', setup: tree, op: 'mkdir', args: (r) => [`${r}/linkdir/x/y`], code: 0 },
  { name: 'mkdir over a file', setup: tree, op: 'mkdir', args: (r) => [`${r}/file`], code: 5 },
  { name: 'mkdir over a dangling symlink', setup: tree, op: 'mkdir', args: (r) => [`${r}/dangling`], code: 5 },
  { name: 'mkdir under a file', setup: tree, op: 'mkdir', args: (r) => [`${r}/file/x/y`], code: 9 },
  { name: 'mkdir under a dangling symlink', setup: tree, op: 'mkdir', args: (r) => [`${r}/dangling/x`], code: 9 },
  { name: 'mkdir ""', op: 'mkdir', args: () => [''], code: 9 },
  { name: 'mkdir with a strict umask (parents stay usable)', setup: tree, op: 'mkdir', args: (r) => [`${r}/u/v/w`], umask: 0o377, code: 0 },
  { name: 'mkdir with umask 027', setup: tree, op: 'mkdir', args: (r) => [`${r}/u/v/w`], umask: 0o027, code: 0 },
  { name: 'mkdir a name too long', setup: tree, op: 'mkdir', args: (r) => [`${r}/${'n'.repeat(256)}/x`], code: 9 },
  { name: 'mkdir a relative path', setup: tree, op: 'mkdir', args: (r) => [`${r.slice(1)}/rel/x`], code: 0 },
  { name: 'mkdir odd names', setup: odd, op: 'mkdir', args: (r) => [`${r}/odd/new\nline dir/ü`], code: 0 },
  { name: 'mkdir where nobody may not write', setup: tree, op: 'mkdir', args: (r) => [`${r}/dir/x/y`], uid: NOBODY, code: 9 },

  // remove
  ...['file', 'empty', 'link', 'dangling', 'loop', 'fifo', 'linkdir', 'dir', 'dir/sub', 'linkdir/', 'odd'].map(
    (p): Case => ({
      name: `remove ${p}`,
      setup: (r) => (tree(r), odd(r)),
      op: 'remove',
      args: (r) => [`${r}/${p}`],
      code: 0,
      check: (_run, r) => assert.equal(readFileSync(join(r, 'keep/inner/precious'), 'utf8'), 'do not remove'),
    }),
  ),
  ...['missing', 'file/', 'dangling/', 'missing/x'].map((p): Case => ({ name: `remove ${p}`, setup: tree, op: 'remove', args: (r) => [`${r}/${p}`], code: 3 })),
  { name: 'remove a path ending in ..', setup: tree, op: 'remove', args: (r) => [`${r}/dir/..`], code: 9 },
  { name: 'remove a socket', setup: tree, op: 'remove', args: (r) => [`${r}/socket`], code: 0 },
  { name: 'remove a relative path', setup: tree, op: 'remove', args: (r) => [`${r.slice(1)}/dir`], code: 0 },
  { name: 'remove a path ending in .', setup: tree, op: 'remove', args: (r) => [`${r}/dir/.`], code: 9 },
  {
    name: 'remove a tree nobody owns only in part',
    setup: (r) => {
      tree(r);
      for (const p of ['dir', 'dir/sub', 'dir/sub/deeper']) chownSync(join(r, p), NOBODY, NOBODY);
      mkdirSync(join(r, 'dir/rootsub'));
      writeFileSync(join(r, 'dir/rootsub/x'), 'x');
      writeFileSync(join(r, 'dir/rootsub/y'), 'y');
    },
    op: 'remove',
    args: (r) => [`${r}/dir`],
    uid: NOBODY,
    code: 9,
  },

  // move
  { name: 'move a file', setup: tree, op: 'move', args: (r) => [`${r}/file`, `${r}/dir/moved`], code: 0 },
  { name: 'move a directory', setup: tree, op: 'move', args: (r) => [`${r}/dir`, `${r}/keep/dir2`], code: 0 },
  { name: 'move a symlink (not its target)', setup: tree, op: 'move', args: (r) => [`${r}/linkdir`, `${r}/keep/l`], code: 0 },
  { name: 'move a dangling symlink', setup: tree, op: 'move', args: (r) => [`${r}/dangling`, `${r}/d2`], code: 0 },
  { name: 'move odd names', setup: odd, op: 'move', args: (r) => [`${r}/odd/new\nline`, `${r}/odd/tab\tnew`], code: 0 },
  { name: 'move a missing path', setup: tree, op: 'move', args: (r) => [`${r}/missing`, `${r}/x`], code: 3 },
  ...['file', 'dir', 'dangling', 'link'].map((to): Case => ({ name: `move onto an existing ${to}`, setup: tree, op: 'move', args: (r) => [`${r}/empty`, `${r}/${to}`], code: 7 })),
  { name: 'move into a missing directory', setup: tree, op: 'move', args: (r) => [`${r}/file`, `${r}/missing/x`], code: 10 },
  { name: 'move under a file', setup: tree, op: 'move', args: (r) => [`${r}/empty`, `${r}/file/x`], code: 11 },
  { name: 'move under a dangling symlink', setup: tree, op: 'move', args: (r) => [`${r}/empty`, `${r}/dangling/x`], code: 11 },
  { name: 'move to a name without a slash', setup: tree, op: 'move', args: (r) => [`${r}/empty`, 'relative'], code: 10 },
  { name: 'move a directory into itself (through a symlink)', setup: tree, op: 'move', args: (r) => [`${r}/dir`, `${r}/linkdir/sub/in`], code: 9 },
  { name: 'move relative paths', setup: tree, op: 'move', args: (r) => [`${r.slice(1)}/file`, `${r.slice(1)}/dir/f`], code: 0 },
  { name: 'move where nobody may not write', setup: tree, op: 'move', args: (r) => [`${r}/dir/a`, `${r}/dir/b`], uid: NOBODY, code: 9 },

  // write
  { name: 'write a new file', setup: tree, op: 'write', args: (r) => [`${r}/dir/new`, TMP, '5'], input: 'hello', code: 0 },
  { name: 'write without a size', setup: tree, op: 'write', args: (r) => [`${r}/dir/new`, TMP, ''], input: 'hello', code: 0 },
  { name: 'write an empty file', setup: tree, op: 'write', args: (r) => [`${r}/dir/new`, TMP, '0'], input: '', code: 0 },
  { name: 'write every byte value', setup: tree, op: 'write', args: (r) => [`${r}/bin`, TMP, '256'], input: ALL_BYTES, code: 0 },
  { name: 'write 8 MiB', setup: tree, op: 'write', args: (r) => [`${r}/big`, TMP, String(MIB8.length)], input: MIB8, code: 0 },
  { name: 'write into new nested directories', setup: tree, op: 'write', args: (r) => [`${r}/n1/n2/n3/f`, TMP, '3'], input: 'abc', code: 0 },
  { name: 'write a short body', setup: tree, op: 'write', args: (r) => [`${r}/file`, TMP, '9'], input: 'abc', code: 8 },
  { name: 'write a long body', setup: tree, op: 'write', args: (r) => [`${r}/file`, TMP, '2'], input: 'abc', code: 8 },
  { name: 'write a size written otherwise', setup: tree, op: 'write', args: (r) => [`${r}/file`, TMP, '03'], input: 'abc', code: 8 },
  { name: 'write a short body into new directories (they go again)', setup: tree, op: 'write', args: (r) => [`${r}/n1/n2/f`, TMP, '9'], input: 'abc', code: 8 },
  {
    name: 'write keeps the mode of the file it replaces',
    setup: (r) => (tree(r), chmodSync(join(r, 'file'), 0o4751)),
    op: 'write',
    args: (r) => [`${r}/file`, TMP, '1'],
    input: 'x',
    code: 0,
    check: (_run, r) => assert.equal(lstatSync(join(r, 'file')).mode & 0o7777, 0o4751),
  },
  {
    name: 'write replaces a symlink, not its target',
    setup: tree,
    op: 'write',
    args: (r) => [`${r}/link`, TMP, '1'],
    input: 'x',
    code: 0,
    check: (_run, r) => assert.equal(readFileSync(join(r, 'file'), 'utf8'), 'hello\n'),
  },
  { name: 'write over a dangling symlink', setup: tree, op: 'write', args: (r) => [`${r}/dangling`, TMP, ''], input: 'x', code: 0 },
  { name: 'write over a symlink loop', setup: tree, op: 'write', args: (r) => [`${r}/loop`, TMP, ''], input: 'x', code: 9 },
  { name: 'write over a fifo', setup: tree, op: 'write', args: (r) => [`${r}/fifo`, TMP, ''], input: 'x', code: 0 },
  { name: 'write a directory', setup: tree, op: 'write', args: (r) => [`${r}/dir`, TMP, ''], input: 'x', code: 4 },
  { name: 'write a symlink to a directory', setup: tree, op: 'write', args: (r) => [`${r}/linkdir`, TMP, ''], input: 'x', code: 4 },
  { name: 'write under a file', setup: tree, op: 'write', args: (r) => [`${r}/file/x`, TMP, ''], input: 'x', code: 5 },
  { name: 'write under a file, deeper', setup: tree, op: 'write', args: (r) => [`${r}/file/x/y`, TMP, ''], input: 'x', code: 5 },
  { name: 'write under a dangling symlink', setup: tree, op: 'write', args: (r) => [`${r}/dangling/x/y`, TMP, ''], input: 'x', code: 5 },
  { name: 'write through a symlink to a directory', setup: tree, op: 'write', args: (r) => [`${r}/linkdir/x`, TMP, '1'], input: 'x', code: 0 },
  { name: 'write odd names', setup: odd, op: 'write', args: (r) => [`${r}/odd/new\nline`, TMP, '2'], input: 'zz', code: 0 },
  { name: 'write into new odd directories', setup: odd, op: 'write', args: (r) => [`${r}/odd/ü d/\n/*`, TMP, '2'], input: 'zz', code: 0 },
  {
    name: 'write when the temporary name is taken',
    setup: (r) => (tree(r), writeFileSync(join(r, 'dir', TMP), 'old')),
    op: 'write',
    args: (r) => [`${r}/dir/new`, TMP, ''],
    input: 'x',
    code: 9,
  },
  { name: 'write where nobody may not write', setup: tree, op: 'write', args: (r) => [`${r}/dir/new`, TMP, ''], input: 'x', uid: NOBODY, code: 9 },
  {
    name: 'write where nobody may not search',
    setup: (r) => (tree(r), chmodSync(join(r, 'dir'), 0o766)),
    op: 'write',
    args: (r) => [`${r}/dir/new`, TMP, ''],
    input: 'x',
    uid: NOBODY,
    code: 9,
  },
  { name: 'write new directories where nobody may not write', setup: tree, op: 'write', args: (r) => [`${r}/dir/n/f`, TMP, ''], input: 'x', uid: NOBODY, code: 9 },

  // cleanup
  { name: 'cleanup a temporary file', setup: (r) => (tree(r), writeFileSync(join(r, TMP), 'partial')), op: 'cleanup', args: (r) => [`${r}/${TMP}`], code: 0 },
  { name: 'cleanup a missing file', setup: tree, op: 'cleanup', args: (r) => [`${r}/${TMP}`], code: 0 },
  { name: 'cleanup a symlink', setup: tree, op: 'cleanup', args: (r) => [`${r}/linkdir`], code: 0 },
  { name: 'cleanup a directory', setup: tree, op: 'cleanup', args: (r) => [`${r}/dir`], code: 1 },
  { name: 'cleanup where nobody may not write', setup: tree, op: 'cleanup', args: (r) => [`${r}/dir/a`], uid: NOBODY, code: 1 },

  // read
  { name: 'read a file', setup: tree, op: 'read', args: (r) => [`${r}/file`], code: 0 },
  { name: 'read an empty file', setup: tree, op: 'read', args: (r) => [`${r}/empty`], code: 0 },
  { name: 'read every byte value', setup: (r) => writeFileSync(join(r, 'bin'), ALL_BYTES), op: 'read', args: (r) => [`${r}/bin`], code: 0 },
  { name: 'read 8 MiB', setup: (r) => writeFileSync(join(r, 'big'), MIB8), op: 'read', args: (r) => [`${r}/big`], code: 0, check: (run) => assert.equal(run.out.length, MIB8.length + 8) },
  { name: 'read through a symlink', setup: tree, op: 'read', args: (r) => [`${r}/link`], code: 0 },
  { name: 'read odd names', setup: odd, op: 'read', args: (r) => [`${r}/odd/new\nline`], code: 0 },
  { name: 'read a directory', setup: tree, op: 'read', args: (r) => [`${r}/dir`], code: 4 },
  { name: 'read a symlink to a directory', setup: tree, op: 'read', args: (r) => [`${r}/linkdir`], code: 4 },
  { name: 'read a fifo', setup: tree, op: 'read', args: (r) => [`${r}/fifo`], code: 6 },
  { name: 'read a device', op: 'read', args: () => ['/dev/null'], code: 6 },
  { name: 'read a missing file', setup: tree, op: 'read', args: (r) => [`${r}/missing`], code: 3 },
  { name: 'read a dangling symlink', setup: tree, op: 'read', args: (r) => [`${r}/dangling`], code: 3 },
  { name: 'read ""', op: 'read', args: () => [''], code: 3 },
  { name: 'read a socket', setup: tree, op: 'read', args: (r) => [`${r}/socket`], code: 6 },
  { name: 'read a relative path', setup: tree, op: 'read', args: (r) => [`${r.slice(1)}/file`], code: 0 },
  { name: 'read a file nobody may not read', setup: (r) => (tree(r), chmodSync(join(r, 'file'), 0o600)), op: 'read', args: (r) => [`${r}/file`], uid: NOBODY, code: 1 },
];

/** Cases on small tmpfs mounts: another device, a full disk, a read-only file system. */
const MOUNT_CASES: Case[] = [
  {
    name: 'move a tree to another file system (copied: times, modes, owners, hard links, symlinks, fifos)',
    setup: (r) => {
      tree(r);
      mkdirSync(join(r, 'mnt'));
      linkSync(join(r, 'dir/a'), join(r, 'dir/sub/hardlink'));
      chmodSync(join(r, 'dir/sub'), 0o2750);
      chownSync(join(r, 'dir/sub/b'), 1234, 5678);
      sh('mkfifo', [join(r, 'dir/fifo')]);
      socket(join(r, 'dir/socket'));
      sh('mknod', [join(r, 'dir/null'), 'c', '1', '3']);
      symlinkSync('a', join(r, 'dir/sub/rel-link'));
      chmodSync(join(r, 'dir/a'), 0o4755);
    },
    mounts: [{ at: 'mnt', options: 'size=4m' }],
    op: 'move',
    args: (r) => [`${r}/dir`, `${r}/mnt/moved`],
    code: 0,
    check: (_run, r) => assert.equal(lstatSync(join(r, 'mnt/moved/a')).nlink, 2),
  },
  {
    name: 'move a file to another file system',
    setup: (r) => (tree(r), mkdirSync(join(r, 'mnt'))),
    mounts: [{ at: 'mnt', options: 'size=4m' }],
    op: 'move',
    args: (r) => [`${r}/file`, `${r}/mnt/f`],
    code: 0,
  },
  {
    name: 'move a symlink to another file system',
    setup: (r) => (tree(r), mkdirSync(join(r, 'mnt'))),
    mounts: [{ at: 'mnt', options: 'size=4m' }],
    op: 'move',
    args: (r) => [`${r}/linkdir`, `${r}/mnt/l`],
    code: 0,
  },
  {
    name: 'move a tree to a file system too small for it (the partial copy stays, the source too)',
    setup: (r) => {
      mkdirSync(join(r, 'src'));
      for (const n of ['1', '2', '3']) writeFileSync(join(r, 'src', n), bytes(48 * 1024, Number(n)));
      mkdirSync(join(r, 'mnt'));
    },
    mounts: [{ at: 'mnt', options: 'size=64k' }],
    op: 'move',
    args: (r) => [`${r}/src`, `${r}/mnt/dst`],
    code: 9,
  },
  {
    name: 'write to a full disk',
    setup: (r) => mkdirSync(join(r, 'mnt')),
    mounts: [{ at: 'mnt', options: 'size=64k', setup: (d) => writeFileSync(join(d, 'old'), 'old') }],
    op: 'write',
    args: (r) => [`${r}/mnt/old`, TMP, String(256 * 1024)],
    input: bytes(256 * 1024),
    code: 9,
    check: (run, r) => {
      assert.match(run.err, /No space left on device/);
      assert.equal(readFileSync(join(r, 'mnt/old'), 'utf8'), 'old');
    },
  },
  {
    // The script makes the parents with mkdir -p and does not clean up when that fails: neither does the agent.
    name: 'write into new directories on a disk out of inodes (the ones made stay)',
    setup: (r) => mkdirSync(join(r, 'mnt')),
    mounts: [{ at: 'mnt', options: 'size=64k,nr_inodes=4' }],
    op: 'write',
    args: (r) => [`${r}/mnt/a/b/c/d/f`, TMP, ''],
    input: 'x',
    code: 9,
    check: (run) => assert.match(run.err, /No space left on device/),
  },
  {
    name: 'write to a full disk in new directories (they go again)',
    setup: (r) => mkdirSync(join(r, 'mnt')),
    mounts: [{ at: 'mnt', options: 'size=64k' }],
    op: 'write',
    args: (r) => [`${r}/mnt/a/b/f`, TMP, ''],
    input: bytes(256 * 1024),
    code: 9,
  },
  ...(['write', 'mkdir', 'remove', 'move', 'cleanup'] as const).map(
    (op): Case => ({
      name: `${op} on a read-only file system`,
      setup: (r) => mkdirSync(join(r, 'mnt')),
      mounts: [{ at: 'mnt', options: 'size=64k', readOnly: true, setup: (d) => (mkdirSync(join(d, 'd')), writeFileSync(join(d, 'd/f'), 'f')) }],
      op,
      args: (r) => (op === 'move' ? [`${r}/mnt/d/f`, `${r}/mnt/g`] : op === 'remove' ? [`${r}/mnt/d`] : op === 'cleanup' ? [`${r}/mnt/d/f`] : [`${r}/mnt/d/n/f`, TMP, '1']),
      input: 'x',
      code: op === 'cleanup' ? 1 : 9,
      check: (run) => assert.match(run.err, /Read-only file system/),
    }),
  ),
];

describe('hangar-agent file subcommands reproduce the file scripts', { skip: (!BUSYBOX || (!CC && !GIVEN_BIN)) && 'needs busybox and a C compiler' }, () => {
  before(() => {
    work = mkdtempSync(join(tmpdir(), 'hangar-agentfs-'));
    chmodSync(work, 0o755);
    bin = join(work, 'bin');
    mkdirSync(bin);
    // The machine's tools: busybox applets, found by the scripts' PATH.
    sh(BUSYBOX!, ['--install', '-s', bin]);
    agent = agentBinary(work);
    if (ROOT_USER) {
      const probe = join(work, 'probe');
      mkdirSync(probe);
      canMount = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', probe]).status === 0;
      if (canMount) sh('umount', [probe]);
    }
  });

  after(() => {
    for (const m of mounted.reverse()) spawnSync('umount', ['-l', m]);
    // Trees deeper than PATH_MAX are beyond rmSync: the agent removes them.
    for (const side of ['S', 'A']) if (agent) spawnSync(agent, ['file', 'remove', join(work, `deep-${side}`)]);
    if (work) rmSync(work, { recursive: true, force: true });
  });

  for (const c of CASES) {
    it(c.name, { skip: c.uid !== undefined && !ROOT_USER && 'runs as nobody: needs root' }, () => {
      compare(c);
    });
  }

  for (const c of MOUNT_CASES) {
    it(c.name, { skip: !ROOT_USER && 'mounts a tmpfs: needs root' }, (t) => {
      if (!canMount) return t.skip('cannot mount a tmpfs here');
      compare(c);
    });
  }

  it('every exit status of SCRIPT_EXIT is met by some case', () => {
    const codes = new Set([...CASES, ...MOUNT_CASES].map((c) => c.code));
    for (const code of Object.values(SCRIPT_EXIT)) assert.ok(codes.has(code), `exit ${code}`);
  });

  it('answers 3 for a relative path whose first name is missing, where the script never ends (a deliberate difference)', () => {
    const args = ['no-such-top/f', TMP, ''];
    const script = spawnSync(join(bin, 'sh'), ['-c', FILE_SCRIPTS.write, 'hangar-files', ...args], { input: 'x', env: env(), cwd: '/', timeout: 500 });
    assert.equal(script.signal, 'SIGTERM', 'the script loops until killed');
    const agentRun = runAgent('write', args, { input: 'x' });
    assert.equal(agentRun.code, 3);
    assert.match(agentRun.err, /No such file or directory/);
  });

  it('removes a tree deeper than PATH_MAX, which the script cannot (the one deliberate difference tested)', () => {
    const roots = ['S', 'A'].map((side) => join(work, `deep-${side}`));
    for (const r of roots) {
      mkdirSync(r);
      const make = 'cd "$1" && i=0 && while [ $i -lt 250 ]; do mkdir d0123456789abcdef && cd -P d0123456789abcdef || exit 1; i=$((i+1)); done && echo x > leaf';
      sh(join(bin, 'sh'), ['-c', make, 'sh', r]);
    }
    const script = runScript('remove', [roots[0]!]);
    assert.equal(script.code, 9);
    assert.match(script.err, /File name too long/);
    const agentRun = runAgent('remove', [roots[1]!]);
    assert.equal(agentRun.code, 0, agentRun.err);
    assert.throws(() => lstatSync(roots[1]!), /ENOENT/);
    // What the script left behind goes too (the agent does not mind its depth).
    assert.equal(runAgent('remove', [roots[0]!]).code, 0);
  });

  it('operations and arguments the scripts do not know', () => {
    assert.equal(spawnSync(agent, ['file', 'archive', '/']).status, 2);
    assert.equal(spawnSync(agent, ['file']).status, 2);
    if (!GIVEN_BIN) assert.equal(spawnSync(agent, ['nothing']).status, 2);
  });

  it('timings (printed, not asserted; best of 3): list of 1,000 entries, 100 MiB read and write through pipes', async () => {
    const dir = join(work, 'timing');
    mkdirSync(join(dir, 'many'), { recursive: true });
    for (let i = 0; i < 1000; i++) writeFileSync(join(dir, 'many', `entry-${i}`), String(i));
    const big = bytes(100 * 1024 * 1024, 3);
    writeFileSync(join(dir, 'big'), big);
    const time = (f: () => void, n: number): number => {
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < n; i++) f();
      return Number(process.hrtime.bigint() - t0) / 1e6 / n;
    };
    const listAgent = time(() => assert.equal(runAgent('list', [join(dir, 'many')]).code, 0), 10);
    const listScript = time(() => assert.equal(runScript('list', [join(dir, 'many')]).code, 0), 1);
    const agentList = runAgent('list', [join(dir, 'many')]).out;
    assert.equal(agentList.toString('latin1'), runScript('list', [join(dir, 'many')]).out.toString('latin1'));

    const streamRead = (argv: string[]): Promise<number> =>
      new Promise((done, fail) => {
        const t0 = process.hrtime.bigint();
        const p = spawn(argv[0]!, argv.slice(1), { env: env(), cwd: '/', stdio: ['ignore', 'pipe', 'inherit'] });
        let n = 0;
        p.stdout.on('data', (c: Buffer) => (n += c.length));
        p.on('error', fail);
        p.on('close', (code) => {
          if (code !== 0 || n !== big.length + 10) fail(new Error(`read: exit ${code}, ${n} bytes`));
          else done(Number(process.hrtime.bigint() - t0) / 1e6);
        });
      });
    const streamWrite = (argv: string[]): Promise<number> =>
      new Promise((done, fail) => {
        const t0 = process.hrtime.bigint();
        const p = spawn(argv[0]!, argv.slice(1), { env: env(), cwd: '/', stdio: ['pipe', 'ignore', 'inherit'] });
        p.on('error', fail);
        p.on('close', (code) => (code === 0 ? done(Number(process.hrtime.bigint() - t0) / 1e6) : fail(new Error(`write: exit ${code}`))));
        p.stdin.end(big);
      });
    const best = async (f: () => Promise<number>): Promise<number> => {
      let ms = Infinity;
      for (let i = 0; i < 3; i++) ms = Math.min(ms, await f());
      return ms;
    };
    const target = join(dir, 'written');
    const readAgent = await best(() => streamRead([agent, 'file', 'read', join(dir, 'big')]));
    const readScript = await best(() => streamRead([join(bin, 'sh'), '-c', FILE_SCRIPTS.read, 'hangar-files', join(dir, 'big')]));
    const writeAgent = await best(() => streamWrite([agent, 'file', 'write', target, TMP, String(big.length)]));
    assert.ok(readFileSync(target).equals(big));
    const writeScript = await best(() => streamWrite([join(bin, 'sh'), '-c', FILE_SCRIPTS.write, 'hangar-files', target, TMP, String(big.length)]));
    const mbps = (ms: number): string => `${(100 / (ms / 1000)).toFixed(0)} MiB/s`;
    console.log(
      [
        `list of 1,000 entries: agent ${listAgent.toFixed(1)} ms, script ${listScript.toFixed(0)} ms`,
        `read 100 MiB through a pipe: agent ${readAgent.toFixed(0)} ms (${mbps(readAgent)}), script ${readScript.toFixed(0)} ms (${mbps(readScript)})`,
        `write 100 MiB through a pipe: agent ${writeAgent.toFixed(0)} ms (${mbps(writeAgent)}), script ${writeScript.toFixed(0)} ms (${mbps(writeScript)})`,
      ].join('\n'),
    );
  });
});

describe('hangar-agent watch', { skip: !CC && !GIVEN_BIN && 'needs a C compiler' }, () => {
  let dir = '';
  let bin2 = '';
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'hangar-agent-watch-'));
    bin2 = agentBinary(dir);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('exits 3 for a missing path, 5 for a file', () => {
    writeFileSync(join(dir, 'f'), '');
    assert.equal(spawnSync(bin2, ['watch', join(dir, 'missing')]).status, 3);
    assert.equal(spawnSync(bin2, ['watch', join(dir, 'f')]).status, 5);
  });

  it('prints create, write, remove and rename events, below new subdirectories too, and exits 0 when stdout closes', async () => {
    const root = join(dir, 'w');
    mkdirSync(join(root, 'old/inner'), { recursive: true });
    const p = spawn(bin2, ['watch', root, '1'], { stdio: ['ignore', 'pipe', 'pipe'] });
    const lines: string[] = [];
    let pending = '';
    p.stdout.on('data', (c: Buffer) => {
      pending += c.toString('utf8');
      const parts = pending.split('\n');
      pending = parts.pop()!;
      lines.push(...parts);
    });
    const exited = new Promise<number | null>((done) => p.on('exit', (code) => done(code)));
    const waitFor = async (line: string | RegExp, poke?: () => void): Promise<void> => {
      for (let i = 0; i < 200; i++) {
        if (lines.some((l) => (typeof line === 'string' ? l === line : line.test(l)))) return;
        poke?.();
        await new Promise((r) => setTimeout(r, 25));
      }
      assert.fail(`no "${String(line)}" among:\n${lines.join('\n')}`);
    };
    // Ready once it sees a change: make new files until it does.
    let n = 0;
    await waitFor(/^create\t.*\/ready-\d+$/, () => writeFileSync(join(root, `ready-${n++}`), ''));
    writeFileSync(join(root, 'a.txt'), 'one');
    await waitFor(`create\t${root}/a.txt`);
    await waitFor(`write\t${root}/a.txt`);
    renameSync(join(root, 'a.txt'), join(root, 'b.txt'));
    await waitFor(`rename\t${root}/a.txt`);
    await waitFor(`rename\t${root}/b.txt`);
    rmSync(join(root, 'b.txt'));
    await waitFor(`remove\t${root}/b.txt`);
    // A subdirectory that was there at the start, one made now, and one made with content at once.
    writeFileSync(join(root, 'old/inner/x'), 'x');
    await waitFor(`create\t${root}/old/inner/x`);
    mkdirSync(join(root, 'new'));
    await waitFor(`create\t${root}/new`);
    writeFileSync(join(root, 'new/y'), 'y');
    await waitFor(`create\t${root}/new/y`);
    mkdirSync(join(root, 'nest/ed'), { recursive: true });
    await waitFor(`create\t${root}/nest`);
    await waitFor(`create\t${root}/nest/ed`);
    writeFileSync(join(root, 'nest/ed/z'), 'z');
    await waitFor(`create\t${root}/nest/ed/z`);
    // A directory renamed inside the tree is watched under its new name only.
    renameSync(join(root, 'new'), join(root, 'renamed'));
    await waitFor(`rename\t${root}/renamed`);
    writeFileSync(join(root, 'renamed/w'), 'w');
    await waitFor(`create\t${root}/renamed/w`);
    assert.ok(!lines.includes(`create\t${root}/new/w`));
    // Names that would break a line are escaped.
    writeFileSync(join(root, 'tab\tnew\nline'), '');
    await waitFor(`create\t${root}/tab\\tnew\\nline`);
    // The reader goes away: the watcher notices without waiting for another event.
    p.stdout.destroy();
    assert.equal(await exited, 0);
  });

  it('without "1", reports the directory\'s own entries only', async () => {
    const root = join(dir, 'flat');
    mkdirSync(join(root, 'sub'), { recursive: true });
    const p = spawn(bin2, ['watch', root], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (c: Buffer) => (out += c.toString('utf8')));
    for (let i = 0; i < 200 && !out.includes('ready'); i++) {
      writeFileSync(join(root, `ready-${i}`), '');
      await new Promise((r) => setTimeout(r, 25));
    }
    writeFileSync(join(root, 'sub/nested'), 'n');
    writeFileSync(join(root, 'last'), 'l');
    for (let i = 0; i < 200 && !out.includes(`create\t${root}/last\n`); i++) await new Promise((r) => setTimeout(r, 25));
    p.kill();
    assert.ok(out.includes(`create\t${root}/last\n`), out);
    assert.ok(!out.includes('nested'), out);
  });

  it('ends with a remove line when the directory itself is removed', async () => {
    const root = join(dir, 'gone');
    mkdirSync(root);
    const p = spawn(bin2, ['watch', root], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (c: Buffer) => (out += c.toString('utf8')));
    const exited = new Promise<number | null>((done) => p.on('exit', (code) => done(code)));
    for (let i = 0; i < 200 && !out.includes('ready'); i++) {
      writeFileSync(join(root, `ready-${i}`), '');
      await new Promise((r) => setTimeout(r, 25));
    }
    rmSync(root, { recursive: true });
    assert.equal(await exited, 0);
    assert.ok(out.endsWith(`remove\t${root}\n`), out);
  });
});
