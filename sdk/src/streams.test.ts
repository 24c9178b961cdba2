/** The SDK's live calls against a real server: processes, terminals, file watches, build logs. */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { ADMIN_KEY, TestServer, waitFor } from '../../src/testing/harness.js';
import { HangarApiError, HangarClient, type BuildLogEvent, type FileWatchEvent, type ProcessEvent, type PtySession } from './index.js';

/** A loopback TCP relay to the server whose connections can be cut, to lose a stream mid-way. */
async function relay(target: URL): Promise<{ url: string; cut(): void; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((inbound) => {
    const outbound = createConnection(Number(target.port), target.hostname);
    for (const s of [inbound, outbound]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => undefined);
    }
    inbound.pipe(outbound).pipe(inbound);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}`,
    cut: () => {
      for (const s of sockets) s.destroy();
    },
    close: () =>
      new Promise((r) => {
        server.close(() => r());
        for (const s of sockets) s.destroy();
      }),
  };
}

/** Read a terminal until its screen text matches. */
async function readUntil(pty: PtySession, reader: ReadableStreamDefaultReader<Uint8Array>, seen: { text: string }, re: RegExp): Promise<void> {
  while (!re.test(seen.text)) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`the terminal ended before ${re}: ${JSON.stringify(seen.text)}`);
    seen.text += new TextDecoder().decode(value);
  }
  void pty;
}

describe('SDK live calls', () => {
  let t: TestServer;
  let c: HangarClient;
  let id: string;
  before(async () => {
    t = await TestServer.start();
    c = new HangarClient({ baseUrl: t.url, apiKey: ADMIN_KEY });
    id = (await c.createMachine({})).id;
  });
  after(async () => {
    if (id) await c.deleteMachine(id).catch(() => undefined);
    await t?.dispose();
  });

  it('processes: start, follow, stdin, wait, output, list, signal', async () => {
    const p = await c.startProcess(id, { cmd: ['sh', '-c', 'read x; echo got $x; echo err >&2; exit 5'] });
    assert.equal(p.status, 'running');
    const events: ProcessEvent[] = [];
    const following = (async () => {
      for await (const e of c.followProcess(id, p.pid)) events.push(e);
    })();
    await c.writeStdin(id, p.pid, 'hello\n');
    await following;
    const text = (type: string): string => events.filter((e) => e.type === type).map((e) => (e as { data: string }).data).join('');
    assert.equal(text('stdout'), 'got hello\n');
    assert.equal(text('stderr'), 'err\n');
    const last = events.at(-1);
    assert.ok(last?.type === 'exit' && last.process.exit_code === 5, JSON.stringify(last));
    assert.equal((await c.waitProcess(id, p.pid)).exit_code, 5);
    const out = await c.processOutput(id, p.pid);
    assert.deepEqual([out.stdout, out.stderr, out.next_offset], ['got hello\n', 'err\n', 14]);
    assert.ok((await c.listProcesses(id)).items.some((x) => x.pid === p.pid));

    const sleeper = await c.startProcess(id, { cmd: 'sleep 300' });
    assert.equal((await c.getProcess(id, sleeper.pid)).status, 'running');
    await c.signalProcess(id, sleeper.pid, 'SIGTERM');
    const ended = await c.waitProcess(id, sleeper.pid);
    assert.deepEqual([ended.status, ended.signal], ['exited', 'TERM']);
    await assert.rejects(c.getProcess(id, 999_999), (e: unknown) => e instanceof HangarApiError && e.status === 404);
  });

  it('a followed process resumes from its last offset after the connection is cut', async () => {
    const r = await relay(new URL(t.url));
    try {
      const viaRelay = new HangarClient({ baseUrl: r.url, apiKey: ADMIN_KEY });
      const p = await c.startProcess(id, { cmd: ['sh', '-c', 'while read l; do echo "line $l"; done'] });
      const it = viaRelay.followProcess(id, p.pid)[Symbol.asyncIterator]();
      const next = async (): Promise<ProcessEvent> => (await it.next()).value as ProcessEvent;
      await c.writeStdin(id, p.pid, 'a\n');
      assert.deepEqual(await next(), { type: 'stdout', data: 'line a\n', offset: 7 });
      r.cut();
      await c.writeStdin(id, p.pid, 'b\n', { close: true });
      const rest: ProcessEvent[] = [];
      for (let e = await next(); ; e = await next()) {
        rest.push(e);
        if (e.type === 'exit') break;
      }
      assert.deepEqual(rest[0], { type: 'stdout', data: 'line b\n', offset: 14 });
      assert.equal(rest.length, 2, 'nothing twice, nothing lost');
    } finally {
      await r.close();
    }
  });

  it('a terminal: type, read the screen, resize, exit code; refused upgrades are typed errors', async () => {
    const pty = await c.openPty(id, { cols: 100, rows: 30 });
    const reader = pty.readable.getReader();
    const seen = { text: '' };
    pty.write('stty size\n');
    await readUntil(pty, reader, seen, /30 100/);
    pty.resize(120, 40);
    pty.write(new TextEncoder().encode('stty size; exit 3\n'));
    await readUntil(pty, reader, seen, /40 120/);
    while (!(await reader.read()).done);
    assert.deepEqual(await pty.exited, { exitCode: 3 });

    await assert.rejects(c.openPty('mch_nosuchmachine'), (e: unknown) => e instanceof HangarApiError && e.status === 404 && e.code === 'NOT_FOUND');
    const keyless = new HangarClient({ baseUrl: t.url, apiKey: 'wrong-key-0123456789' });
    await assert.rejects(keyless.openPty(id), (e: unknown) => e instanceof HangarApiError && e.status === 401);
  });

  it('a terminal over the global WebSocket (browsers, Node 22+): Node 20 with --experimental-websocket', async () => {
    const script = `
      import { HangarClient } from ${JSON.stringify(new URL('./index.js', import.meta.url).href)};
      if (typeof globalThis.WebSocket !== 'function') throw new Error('no global WebSocket');
      const c = new HangarClient({ baseUrl: process.env.HANGAR_URL, apiKey: process.env.HANGAR_API_KEY });
      const pty = await c.openPty(process.env.MACHINE, { cols: 90, rows: 20, cmd: 'stty size; exit 4' });
      let text = '';
      for await (const b of pty) text += new TextDecoder().decode(b);
      console.log(JSON.stringify({ text, exit: (await pty.exited).exitCode }));`;
    const stdout = await new Promise<string>((resolve, reject) =>
      execFile(
        process.execPath,
        ['--experimental-websocket', '--no-warnings', '--input-type=module', '-e', script],
        { env: { HANGAR_URL: t.url, HANGAR_API_KEY: ADMIN_KEY, MACHINE: id }, timeout: 60_000 },
        (err, out, errText) => (err ? reject(new Error(errText || err.message)) : resolve(out)),
      ),
    );
    const r = JSON.parse(stdout) as { text: string; exit: number };
    assert.match(r.text, /20 90/);
    assert.equal(r.exit, 4);
  });

  it('files as streams: a ReadableStream written as it is read, read back as a stream, a tar stream up and down', async () => {
    const chunks = ['first ', 'second ', 'third'].map((x) => new TextEncoder().encode(x));
    const stream = (): ReadableStream<Uint8Array> =>
      new ReadableStream({
        pull(controller) {
          const next = chunks.shift();
          if (next) controller.enqueue(next);
          else controller.close();
        },
      });
    assert.equal((await c.writeFile(id, '/root/streamed.txt', stream())).size, 18);
    let text = '';
    for await (const b of (await c.readFileStream(id, '/root/streamed.txt')) as unknown as AsyncIterable<Uint8Array>) text += new TextDecoder().decode(b);
    assert.equal(text, 'first second third');
    const tar = await new Response(await c.downloadArchive(id, '/root')).arrayBuffer();
    await c.uploadArchive(id, '/root/copy', new Response(tar).body!);
    assert.equal(new TextDecoder().decode(await c.readFile(id, '/root/copy/streamed.txt')), 'first second third');
  });

  it('watches a directory as an async iterator; stopping the loop closes the watch', async () => {
    await c.mkdir(id, '/root/w');
    const it = c.watchFiles(id, '/root/w')[Symbol.asyncIterator]();
    const first = it.next();
    let settled = false;
    void first.then(() => (settled = true));
    // The watch takes a moment to be in place: write until it reports.
    for (let i = 0; !settled; i++) {
      await c.writeFile(id, `/root/w/ping${i}`, 'x');
      await Promise.race([first, new Promise((r) => setTimeout(r, 100))]);
    }
    // Uploads write through a temporary file first: skip its events.
    let e = (await first).value as FileWatchEvent;
    while (!/ping/.test((e as { path?: string }).path ?? '')) e = (await it.next()).value as FileWatchEvent;
    // An upload lands by a rename of its temporary file.
    assert.ok(e.type === 'create' || e.type === 'write' || e.type === 'rename', JSON.stringify(e));
    assert.match((e as { path: string }).path, /^\/root\/w\/ping\d+$/);
    await c.writeFile(id, '/root/w/second', 'y');
    let got: FileWatchEvent | undefined;
    do got = (await it.next()).value as FileWatchEvent;
    while ((got as { path?: string }).path !== '/root/w/second');
    await it.return(undefined);
    await assert.rejects(
      c.watchFiles(id, '/root/nowhere').next(),
      (err: unknown) => err instanceof HangarApiError && err.status === 404,
    );
  });

  it("a template build's log as an async iterator, resumable with after", async () => {
    const b = await c.buildTemplate({ name: 'sdk-logs', source: { template: 'base' }, steps: [{ run: 'echo first-line' }, { run: 'echo second-line' }] });
    const all: BuildLogEvent[] = [];
    for await (const e of c.templateBuildLogs('sdk-logs', b.id)) all.push(e);
    assert.deepEqual(all.at(-1), { type: 'end', status: 'ready', error: null });
    const lines = all.filter((e) => e.type === 'log') as Extract<BuildLogEvent, { type: 'log' }>[];
    assert.ok(lines.some((l) => l.line.includes('first-line')) && lines.some((l) => l.line.includes('second-line')), JSON.stringify(lines));
    const later: BuildLogEvent[] = [];
    for await (const e of c.templateBuildLogs('sdk-logs', b.id, { after: 1 })) later.push(e);
    assert.deepEqual(later.filter((e) => e.type === 'log'), lines.slice(1));
    await c.deleteTemplate('sdk-logs');
  });

  it('warm pools: put, list, delete', async () => {
    const pool = await c.putWarmPool('sdk-pool', { template: 'base', size: 1 });
    assert.equal(pool.name, 'sdk-pool');
    assert.ok((await c.listWarmPools()).items.some((p) => p.name === 'sdk-pool'));
    await waitFor(async () => (await c.listWarmPools()).items.find((p) => p.name === 'sdk-pool')?.ready === 1, 60_000);
    await c.deleteWarmPool('sdk-pool');
    assert.ok(!(await c.listWarmPools()).items.some((p) => p.name === 'sdk-pool'));
  });
});
