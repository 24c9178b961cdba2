/**
 * A real, throwaway PostgreSQL server for tests: `initdb` into a temporary directory and
 * `pg_ctl start` listening only on a unix socket in that directory (no TCP at all). As
 * root it runs as the `postgres` OS user (PostgreSQL refuses to run as root); otherwise as
 * the current user. `stop()` stops it and deletes the directory.
 *
 * Missing binaries are an error, never a skip: CI installs them (scripts/setup.sh).
 */
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { chown, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';

const run = promisify(execFile);

/** Where Debian puts each major version's server binaries. */
const DEBIAN_ROOT = '/usr/lib/postgresql';

/** A running test server and the databases made on it. */
export interface PostgresServer {
  /** The directory holding the unix socket (and the cluster). */
  readonly socketDir: string;
  /** The server's major version, e.g. 15. */
  readonly majorVersion: number;
  /** A connection URL for one database on the server, as `HANGAR_DATABASE_URL` takes it. */
  url(database: string): string;
  /** Create a new database with a unique name, empty or a copy of `template`; returns its name. */
  createDatabase(template?: string): Promise<string>;
  /** Drop a database, closing any connection still open to it. */
  dropDatabase(name: string): Promise<void>;
  /** Run one statement as the superuser in the `postgres` database. */
  adminQuery<T extends pg.QueryResultRow = pg.QueryResultRow>(sql: string, params?: unknown[]): Promise<T[]>;
  /** Stop the server and delete its directory; safe to call twice. */
  stop(): Promise<void>;
}

/** The bin directory of the newest PostgreSQL installed, found at run time. */
async function findBinDir(): Promise<{ binDir: string; major: number }> {
  const versions = existsSync(DEBIAN_ROOT) ? await readdir(DEBIAN_ROOT) : [];
  const found = versions
    .map((v) => ({ major: Number(v), binDir: join(DEBIAN_ROOT, v, 'bin') }))
    .filter((v) => Number.isInteger(v.major) && existsSync(join(v.binDir, 'initdb')) && existsSync(join(v.binDir, 'pg_ctl')))
    .sort((a, b) => b.major - a.major);
  if (found[0]) return found[0];
  throw new Error(`PostgreSQL server binaries not found under ${DEBIAN_ROOT}/<version>/bin: install them with apt-get install postgresql (scripts/setup.sh does)`);
}

/** The uid and gid of an OS user. */
async function userIds(name: string): Promise<{ uid: number; gid: number }> {
  try {
    const [uid, gid] = await Promise.all([run('id', ['-u', name]), run('id', ['-g', name])]);
    return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
  } catch {
    throw new Error(`no '${name}' OS user to run PostgreSQL as (it refuses root): apt-get install postgresql creates it`);
  }
}

let databases = 0;

/** Start a fresh server in a new temporary directory. */
export async function startPostgres(): Promise<PostgresServer> {
  const { binDir, major } = await findBinDir();
  const asRoot = process.getuid?.() === 0;
  const dir = await mkdtemp(join(tmpdir(), 'hangar-pg-'));
  const dataDir = join(dir, 'data');
  const logFile = join(dir, 'server.log');
  // PostgreSQL will not run as root: the cluster belongs to the postgres user.
  const runAs = async (bin: string, args: string[]): Promise<void> => {
    const file = join(binDir, bin);
    if (asRoot) await run('runuser', ['-u', 'postgres', '--', file, ...args], { cwd: dir });
    else await run(file, args, { cwd: dir });
  };
  let started = false;
  let stopped = false;
  let admin: pg.Pool | undefined;

  // A test process that exits without calling stop (an uncaught error) must not leave the
  // server running: stopped synchronously, as 'exit' handlers must be.
  const stopAtExit = (): void => {
    try {
      const args = ['stop', '-D', dataDir, '-m', 'immediate', '-w', '-s'];
      if (started) execFileSync(asRoot ? 'runuser' : join(binDir, 'pg_ctl'), asRoot ? ['-u', 'postgres', '--', join(binDir, 'pg_ctl'), ...args] : args, { stdio: 'ignore' });
    } catch {
      // Already stopped.
    }
    rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', stopAtExit);

  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    process.off('exit', stopAtExit);
    await admin?.end();
    try {
      if (started) await runAs('pg_ctl', ['stop', '-D', dataDir, '-m', 'immediate', '-w', '-s']);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  };

  try {
    if (asRoot) {
      const { uid, gid } = await userIds('postgres');
      await chown(dir, uid, gid);
    }
    // An ICU default collation (from PostgreSQL 15), so a query that forgets COLLATE "C"
    // orders differently from byte order and a test catches it.
    const locale = major >= 15 ? ['--locale=C.UTF-8', '--locale-provider=icu', '--icu-locale=en-US'] : ['--locale=C.UTF-8'];
    await runAs('initdb', ['-D', dataDir, '-U', 'postgres', '--auth=trust', '--encoding=UTF8', ...locale, '--no-sync']);
    const settings = [
      `-k ${dir}`,
      "-c listen_addresses=''",
      // Throwaway data: durability only costs time.
      '-c fsync=off',
      '-c synchronous_commit=off',
      '-c full_page_writes=off',
      '-c max_connections=200',
    ].join(' ');
    try {
      await runAs('pg_ctl', ['start', '-D', dataDir, '-l', logFile, '-w', '-s', '-o', settings]);
    } catch (err) {
      // pg_ctl may have started the postmaster before failing to see it come up.
      started = existsSync(join(dataDir, 'postmaster.pid'));
      throw err;
    }
    started = true;
  } catch (err) {
    await stop();
    throw err;
  }

  const url = (database: string): string => `postgresql://postgres@localhost/${encodeURIComponent(database)}?host=${encodeURIComponent(dir)}`;
  // Idle admin connections do not keep a finished test process alive (its 'exit' stops the server).
  admin = new pg.Pool({ connectionString: url('postgres'), max: 2, allowExitOnIdle: true });
  admin.on('error', () => {
    // An idle admin connection dropped as the server stops: nothing to do.
  });
  const adminQuery = async <T extends pg.QueryResultRow>(sql: string, params: unknown[] = []): Promise<T[]> => (await admin!.query<T>(sql, params)).rows;

  return {
    socketDir: dir,
    majorVersion: major,
    url,
    async createDatabase(template) {
      databases += 1;
      const name = `hangar_test_${process.pid}_${databases}`;
      const from = template === undefined ? '' : ` TEMPLATE ${pg.escapeIdentifier(template)}`;
      // FILE_COPY (PostgreSQL 15+): copying the template's files is quicker than logging its pages.
      await adminQuery(`CREATE DATABASE ${name}${from}${major >= 15 ? ' STRATEGY FILE_COPY' : ''}`);
      return name;
    },
    async dropDatabase(name) {
      await adminQuery(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(name)} WITH (FORCE)`);
    },
    adminQuery,
    stop,
  };
}
