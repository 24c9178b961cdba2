/**
 * The console plugin on a directory laid out like Vite's build: files with their content
 * types, the long cache only on assets/, index.html for client-side routes, a 404 for a
 * missing asset, and nothing outside the directory.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Fastify, { type FastifyInstance } from 'fastify';
import { consolePlugin } from './console-plugin.js';

describe('console plugin (/console)', () => {
  let root: string;
  let app: FastifyInstance;
  const INDEX = '<!doctype html><title>Hangar console</title>';

  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'hangar-console-'));
    const dir = join(root, 'console');
    await mkdir(join(dir, 'assets'), { recursive: true });
    await writeFile(join(dir, 'index.html'), INDEX);
    await writeFile(join(dir, 'assets', 'index-abc123.js'), 'console.log(1)');
    await writeFile(join(dir, 'assets', 'index-abc123.css'), 'body{}');
    await writeFile(join(root, 'secret.txt'), 'not for the web');
    app = Fastify();
    await app.register(consolePlugin, { dir });
    await app.ready();
  });
  after(async () => {
    await app.close();
    await rm(root, { recursive: true, force: true });
  });

  it('redirects /console to /console/ and serves the index there, never cached', async () => {
    const r = await app.inject('/console');
    assert.equal(r.statusCode, 302);
    assert.equal(r.headers.location, '/console/');
    const i = await app.inject('/console/');
    assert.equal(i.statusCode, 200);
    assert.equal(i.headers['content-type'], 'text/html; charset=utf-8');
    assert.equal(i.headers['cache-control'], 'no-cache');
    assert.equal(i.body, INDEX);
    // The page holds an API key: it may load and reach only this server, and never be framed.
    const csp = String(i.headers['content-security-policy']);
    for (const directive of ["default-src 'self'", "script-src 'self'", "connect-src 'self'", "frame-ancestors 'none'"]) assert.ok(csp.includes(directive), csp);
    assert.equal(i.headers['x-content-type-options'], 'nosniff');
  });

  it('serves hashed assets with their content type and a year-long immutable cache', async () => {
    const js = await app.inject('/console/assets/index-abc123.js');
    assert.equal(js.statusCode, 200);
    assert.equal(js.headers['content-type'], 'text/javascript; charset=utf-8');
    assert.equal(js.headers['cache-control'], 'public, max-age=31536000, immutable');
    assert.equal(js.body, 'console.log(1)');
    const css = await app.inject('/console/assets/index-abc123.css');
    assert.equal(css.headers['content-type'], 'text/css; charset=utf-8');
  });

  it('answers client-side routes with the index, and a missing asset with a 404 that says to reload', async () => {
    for (const path of ['/console/machines/mch_abc', '/console/machines/mch_abc/terminal', '/console/sign-in']) {
      const r = await app.inject(path);
      assert.equal(r.statusCode, 200, path);
      assert.equal(r.body, INDEX, path);
    }
    const missing = await app.inject('/console/assets/index-old999.js');
    assert.equal(missing.statusCode, 404);
    assert.equal(missing.json().code, 'ROUTE_NOT_FOUND');
    assert.match(missing.json().message, /reload/);
  });

  it('never serves a file outside the console directory', async () => {
    for (const path of ['/console/../secret.txt', '/console/%2e%2e/secret.txt', '/console/assets/%2e%2e%2f%2e%2e%2fsecret.txt']) {
      const r = await app.inject(path);
      assert.ok(!r.body.includes('not for the web'), `${path} answered ${r.statusCode} ${r.body}`);
    }
  });

  it('says how to build the console when it is not built', async () => {
    const bare = Fastify();
    await bare.register(consolePlugin, { dir: join(root, 'nothing-here') });
    const r = await bare.inject('/console/');
    assert.equal(r.statusCode, 404);
    assert.match(r.json().message, /npm run build/);
    await bare.close();
  });
});
