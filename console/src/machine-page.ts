import { api, describeError, desktopTemplates, type Machine } from './api.js';
import { formatTime, h, replace } from './dom.js';
import { desktopTab } from './desktop-tab.js';
import { filesTab } from './files-tab.js';
import { historyTab } from './history-tab.js';
import { machineActions, statusBadge } from './machine-actions.js';
import { overviewTab } from './overview-tab.js';
import { navigate } from './router.js';
import type { Tab } from './tab.js';
import { terminalTab } from './terminal-tab.js';

const REFRESH_MS = 2_000;
const TABS = [
  ['overview', 'Overview'],
  ['terminal', 'Terminal'],
  ['files', 'Files'],
  ['history', 'Events & snapshots'],
  ['desktop', 'Desktop'],
] as const;

/** A machine's page: its state and actions on top, then one tab at a time. */
export class MachinePage extends HTMLElement {
  private timer: number | undefined;
  private machine: Machine | null = null;
  private desktop = false;
  private tab: Tab | null = null;
  private readonly head = h('div', { class: 'machine-head' });
  private readonly tabs = h('nav', { class: 'tabs', role: 'tablist' });
  private readonly body = h('section', { class: 'card tab-body' });
  private readonly notice = h('p', { class: 'error', role: 'alert' });

  constructor(
    private readonly machineId: string,
    private readonly tabName: string,
  ) {
    super();
  }

  connectedCallback(): void {
    this.replaceChildren(this.head, this.notice, this.tabs, this.body);
    replace(this.body, h('p', { class: 'status' }, 'Loading…'));
    void this.load();
  }

  disconnectedCallback(): void {
    window.clearInterval(this.timer);
    this.tab?.dispose();
  }

  private async load(): Promise<void> {
    try {
      const [m, desktops] = await Promise.all([api().getMachine(this.machineId), desktopTemplates()]);
      this.desktop = desktops.has(m.template);
      this.render(m);
      this.open();
      this.timer = window.setInterval(() => void this.refresh(), REFRESH_MS);
    } catch (err) {
      replace(this.body, h('p', { class: 'error' }, `Machine ${this.machineId}: ${describeError(err)}`), h('a', { href: '/console/', 'data-route': '/' }, '← All machines'));
    }
  }

  private async refresh(): Promise<void> {
    try {
      const m = await api().getMachine(this.machineId);
      if (this.isConnected) this.render(m);
    } catch (err) {
      this.notice.textContent = describeError(err);
    }
  }

  private render(m: Machine): void {
    const changed = this.machine?.status !== m.status;
    this.machine = m;
    if (!changed && this.head.childElementCount) return;
    replace(
      this.head,
      h('div', {},
        h('a', { href: '/console/', 'data-route': '/', class: 'back' }, '← Machines'),
        h('h1', {}, h('span', { class: 'mono' }, m.id), ' ', statusBadge(m.status)),
        h('p', { class: 'facts' },
          `${m.template} · ${m.config.vcpus} vCPU · ${m.config.memory_mb} MB memory · ${m.config.disk_mb} MB disk`,
          m.private_ip && ` · ${m.private_ip}`,
          ` · created ${formatTime(m.created_at)}`,
          m.timeout_at && ` · expires ${formatTime(m.timeout_at)}`,
          m.error_reason && h('span', { class: 'error' }, ` · ${m.error_reason}`)),
      ),
      h('div', { class: 'head-actions' },
        m.status === 'running' && h('button', { 'data-action': 'snapshot', onclick: (e) => this.snapshot(e.currentTarget as HTMLButtonElement) }, 'Take snapshot'),
        machineActions(m, () => {
          if (m.status !== 'destroyed') void this.refresh();
        }, (msg) => (this.notice.textContent = msg))),
    );
    if (m.status === 'destroyed') navigate('/');
    // Most tabs need a running machine: the open one starts again when the state changes.
    if (this.tab) this.open();
  }

  private snapshot(button: HTMLButtonElement): void {
    button.disabled = true;
    button.textContent = 'Snapshotting…';
    api()
      .snapshot(this.machineId)
      .then(
        (s) => {
          this.notice.textContent = '';
          if (this.tabName === 'history') this.open();
          else navigate(`/machines/${encodeURIComponent(this.machineId)}/history`);
          return s;
        },
        (err: unknown) => (this.notice.textContent = `Snapshot failed: ${describeError(err)}`),
      )
      .finally(() => {
        button.disabled = false;
        button.textContent = 'Take snapshot';
      });
  }

  private open(): void {
    const m = this.machine;
    if (!m) return;
    const base = `/machines/${encodeURIComponent(this.machineId)}`;
    replace(
      this.tabs,
      TABS.filter(([name]) => name !== 'desktop' || this.desktop).map(([name, label]) =>
        h('a', { href: `/console${base}/${name}`, 'data-route': `${base}/${name}`, role: 'tab', class: name === this.tabName ? 'active' : '', 'aria-selected': name === this.tabName ? 'true' : 'false' }, label),
      ),
    );
    this.tab?.dispose();
    const running = m.status === 'running';
    const needsRunning = (what: string): Tab => ({
      element: h('p', { class: 'status' }, `The ${what} needs a running machine; this one is ${m.status}.`, m.status === 'paused' && ' Resume it with the button above.'),
      dispose: () => undefined,
    });
    switch (this.tabName) {
      case 'terminal':
        this.tab = running ? terminalTab(m.id) : needsRunning('terminal');
        break;
      case 'files':
        this.tab = running ? filesTab(m.id) : needsRunning('file browser');
        break;
      case 'history':
        this.tab = historyTab(m.id);
        break;
      case 'desktop':
        this.tab = !this.desktop ? { element: h('p', { class: 'status' }, `Template ${m.template} runs no desktop.`), dispose: () => undefined } : running ? desktopTab(m.id) : needsRunning('desktop');
        break;
      default:
        this.tab = running ? overviewTab(m) : needsRunning('live statistics view');
    }
    replace(this.body, this.tab.element);
  }
}
customElements.define('hangar-machine-page', MachinePage);
