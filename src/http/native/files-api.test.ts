/**
 * Files on real machines through the HTTP API: round trips, listing, directories,
 * archives, quota, errors, activity, and every way a hostile machine (or a hostile
 * path) could try to make a file call read or write a host file.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ADMIN_KEY, execIn, TestServer, waitFor, type TestResponse } from '../../testing/harness.js';

const MIB = 1024 * 1024;
const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** One ustar entry: a file (type '0'), directory ('5') or symlink ('2'). */
interface TarEntry {
  name: string;
  type?: '0' | '2' | '5';
  body?: Buffer;
  linkname?: string;
}

/** A tar archive built by hand, so entries may carry the names a hostile client would send. */
function tar(entries: TarEntry[]): Buffer {
  const blocks: Buffer[] = [];
  for (const e of entries) {
    const body = e.body ?? Buffer.alloc(0);
    const h = Buffer.alloc(512);
    const field = (value: string, at: number, len: number): void => void h.write(value, at, len, 'utf8');
    const octal = (n: number, at: number, len: number): void => field(`${n.toString(8).padStart(len - 1, '0')}\0`, at, len);
    field(e.name, 0, 100);
    octal(e.type === '5' ? 0o755 : 0o644, 100, 8);
    octal(0, 108, 8);
    octal(0, 116, 8);
    octal(e.type === '0' || e.type === undefined ? body.length : 0, 124, 12);
    octal(Math.floor(Date.now() / 1000), 136, 12);
    field(e.type ?? '0', 156, 1);
    field(e.linkname ?? '', 157, 100);
    field('ustar\0', 257, 6);
    field('00', 263, 2);
    field('        ', 148, 8);
    let sum = 0;
    for (const byte of h) sum += byte;
    field(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8);
    blocks.push(h);
    if (body.length) blocks.push(body, Buffer.alloc((512 - (body.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}

/** Names of the entries of a tar archive (ustar, as busybox writes it). */
function tarNames(archive: Buffer): string[] {
  const names: string[] = [];
  let at = 0;
  while (at + 512 <= archive.length) {
    const h = archive.subarray(at, at + 512);
    if (h.every((b) => b === 0)) break;
    const text = (from: number, len: number): string => h.subarray(from, from + len).toString('utf8').replace(/\0.*$/s, '');
    const prefix = text(345, 155);
    names.push(prefix ? `${prefix}/${text(0, 100)}` : text(0, 100));
    const size = parseInt(text(124, 12).trim() || '0', 8);
    at += 512 + Math.ceil(size / 512) * 512;
  }
  return names;
}

describe('files API', () => {
  let t: TestServer;
  let id: string;
  const auth = { authorization: `Bearer ${ADMIN_KEY}` };
  const q = (path: string): string => `path=${encodeURIComponent(path)}`;
  const put = async (path: string, body: Buffer | string | ReadableStream, machine = id, headers: Record<string, string> = {}): Promise<TestResponse> => {
    const res = await fetch(`${t.url}/v1/machines/${machine}/files?${q(path)}`, {
      method: 'PUT',
      headers: { ...auth, 'content-type': 'application/octet-stream', ...headers },
      body,
      ...(body instanceof ReadableStream ? { duplex: 'half' } : {}),
    } as RequestInit);
    const text = await res.text();
    return { status: res.status, text, body: text ? JSON.parse(text) : undefined, headers: res.headers };
  };
  const get = async (path: string, machine = id): Promise<{ status: number; bytes: Buffer; headers: Headers; json: any }> => {
    const res = await fetch(`${t.url}/v1/machines/${machine}/files?${q(path)}`, { headers: auth });
    const bytes = Buffer.from(await res.arrayBuffer());
    let json: unknown;
    try {
      json = JSON.parse(bytes.toString('utf8'));
    } catch {
      json = undefined;
    }
    return { status: res.status, bytes, headers: res.headers, json };
  };
  const statOf = (path: string, machine = id): Promise<TestResponse> => t.request('GET', `/v1/machines/${machine}/files/stat?${q(path)}`);
  const list = (path: string, machine = id): Promise<TestResponse> => t.request('GET', `/v1/machines/${machine}/files/list?${q(path)}`);
  const mkdirIn = (path: string, machine = id): Promise<TestResponse> => t.request('POST', `/v1/machines/${machine}/files/mkdir`, { body: { path } });
  const move = (from: string, to: string, machine = id): Promise<TestResponse> =>
    t.request('POST', `/v1/machines/${machine}/files/move`, { body: { from, to } });
  const del = (path: string, machine = id): Promise<TestResponse> => t.request('DELETE', `/v1/machines/${machine}/files?${q(path)}`);
  const sh = async (script: string, machine = id): Promise<string> => {
    const r = await t.request('POST', `/v1/machines/${machine}/exec`, { body: { cmd: script } });
    assert.equal(r.status, 200, r.text);
    return r.body.stdout as string;
  };
  const putArchive = async (path: string, body: Buffer): Promise<TestResponse> => {
    const res = await fetch(`${t.url}/v1/machines/${id}/files/archive?${q(path)}`, {
      method: 'PUT',
      headers: { ...auth, 'content-type': 'application/x-tar' },
      body: new Uint8Array(body),
    });
    const text = await res.text();
    return { status: res.status, text, body: text ? JSON.parse(text) : undefined, headers: res.headers };
  };

  before(async () => {
    t = await TestServer.start();
    const r = await t.request('POST', '/v1/machines', { body: { config: { disk_mb: 256 } } });
    assert.equal(r.status, 201, r.text);
    id = r.body.id;
  });
  after(async () => {
    await t.dispose();
  });

  it('writes and reads back small, empty and binary files', async () => {
    const small = await put('/root/hello.txt', 'hello world\n');
    assert.equal(small.status, 200, small.text);
    assert.deepEqual(Object.keys(small.body).sort(), ['mode', 'mtime', 'path', 'size', 'type']);
    assert.equal(small.body.path, '/root/hello.txt');
    assert.equal(small.body.size, 12);
    assert.equal(small.body.mode, '0644');
    assert.equal(small.body.type, 'file');
    assert.ok(Math.abs(Date.parse(small.body.mtime) - Date.now()) < 60_000, small.body.mtime);
    assert.match(small.body.mtime, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    const back = await get('/root/hello.txt');
    assert.equal(back.status, 200);
    assert.equal(back.headers.get('content-length'), '12');
    assert.equal(back.headers.get('content-type'), 'application/octet-stream');
    assert.equal(back.bytes.toString(), 'hello world\n');
    // The machine sees the same file.
    assert.equal(await sh('cat /root/hello.txt'), 'hello world\n');

    assert.equal((await put('/root/empty', Buffer.alloc(0))).body.size, 0);
    assert.equal((await get('/root/empty')).bytes.length, 0);

    const binary = Buffer.from(Array.from({ length: 256 * 4 }, (_, i) => i % 256));
    assert.equal((await put('/root/bytes.bin', binary, id, { 'content-type': 'application/json' })).status, 200, 'any media type is raw bytes');
    assert.deepEqual((await get('/root/bytes.bin')).bytes, binary);
  });

  it('round-trips a 20 MiB file, streamed both ways, byte for byte', async () => {
    const data = randomBytes(20 * MIB);
    const w = await put('/root/big/data.bin', data);
    assert.equal(w.status, 200, w.text);
    assert.equal(w.body.size, data.length);
    const r = await get('/root/big/data.bin');
    assert.equal(r.headers.get('content-length'), String(data.length));
    assert.equal(sha256(r.bytes), sha256(data));
    assert.equal((await sh('sha256sum /root/big/data.bin')).split(' ')[0], sha256(data));
    // Without Content-Length (chunked), too.
    const chunks = [data.subarray(0, 7 * MIB), data.subarray(7 * MIB)];
    const stream = new ReadableStream<Uint8Array>({
      start(c) {
        for (const chunk of chunks) c.enqueue(new Uint8Array(chunk));
        c.close();
      },
    });
    const chunked = await put('/root/big/chunked.bin', stream);
    assert.equal(chunked.status, 200, chunked.text);
    assert.equal(sha256((await get('/root/big/chunked.bin')).bytes), sha256(data));
  });

  it('replaces an existing file, keeping its mode, and creates missing parents', async () => {
    await sh('echo old > /root/mode.sh && chmod 750 /root/mode.sh');
    const r = await put('/root/mode.sh', 'new\n');
    assert.equal(r.body.mode, '0750');
    assert.equal(await sh('cat /root/mode.sh'), 'new\n');
    const deep = await put('/root/p/q/r/s.txt', 's');
    assert.equal(deep.status, 200, deep.text);
    assert.equal((await statOf('/root/p/q')).body.type, 'directory');
  });

  it('stats files, directories and symlinks (not followed)', async () => {
    await sh('ln -sfn /root/hello.txt /root/link && mkfifo /root/fifo');
    const dir = await statOf('/root');
    assert.equal(dir.status, 200, dir.text);
    assert.equal(dir.body.type, 'directory');
    assert.equal(dir.body.mode, '0700');
    assert.equal((await statOf('/tmp')).body.mode, '1777');
    const link = await statOf('/root/link');
    assert.equal(link.body.type, 'symlink');
    assert.equal(link.body.size, '/root/hello.txt'.length);
    assert.equal((await statOf('/root/fifo')).body.type, 'fifo');
    assert.equal((await statOf('/dev/null')).body.type, 'char_device');
    assert.equal((await statOf('/root/./p/../hello.txt')).body.path, '/root/hello.txt');
    // Reading follows the symlink inside the machine.
    assert.equal((await get('/root/link')).bytes.toString(), 'hello world\n');
  });

  it('lists a directory with the stat of each entry, odd names included', async () => {
    await mkdirIn('/srv/list');
    await sh("cd /srv/list && touch -- .hidden -dash 'sp ace' \"$(printf 'new\\nline')\" && mkdir sub && ln -s /etc ln");
    const r = await list('/srv/list');
    assert.equal(r.status, 200, r.text);
    assert.equal(r.body.path, '/srv/list');
    assert.deepEqual(
      r.body.entries.map((e: { path: string; type: string }) => [e.path, e.type]),
      [
        ['/srv/list/-dash', 'file'],
        ['/srv/list/.hidden', 'file'],
        ['/srv/list/ln', 'symlink'],
        ['/srv/list/new\nline', 'file'],
        ['/srv/list/sp ace', 'file'],
        ['/srv/list/sub', 'directory'],
      ],
    );
    for (const e of r.body.entries) assert.deepEqual(Object.keys(e).sort(), ['mode', 'mtime', 'path', 'size', 'type']);
    assert.deepEqual((await list('/srv/list/sub')).body.entries, []);
    const file = await list('/srv/list/-dash');
    assert.equal(file.status, 409);
    assert.equal(file.body.code, 'NOT_A_DIRECTORY');
  });

  it('makes directories (mkdir -p), moves and deletes', async () => {
    const made = await mkdirIn('/work/a/b/c');
    assert.equal(made.status, 200, made.text);
    assert.equal(made.body.type, 'directory');
    assert.equal((await mkdirIn('/work/a/b/c')).status, 200, 'an existing directory is fine');
    await put('/work/a/b/c/f.txt', 'f');
    const onFile = await mkdirIn('/work/a/b/c/f.txt');
    assert.equal(onFile.status, 409);
    assert.equal(onFile.body.code, 'NOT_A_DIRECTORY');

    const moved = await move('/work/a/b', '/work/moved');
    assert.equal(moved.status, 200, moved.text);
    assert.equal(moved.body.path, '/work/moved');
    assert.equal((await get('/work/moved/c/f.txt')).bytes.toString(), 'f');
    assert.equal((await statOf('/work/a/b')).status, 404);
    const renamed = await move('/work/moved/c/f.txt', '/work/g.txt');
    assert.equal(renamed.body.type, 'file');

    const exists = await move('/work/g.txt', '/work/moved');
    assert.equal(exists.status, 409);
    assert.equal(exists.body.code, 'PATH_EXISTS');
    const noParent = await move('/work/g.txt', '/nowhere/g.txt');
    assert.equal(noParent.status, 404);
    assert.equal(noParent.body.code, 'PATH_NOT_FOUND');
    const missing = await move('/work/none', '/work/none2');
    assert.equal(missing.status, 404);
    assert.equal(missing.body.code, 'PATH_NOT_FOUND');
    const intoItself = await move('/work/moved', '/work/moved/inner');
    assert.equal(intoItself.status, 400);
    assert.equal(intoItself.body.code, 'VALIDATION_FAILED');

    assert.equal((await del('/work/g.txt')).status, 204);
    assert.equal((await statOf('/work/g.txt')).status, 404);
    assert.equal((await del('/work')).status, 204, 'a directory goes with everything in it');
    assert.equal((await statOf('/work')).status, 404);
    const again = await del('/work');
    assert.equal(again.status, 404);
    assert.equal(again.body.code, 'PATH_NOT_FOUND');
  });

  it('downloads a directory as tar and extracts it elsewhere', async () => {
    await sh('mkdir -p /src/tree/d && echo one > /src/tree/one && echo two > /src/tree/d/two && ln -s one /src/tree/l && chmod 600 /src/tree/d/two');
    const res = await fetch(`${t.url}/v1/machines/${id}/files/archive?${q('/src/tree')}`, { headers: auth });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'application/x-tar');
    const archive = Buffer.from(await res.arrayBuffer());
    assert.deepEqual(tarNames(archive).sort(), ['./', './d/', './d/two', './l', './one']);
    const up = await putArchive('/dst/tree', archive);
    assert.equal(up.status, 200, up.text);
    assert.equal(up.body.type, 'directory');
    assert.equal(await sh('cat /dst/tree/one /dst/tree/d/two /dst/tree/l; stat -c %a /dst/tree/d/two; readlink /dst/tree/l'), 'one\ntwo\none\n600\none\n');
    const onFile = await fetch(`${t.url}/v1/machines/${id}/files/archive?${q('/src/tree/one')}`, { headers: auth });
    assert.equal(onFile.status, 409);
    assert.equal(((await onFile.json()) as { code: string }).code, 'NOT_A_DIRECTORY');
  });

  it('refuses a body that is not tar and leaves no directory behind', async () => {
    const r = await putArchive('/dst/garbage', Buffer.from('not a tar archive '.repeat(100)));
    assert.equal(r.status, 400, r.text);
    assert.equal(r.body.code, 'INVALID_ARCHIVE');
    assert.equal((await statOf('/dst/garbage')).status, 404);
  });

  it('answers clear errors for wrong paths and types, changing nothing', async () => {
    const notFound = await get('/root/does-not-exist');
    assert.equal(notFound.status, 404);
    assert.equal(notFound.json.code, 'PATH_NOT_FOUND');
    assert.match(notFound.json.message, /\/root\/does-not-exist/);
    const dir = await get('/root');
    assert.equal(dir.status, 409);
    assert.equal(dir.json.code, 'IS_A_DIRECTORY');
    const fifo = await get('/root/fifo');
    assert.equal(fifo.status, 409);
    assert.equal(fifo.json.code, 'NOT_A_REGULAR_FILE');
    const onDir = await put('/root', 'x');
    assert.equal(onDir.status, 409);
    assert.equal(onDir.body.code, 'IS_A_DIRECTORY');
    const underFile = await put('/root/hello.txt/x', 'x');
    assert.equal(underFile.status, 409);
    assert.equal(underFile.body.code, 'NOT_A_DIRECTORY');
    const readOnly = await put('/sys/hangar', 'x');
    assert.equal(readOnly.status, 403, readOnly.text);
    assert.equal(readOnly.body.code, 'PATH_PERMISSION_DENIED');
    const badType = await put('/root/typed', 'x', id, { 'content-type': 'not a media type' });
    assert.equal(badType.status, 415, badType.text);
    assert.match(badType.body.message, /octet-stream/);
    const deleteRoot = await del('/');
    assert.equal(deleteRoot.status, 400);
    assert.equal(deleteRoot.body.code, 'VALIDATION_FAILED');

    for (const bad of ['', 'relative/path', 'a\0b']) {
      for (const r of [await statOf(bad), await list(bad), await del(bad), await put(bad, 'x')]) {
        assert.equal(r.status, 400, `${JSON.stringify(bad)}: ${r.text}`);
        assert.equal(r.body.code, 'VALIDATION_FAILED');
        assert.ok(r.body.details.fields.some((f: { field: string }) => f.field === 'query.path'), r.text);
      }
    }
    const noPath = await t.request('GET', `/v1/machines/${id}/files/stat`);
    assert.equal(noPath.status, 400);
    assert.equal((await t.request('POST', `/v1/machines/${id}/files/mkdir`, { body: { path: 'x' } })).status, 400);
    assert.equal((await t.request('POST', `/v1/machines/${id}/files/mkdir`, { body: { path: '/x', mode: 1 } })).status, 400);
    assert.equal((await t.request('POST', `/v1/machines/${id}/files/move`, { body: { from: '/root/hello.txt' } })).status, 400);
    assert.equal((await statOf('/x')).status, 404, 'the bad mkdir made nothing');
    assert.equal((await get('/root/hello.txt')).bytes.toString(), 'hello world\n');
    // Nothing half-written anywhere.
    assert.equal(await sh('find / -xdev -name ".hangar-upload-*" | wc -l'), '0\n');
  });

  it('keeps uploads within the disk quota: 413 up front, 507 when the disk fills, no partial file', async () => {
    const m = await t.request('POST', '/v1/machines', { body: { config: { disk_mb: 16 } } });
    const small = m.body.id as string;
    await put('/root/keep.txt', 'old', small);
    const declared = await put('/root/keep.txt', randomBytes(17 * MIB), small);
    assert.equal(declared.status, 413, declared.text);
    assert.equal(declared.body.code, 'BODY_TOO_LARGE');
    assert.match(declared.body.message, /disk_mb is 16/);
    // Chunked: the size is only known once the disk is full.
    const data = randomBytes(15 * MIB);
    const stream = new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(new Uint8Array(data));
        c.enqueue(new Uint8Array(data));
        c.close();
      },
    });
    const full = await put('/root/keep.txt', stream, small);
    assert.equal(full.status, 507, full.text);
    assert.equal(full.body.code, 'DISK_FULL');
    assert.equal((await get('/root/keep.txt', small)).bytes.toString(), 'old', 'the old file is intact');
    const full2 = await put('/root/new/dir/file.bin', data.subarray(0, 15 * MIB), small);
    assert.ok(full2.status === 507 || full2.status === 200, full2.text);
    if (full2.status === 507) assert.equal((await statOf('/root/new', small)).status, 404, 'parents made for a failed write are gone');
    assert.equal(await sh('find / -xdev -name ".hangar-upload-*" | wc -l', small), '0\n');
    // The disk is usable again: nothing was left to fill it.
    assert.equal((await put('/root/after.txt', randomBytes(4 * MIB), small)).status, 200);
  });

  it('drops an upload whose client goes away: no file, no temporary file', async () => {
    await new Promise<void>((resolve) => {
      const req = httpRequest(`${t.url}/v1/machines/${id}/files?${q('/root/cut.bin')}`, {
        method: 'PUT',
        headers: { ...auth, 'content-type': 'application/octet-stream', 'content-length': String(8 * MIB) },
      });
      req.on('error', () => resolve());
      req.write(randomBytes(MIB), () => setTimeout(() => req.destroy(), 300));
      req.on('close', () => resolve());
    });
    await waitFor(async () => (await sh('ls -a /root | grep -c hangar-upload || true')) === '0\n', 10_000, 200);
    assert.equal((await statOf('/root/cut.bin')).status, 404);
  });

  it('counts as activity: last_active_at appears', async () => {
    const m = await t.request('POST', '/v1/machines', { body: {} });
    const fresh = m.body.id as string;
    assert.equal('last_active_at' in (await t.request('GET', `/v1/machines/${fresh}`)).body, false);
    const before = Date.now();
    assert.equal((await statOf('/', fresh)).status, 200);
    const got: string = await waitFor(async () => (await t.request('GET', `/v1/machines/${fresh}`)).body.last_active_at, 3_000);
    assert.ok(Date.parse(got) >= before - 5, got);
  });

  it('answers 409 for a paused machine and 404 for destroyed, unknown or foreign ones', async () => {
    const m = await t.request('POST', '/v1/machines', { body: {} });
    const other = m.body.id as string;
    assert.equal((await t.request('POST', `/v1/machines/${other}/pause`)).status, 200);
    for (const r of [await statOf('/', other), await put('/x', 'x', other), await list('/', other)]) {
      assert.equal(r.status, 409, r.text);
      assert.equal(r.body.code, 'STATE_CONFLICT');
      assert.match(r.body.message, /paused.*Resume it first/);
    }
    const paused = await get('/etc/passwd', other);
    assert.equal(paused.status, 409);
    assert.equal((await t.request('DELETE', `/v1/machines/${other}`)).status, 200);
    assert.equal((await statOf('/', other)).status, 404);
    assert.equal((await statOf('/', 'mch_doesnotexist')).body.code, 'NOT_FOUND');
    const team = await t.newTeamKey('files-other');
    const foreign = await t.request('GET', `/v1/machines/${id}/files/stat?${q('/')}`, { key: team.key });
    assert.equal(foreign.status, 404);
    assert.equal(foreign.body.code, 'NOT_FOUND');
    assert.equal((await t.request('GET', `/v1/machines/${id}/files/stat?${q('/')}`, { key: null })).status, 401);
  });

  describe('a hostile machine cannot reach host files', () => {
    /** A host directory that exists only on the host, with a secret in it. */
    let hostDir: string;
    const secret = `host-secret-${randomBytes(8).toString('hex')}`;

    before(async () => {
      hostDir = join(t.dataDir, 'host-only');
      await mkdir(hostDir, { recursive: true });
      await writeFile(join(hostDir, 'secret.txt'), secret);
      // Absolute symlinks to the host dir and to /, and relative ones climbing far above the root.
      await sh(
        `mkdir -p /esc/safe && echo safe > /esc/safe/secret.txt && ln -s ${hostDir} /esc/abs && ln -s / /esc/root && ` +
          `ln -s ../../../../../../../../../../..${hostDir} /esc/rel && ln -s ../../../../../../../../.. /esc/up`,
      );
    });

    const hostUnchanged = async (): Promise<void> => {
      assert.deepEqual((await readdir(hostDir)).sort(), ['secret.txt'], 'nothing was written into the host dir');
      assert.equal(await readFile(join(hostDir, 'secret.txt'), 'utf8'), secret);
    };

    it('reads and stats through .., absolute and escaping symlinks stay inside', async () => {
      for (const path of [`/../../../../..${hostDir}/secret.txt`, '/esc/abs/secret.txt', '/esc/rel/secret.txt', `/esc/root${hostDir}/secret.txt`, `/esc/up${hostDir}/secret.txt`]) {
        const r = await get(path);
        assert.equal(r.status, 404, `${path}: ${r.bytes.toString()}`);
        assert.ok(!r.bytes.toString().includes(secret));
        assert.equal((await statOf(path)).status, 404, path);
      }
      // /esc/up/etc/passwd is the machine's own passwd, not the host's.
      const passwd = (await get('/esc/up/etc/passwd')).bytes.toString();
      assert.equal(passwd, await sh('cat /etc/passwd'));
      assert.notEqual(passwd, await readFile('/etc/passwd', 'utf8'));
    });

    it('lists and archives through escaping symlinks only the machine’s own files', async () => {
      assert.equal((await list('/esc/abs')).status, 404);
      assert.equal((await list('/esc/rel')).status, 404);
      const up = await list('/esc/up');
      assert.equal(up.status, 200);
      const names = up.body.entries.map((e: { path: string }) => e.path.split('/').pop());
      const machineRoot = (await list('/')).body.entries.map((e: { path: string }) => e.path.split('/').pop());
      assert.deepEqual(names, machineRoot);
      for (const path of ['/esc/abs', '/esc/rel', `/esc/up${hostDir}`, `/../../..${hostDir}`]) {
        const a = await fetch(`${t.url}/v1/machines/${id}/files/archive?${q(path)}`, { headers: auth });
        const body = Buffer.from(await a.arrayBuffer());
        assert.equal(a.status, 404, `${path}: ${body.toString()}`);
        assert.ok(!body.includes(Buffer.from(secret)));
      }
    });

    it('writes, mkdirs, moves and deletes through them stay inside', async () => {
      for (const path of ['/esc/abs/pwned.txt', '/esc/rel/pwned.txt', `/esc/root${hostDir}/pwned.txt`, `/esc/up${hostDir}/pwned.txt`, `/../..${hostDir}/pwned.txt`]) {
        const r = await put(path, 'pwned');
        // 200 where the machine has (or can make) the parents inside; 409 through a dangling link.
        assert.ok([200, 409].includes(r.status), `${path}: ${r.text}`);
      }
      await hostUnchanged();
      assert.ok([200, 409].includes((await mkdirIn('/esc/abs/newdir')).status));
      assert.equal((await mkdirIn(`/esc/up${hostDir}/newdir2`)).status, 200);
      await hostUnchanged();
      assert.equal((await move('/esc/safe/secret.txt', `/esc/root${hostDir}/moved.txt`)).status, 200);
      assert.equal((await move(`${hostDir}/secret.txt`, '/esc/stolen.txt')).status, 404, 'only the host has it');
      await hostUnchanged();
      assert.equal((await del(`/esc/up${hostDir}/secret.txt`)).status, 404);
      assert.equal((await del('/esc/abs')).status, 204, 'deletes the symlink, not its target');
      assert.equal((await del(`/esc/root${hostDir}`)).status, 204);
      await hostUnchanged();
      assert.ok(await stat(hostDir));
    });

    it('tar entries with ../ and absolute names land inside the target directory', async () => {
      const archive = tar([
        { name: '../../../../../../escape-dotdot.txt', body: Buffer.from('dotdot') },
        { name: `/${hostDir.slice(1)}/escape-abs.txt`, body: Buffer.from('abs') },
        { name: 'ok.txt', body: Buffer.from('ok') },
      ]);
      const r = await putArchive('/ex/names', archive);
      assert.equal(r.status, 200, r.text);
      assert.equal((await get('/ex/names/escape-dotdot.txt')).bytes.toString(), 'dotdot');
      assert.equal((await get(`/ex/names${hostDir}/escape-abs.txt`)).bytes.toString(), 'abs');
      assert.equal((await get('/ex/names/ok.txt')).bytes.toString(), 'ok');
      assert.equal(await sh('ls /escape-dotdot.txt 2>/dev/null | wc -l'), '0\n');
      await hostUnchanged();
    });

    it('tar symlink entries cannot be written through, to the host or out of the target', async () => {
      const archive = tar([
        { name: 'lnk', type: '2', linkname: '/' },
        { name: 'lnk/etc/escape-through-link.txt', body: Buffer.from('link') },
        { name: 'hostlnk', type: '2', linkname: hostDir },
        { name: 'hostlnk/escape-host.txt', body: Buffer.from('host') },
        { name: 'uplnk', type: '2', linkname: '../../../../../../..' },
        { name: 'uplnk/escape-up.txt', body: Buffer.from('up') },
      ]);
      const r = await putArchive('/ex/links', archive);
      // busybox tar creates symlinks last, and then refuses those whose name is already a directory.
      assert.ok([200, 422].includes(r.status), r.text);
      await hostUnchanged();
      assert.equal(await sh(`ls /etc/escape-through-link.txt /escape-up.txt ${hostDir}/escape-host.txt 2>/dev/null | wc -l`), '0\n');
    });

    it('a symlink flipped between a directory, / and a host path during many calls never reaches the host', async () => {
      await sh(`mkdir -p /flip/dir && echo inside > /flip/dir/secret.txt && ln -sfn /flip/dir /flip/link`);
      await sh('mkdir -p /flip/dir/sub && echo inside > /flip/dir/sub/inside.txt');
      // A machine process flips the link as fast as it can for the whole test.
      const flipper = await execIn(t.server, id, [
        'sh', '-c',
        `(while true; do ln -sfn / /flip/link; ln -sfn ${hostDir} /flip/link; ln -sfn /flip/dir /flip/link; ln -sfn ../../../../../..${hostDir} /flip/link; done) > /dev/null 2>&1 & echo $!`,
      ]);
      const flipperPid = flipper.out.trim();
      assert.match(flipperPid, /^\d+$/, flipper.out);
      try {
        const seen = new Set<number>();
        // At least 12 rounds, and more (up to 40) until some call has landed in the real directory.
        for (let i = 0; i < 40 && (i < 12 || !seen.has(200)); i++) {
          const w = await put(`/flip/link/w${i}.txt`, `write ${i}`);
          seen.add(w.status);
          const r = await get('/flip/link/secret.txt');
          seen.add(r.status);
          assert.ok(!r.bytes.toString().includes(secret), 'read a host file');
          const l = await list('/flip/link');
          if (l.status === 200) {
            const names = l.body.entries.map((e: { path: string }) => e.path.split('/').pop());
            assert.ok(!names.includes('machines') && !names.includes('hangar.db'), `listed the host: ${names}`);
          }
          const s = await statOf('/flip/link/secret.txt');
          assert.ok([200, 404].includes(s.status), s.text);
          const a = await fetch(`${t.url}/v1/machines/${id}/files/archive?${q('/flip/link/sub')}`, { headers: auth });
          const archive = Buffer.from(await a.arrayBuffer());
          if (a.status === 200) assert.ok(!archive.includes(Buffer.from(secret)), 'archived a host file');
          await hostUnchanged();
        }
        assert.ok(seen.has(200), `some calls landed: ${[...seen]}`);
        // Races inside the machine may fail a call (404, 409, 422), never as a bad request or a server error.
        assert.ok(![...seen].some((s) => s === 400 || s >= 500), `statuses seen: ${[...seen]}`);
      } finally {
        await execIn(t.server, id, ['kill', flipperPid]);
      }
      await hostUnchanged();
    });
  });
});
