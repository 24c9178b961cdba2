/**
 * Templates from Debian (mmdebstrap from the mirror apt is configured with): a build with
 * a package whose machines run it, and the server-wide `python` template, built on this
 * host the first time a machine asks for it. Slow the first time (a minute or two each).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { TestServer, waitFor } from '../../testing/harness.js';

describe('templates from Debian', () => {
  let t: TestServer;

  before(async () => {
    t = await TestServer.start();
  });
  after(async () => {
    await t?.dispose();
  });

  it('builds Debian with a package, and its machines run the package', async () => {
    const r = await t.request('POST', '/v1/templates', {
      body: { name: 'greeter', source: { debian: { suite: 'trixie', packages: ['hello'] } }, steps: [{ run: 'hello -g built-in-step > /etc/greeting' }] },
    });
    assert.equal(r.status, 202, r.text);
    const b = await waitFor(async () => {
      const x = await t.request('GET', `/v1/templates/greeter/builds/${r.body.id}`);
      return x.body.status === 'building' ? null : x.body;
    }, 600_000, 500);
    assert.equal(b.status, 'ready', `${JSON.stringify(b.error)}\n${(await t.request('GET', r.body.logs_url)).text.slice(-2000)}`);
    const m = await t.request('POST', '/v1/machines', { body: { template: 'greeter' } });
    assert.equal(m.status, 201, m.text);
    const e = await t.request('POST', `/v1/machines/${m.body.id}/exec`, { body: { cmd: 'hello; cat /etc/greeting; cat /etc/debian_version' } });
    assert.equal(e.body.exit_code, 0, e.body.stderr);
    const [greeting, stepOutput, version] = e.body.stdout.split('\n');
    assert.equal(greeting, 'Hello, world!');
    assert.equal(stepOutput, 'built-in-step');
    assert.match(version, /^13\./);
    // A missing package fails the build at its source, and leaves nothing under the name.
    const bad = await t.request('POST', '/v1/templates', { body: { name: 'broken', source: { debian: { suite: 'trixie', packages: ['no-such-package-hangar'] } } } });
    const failed = await waitFor(async () => {
      const x = await t.request('GET', `/v1/templates/broken/builds/${bad.body.id}`);
      return x.body.status === 'building' ? null : x.body;
    }, 600_000, 500);
    assert.equal(failed.status, 'error');
    assert.equal(failed.error.step, 'source');
    assert.equal((await t.request('POST', '/v1/machines', { body: { template: 'broken' } })).body.code, 'UNKNOWN_TEMPLATE');
  });

  it('the python template is built at first need, and has python3, pip, venv and git', async () => {
    const listed = (await t.request('GET', '/v1/templates/python')).body;
    assert.ok(['not_built', 'ready'].includes(listed.status), listed.status);
    const m = await t.request('POST', '/v1/machines', { body: { template: 'python' } });
    assert.equal(m.status, 201, m.text);
    const e = await t.request('POST', `/v1/machines/${m.body.id}/exec`, {
      body: { cmd: 'python3 -c "print(6*7)" && python3 -m pip --version >/dev/null && python3 -m venv /tmp/v && /tmp/v/bin/python -c "import sys; print(sys.prefix)" && git --version >/dev/null && curl --version >/dev/null && echo ok' },
    });
    assert.equal(e.body.exit_code, 0, e.body.stderr);
    assert.equal(e.body.stdout, '42\n/tmp/v\nok\n');
    assert.equal((await t.request('GET', '/v1/templates/python')).body.status, 'ready');
  });
});
