/** The template catalogue over several directories, and the manifest's desktop description. */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { desktopEnv } from './desktop.js';
import { TemplateCatalog, TemplateManifestSchema } from './templates.js';

const manifest = (name: string, extra: Record<string, unknown> = {}) => ({ name, init: ['/sbin/init'], created_at: '2026-01-01T00:00:00.000Z', ...extra });

describe('TemplateCatalog', () => {
  let root: string;
  let own: string;
  let shared: string;
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'hangar-templates-'));
    own = join(root, 'own');
    shared = join(root, 'shared');
    const put = async (dir: string, m: Record<string, unknown>) => {
      await mkdir(join(dir, String(m.name), 'rootfs'), { recursive: true });
      await writeFile(join(dir, String(m.name), 'template.json'), JSON.stringify(m));
    };
    await put(own, manifest('base', { description: 'own base' }));
    await put(shared, manifest('base', { description: 'shared base' }));
    await put(shared, manifest('desktop', { desktop: { vnc_port: 5900, width: 1024, height: 768 } }));
    // A build in progress is hidden: its name does not start with a letter or digit.
    await mkdir(join(shared, '.desktop-build-x'), { recursive: true });
  });
  after(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('finds templates in every directory; the first directory holding a name wins', async () => {
    const c = new TemplateCatalog([own, shared]);
    assert.equal((await c.get('base'))?.description, 'own base');
    assert.equal((await c.get('base'))?.rootfs, join(own, 'base', 'rootfs'));
    assert.equal((await c.get('desktop'))?.rootfs, join(shared, 'desktop', 'rootfs'));
    assert.equal(await c.get('nope'), null);
    assert.deepEqual((await c.list()).map((t) => t.name), ['base', 'desktop']);
  });

  it('a missing directory is no error', async () => {
    const c = new TemplateCatalog([own, join(root, 'missing')]);
    assert.deepEqual((await c.list()).map((t) => t.name), ['base']);
  });

  it('the desktop description is optional and checked', () => {
    assert.equal(TemplateManifestSchema.parse(manifest('x')).desktop, undefined);
    assert.deepEqual(TemplateManifestSchema.parse(manifest('x', { desktop: { vnc_port: 5901, width: 800, height: 600 } })).desktop, { vnc_port: 5901, width: 800, height: 600 });
    assert.throws(() => TemplateManifestSchema.parse(manifest('x', { desktop: { vnc_port: 0, width: 800, height: 600 } })));
    assert.throws(() => TemplateManifestSchema.parse(manifest('x', { desktop: { vnc_port: 5900, width: 800 } })));
  });

  it('desktopEnv hands the screen, port and password to init', () => {
    assert.deepEqual(desktopEnv({ vnc_port: 5900, width: 1280, height: 800 }, 'abcdefgh'), {
      HANGAR_VNC_PASSWORD: 'abcdefgh',
      HANGAR_VNC_PORT: '5900',
      HANGAR_DESKTOP_WIDTH: '1280',
      HANGAR_DESKTOP_HEIGHT: '800',
    });
  });
});
