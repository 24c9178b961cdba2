/**
 * The web console in a real headless Chromium (Debian's `chromium`, driven by
 * playwright-core) against a real server: a wrong key refused, sign-in, a machine created
 * from the form, `echo hi` typed into the terminal and read back, a file uploaded, listed
 * and downloaded, a snapshot taken and forked, and a desktop machine's screen drawn by noVNC
 * through the server's VNC proxy. Takes a screenshot of each page, kept in
 * `$HANGAR_SCREENSHOTS_DIR` when set (`HANGAR_SCREENSHOTS_DIR=docs/console` refreshes the docs' pictures).
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { TestServer, waitFor } from '../../testing/harness.js';

const CHROMIUM = '/usr/bin/chromium';
/** Without these Chromium reaches for outside hosts (updates, sync, field trials); nothing here may. */
const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const SHOTS = process.env.HANGAR_SCREENSHOTS_DIR ?? join(tmpdir(), 'hangar-console-screenshots');
const LONG = 60_000;

/** A Tk window on the desktop's X display (wish is in the desktop template): something for the frame to show. */
const DRAW_WINDOW = [
  "cat > /tmp/hello.tcl <<'EOF'",
  'wm overrideredirect . 1',
  'wm geometry . 520x220+60+60',
  '. configure -background "#2f6fed"',
  'label .l -text "Hello from the machine" -font {Helvetica 24 bold} -background "#2f6fed" -foreground white',
  'pack .l -expand 1 -fill both',
  'EOF',
  // The X server may still be starting: wish exits at once when it finds no display, so try again.
  "(setsid sh -c 'for i in $(seq 50); do DISPLAY=:0 wish /tmp/hello.tcl && exit; sleep 0.2; done' </dev/null >/dev/null 2>&1 &) ; true",
].join('\n');

describe('web console in headless Chromium', () => {
  let t: TestServer;
  let key: string;
  let profile: string;
  let browser: BrowserContext;
  let page: Page;
  let machine: string;
  const pageErrors: string[] = [];

  const shot = (name: string) => page.screenshot({ path: join(SHOTS, `${name}.png`) });
  const go = (path: string) => page.goto(`${t.url}/console${path}`);
  const machineIdInUrl = (): string => /\/console\/machines\/(mch_[a-z0-9]+)/.exec(page.url())?.[1] ?? '';

  before(async () => {
    t = await TestServer.start();
    ({ key } = await t.newTeamKey('console'));
    profile = await mkdtemp(join(tmpdir(), 'hangar-chromium-'));
    await mkdir(SHOTS, { recursive: true });
    browser = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: FLAGS, viewport: { width: 1280, height: 860 } });
    page = browser.pages()[0] ?? (await browser.newPage());
    page.setDefaultTimeout(LONG);
    // Delete asks for a confirmation; the test confirms.
    page.on('dialog', (d) => void d.accept());
    page.on('console', (m) => {
      if (m.type() === 'error') pageErrors.push(m.text());
    });
    page.on('pageerror', (e) => pageErrors.push(String(e)));
  });
  after(async () => {
    await browser?.close();
    await rm(profile, { recursive: true, force: true });
    await t.dispose();
  });

  it('refuses a wrong key on the sign-in page and says why', async () => {
    await go('/');
    await page.fill('#api-key', 'hk_not-a-real-key-0000000000');
    await page.click('button[type=submit]');
    const alert = page.locator('.sign-in .error');
    await alert.waitFor({ state: 'visible' });
    assert.match(await alert.innerText(), /Sign-in refused: .*UNAUTHORIZED/);
    assert.equal(await page.locator('hangar-machine-list').count(), 0, 'no machine list without a valid key');
    await shot('sign-in');
  });

  it('signs in with a team key and shows the (empty) machine list', async () => {
    await page.fill('#api-key', key);
    await page.click('button[type=submit]');
    await page.locator('td.empty').waitFor();
    assert.match(await page.locator('td.empty').innerText(), /No machines yet/);
  });

  it('creates a machine from the form and opens its page with live charts', async () => {
    await page.locator('#create-template option[value=base]').waitFor({ state: 'attached' });
    await page.selectOption('#create-template', 'base');
    await page.fill('#create-memory', '256');
    await page.click('#create-machine');
    await page.waitForURL(/\/console\/machines\/mch_/);
    machine = machineIdInUrl();
    await page.locator('.machine-head .badge.running').waitFor();
    const m = await t.request('GET', `/v1/machines/${machine}`, { key });
    assert.equal(m.body.status, 'running');
    assert.equal(m.body.config.memory_mb, 256);
    assert.equal(m.body.isolation, 'container', "the template's tier when the form leaves it");
    // Two samples make a CPU figure: the legend then shows a percentage.
    // A busy loop in the machine shows up in the CPU chart (the compute listing's cgroup counters).
    const busy = t.request('POST', `/v1/machines/${machine}/exec`, { body: { cmd: "timeout 4 sh -c 'while :; do :; done'; true" }, key });
    await page.waitForFunction(() => {
      const m = /vCPU: (\d+\.\d) %/.exec((globalThis as any).document.querySelector('.charts')?.innerText ?? '');
      return m !== null && Number(m[1]) > 20;
    });
    assert.equal((await busy).status, 200);
    // A few more samples, so the screenshot shows the busy loop's rise and fall.
    await page.waitForFunction(() => Number((globalThis as any).document.querySelector('figure.chart')?.dataset.points) >= 8);
    assert.match(await page.locator('.charts').innerText(), /Memory[\s\S]*used \(limit 256 MiB\): [\d.]+ (KiB|MiB)/);
    await shot('machine-overview');
  });

  it('creates a gvisor machine when the form asks for that tier', async () => {
    await go('/');
    await page.locator('#create-template option[value=base]').waitFor({ state: 'attached' });
    await page.selectOption('#create-isolation', 'gvisor');
    await page.click('#create-machine');
    await page.waitForURL((u) => /\/console\/machines\/mch_/.test(u.pathname) && !u.pathname.includes(machine));
    const gvisor = machineIdInUrl();
    await page.locator('.machine-head .badge.running').waitFor();
    assert.equal((await t.request('GET', `/v1/machines/${gvisor}`, { key })).body.isolation, 'gvisor');
    assert.equal((await t.request('DELETE', `/v1/machines/${gvisor}`, { key })).status, 200);
    // Back to the first machine, where the next tests work.
    await go(`/machines/${machine}`);
    await page.locator('.machine-head .badge.running').waitFor();
  });

  it('types `echo hi` into the terminal and reads `hi` back', async () => {
    await page.click('.tabs a:has-text("Terminal")');
    await page.locator('.terminal .xterm-rows').waitFor();
    await page.waitForFunction(() => /Connected/.test((globalThis as any).document.querySelector('.terminal-tab .status')?.textContent ?? ''));
    await page.click('.terminal');
    await page.keyboard.type('echo hi');
    await page.keyboard.press('Enter');
    await page.waitForFunction(() =>
      [...(globalThis as any).document.querySelectorAll('.terminal .xterm-rows > div')].some((row: any) => row.textContent.trim() === 'hi'),
    );
    assert.equal(await page.locator('.terminal-tab button:has-text("Reconnect")').isVisible(), false, 'no Reconnect while connected');
    await shot('terminal');
  });

  it('uploads a file in the file browser and lists it; the machine has its bytes', async () => {
    await page.click('.tabs a:has-text("Files")');
    await page.locator('.files .status:has-text("entries in /root")').waitFor();
    await page.setInputFiles('#files-upload', { name: 'hello.txt', mimeType: 'text/plain', buffer: Buffer.from('uploaded from the console\n') });
    await page.locator('tr[data-path="/root/hello.txt"]').waitFor();
    assert.match(await page.locator('tr[data-path="/root/hello.txt"]').innerText(), /hello\.txt\s+file\s+26 B/);
    const r = await t.request('POST', `/v1/machines/${machine}/exec`, { body: { cmd: 'cat /root/hello.txt' }, key });
    assert.equal(r.body.stdout, 'uploaded from the console\n');
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('tr[data-path="/root/hello.txt"] button[data-action=download]')]);
    assert.equal(download.suggestedFilename(), 'hello.txt');
    assert.equal(await readFile((await download.path())!, 'utf8'), 'uploaded from the console\n');
    await shot('files');
  });

  it('takes a snapshot, forks a machine from it, and deletes the fork', async () => {
    await page.click('button[data-action=snapshot]');
    await page.waitForURL(/\/history$/);
    await page.locator('tr[data-snapshot]').waitFor();
    // The machine's events: at least its create, finished.
    await page.locator('.history tr:has(td:text-is("create")) .badge:text-is("done")').waitFor();
    await shot('snapshots');
    await page.click('tr[data-snapshot] button[data-action=fork]');
    await page.waitForURL((u) => /\/console\/machines\/mch_/.test(u.pathname) && !u.pathname.includes(machine));
    const fork = machineIdInUrl();
    await page.locator('.machine-head .badge.running').waitFor();
    await page.click('.machine-head button[data-action=delete]');
    await page.waitForURL((u) => u.pathname === '/console/');
    await waitFor(async () => (await t.request('GET', `/v1/machines/${fork}`, { key })).body?.status === 'destroyed' || null);
    await page.locator(`tr[data-machine="${machine}"]`).waitFor();
    assert.equal(await page.locator(`tr[data-machine="${fork}"]`).count(), 0);
  });

  it('pauses and resumes a machine from its page; the terminal tab waits for a running machine', async () => {
    await go(`/machines/${machine}/terminal`);
    await page.locator('.terminal .xterm-rows').waitFor();
    await page.click('.machine-head button[data-action=pause]');
    await page.locator('.machine-head .badge.paused').waitFor();
    assert.match(await page.locator('.tab-body').innerText(), /needs a running machine; this one is paused\. Resume it/);
    await page.click('.machine-head button[data-action=resume]');
    await page.locator('.machine-head .badge.running').waitFor();
    await page.locator('.terminal .xterm-rows').waitFor();
    assert.equal((await t.request('GET', `/v1/machines/${machine}`, { key })).body.status, 'running');
  });

  it("shows a desktop machine's screen through the VNC proxy (a non-blank frame)", async () => {
    const d = await t.request('POST', '/v1/machines', { body: { template: 'desktop' }, key });
    assert.equal(d.status, 201, d.text);
    // Opened at once, as a user would: the page waits for the VNC server to come up.
    await go(`/machines/${d.body.id}/desktop`);
    const drawn = await t.request('POST', `/v1/machines/${d.body.id}/exec`, { body: { cmd: DRAW_WINDOW }, key });
    assert.equal(drawn.body.exit_code, 0, drawn.text);
    await page.locator('.desktop canvas').waitFor();
    await page.waitForFunction(() => /Connected/.test((globalThis as any).document.querySelector('.desktop-tab .status')?.textContent ?? ''));
    // Pixels of noVNC's canvas: the Tk window's blue must be there, among other colours.
    const blue = await page.waitForFunction(() => {
      const canvas = (globalThis as any).document.querySelector('.desktop canvas');
      const { data } = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height);
      let blue = 0;
      const colours = new Set<number>();
      for (let i = 0; i < data.length; i += 4) {
        if (data[i] === 0x2f && data[i + 1] === 0x6f && data[i + 2] === 0xed) blue++;
        if (colours.size < 64) colours.add((data[i] << 16) | (data[i + 1] << 8) | data[i + 2]);
      }
      return blue > 10_000 && colours.size > 2 ? blue : false;
    });
    assert.ok(Number(await blue.jsonValue()) > 10_000);
    await shot('desktop');
    await go('/');
    await page.locator(`tr[data-machine="${d.body.id}"] .tag:has-text("desktop")`).waitFor();
    await shot('machines');
  });

  it('broke no rule of its Content-Security-Policy and threw no uncaught error', () => {
    // Expected: the wrong-key sign-in's 401, and the desktop's first attempts while its VNC
    // server starts (502 from the proxy, which noVNC logs before the page tries again).
    const unexpected = pageErrors.filter((e) => !/status of 401|desktop\/vnc.*Unexpected response code: 502|^Failed when connecting: Connection closed/.test(e));
    assert.deepEqual(unexpected, []);
  });
});
