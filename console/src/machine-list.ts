import { api, describeError, desktopTemplates, type Machine } from './api.js';
import { formatTime, h, replace } from './dom.js';
import { machineActions, statusBadge } from './machine-actions.js';
import { navigate } from './router.js';

/** How often the list asks for the machines' states. */
const REFRESH_MS = 2_000;

/** The machine list with live states, and the form that creates a machine from a template. */
export class MachineListPage extends HTMLElement {
  private timer: number | undefined;
  private readonly table = h('tbody');
  private readonly notice = h('p', { class: 'error', role: 'alert' });
  private desktops = new Set<string>();

  connectedCallback(): void {
    this.replaceChildren(
      h('section', { class: 'card' }, h('h2', {}, 'New machine'), this.createForm()),
      h(
        'section',
        { class: 'card' },
        h('h2', {}, 'Machines'),
        this.notice,
        h('table', { class: 'machines' },
          h('thead', {}, h('tr', {}, ...['Machine', 'Template', 'State', 'Size', 'Address', 'Created', 'Actions'].map((t) => h('th', {}, t)))),
          this.table),
      ),
    );
    void this.refresh();
    this.timer = window.setInterval(() => void this.refresh(), REFRESH_MS);
  }

  disconnectedCallback(): void {
    window.clearInterval(this.timer);
  }

  private async refresh(): Promise<void> {
    try {
      const machines: Machine[] = [];
      for await (const m of api().listMachines({ state: ['creating', 'running', 'paused', 'error'] })) machines.push(m);
      if (!this.isConnected) return;
      this.notice.textContent = '';
      if (machines.length === 0) {
        replace(this.table, h('tr', {}, h('td', { colspan: 7, class: 'empty' }, 'No machines yet: create one above.')));
        return;
      }
      replace(this.table, machines.map((m) => this.row(m)));
    } catch (err) {
      this.notice.textContent = `Could not list machines: ${describeError(err)}`;
    }
  }

  private row(m: Machine): HTMLTableRowElement {
    const path = `/machines/${encodeURIComponent(m.id)}`;
    return h(
      'tr',
      { 'data-machine': m.id },
      h('td', {}, h('a', { href: `/console${path}`, 'data-route': path, class: 'mono' }, m.id)),
      h('td', {}, m.template, this.desktops.has(m.template) && h('span', { class: 'tag' }, 'desktop')),
      h('td', {}, statusBadge(m.status)),
      h('td', {}, `${m.config.vcpus} vCPU · ${m.config.memory_mb} MB`),
      h('td', { class: 'mono' }, m.private_ip ?? ''),
      h('td', {}, formatTime(m.created_at)),
      h('td', { class: 'actions' }, h('a', { href: `/console${path}`, 'data-route': path, class: 'button' }, 'Open'), machineActions(m, () => void this.refresh(), (msg) => (this.notice.textContent = msg))),
    );
  }

  private createForm(): HTMLFormElement {
    const template = h('select', { id: 'create-template', name: 'template' }, h('option', { value: 'base' }, 'base'));
    const num = (id: string, value: number, min: number, max: number, step = 1) => h('input', { id, type: 'number', value, min, max, step, required: true });
    const vcpus = num('create-vcpus', 1, 1, 64);
    const memory = num('create-memory', 512, 16, 262144, 16);
    const disk = num('create-disk', 1024, 16, 1048576, 16);
    const minutes = num('create-timeout', 30, 1, 43200);
    const isolation = h(
      'select',
      { id: 'create-isolation', name: 'isolation' },
      h('option', { value: '' }, "the template's (container unless it says)"),
      h('option', { value: 'container' }, 'container (runc)'),
      h('option', { value: 'gvisor' }, 'gvisor (no pause, snapshots or resize)'),
    );
    const status = h('p', { class: 'status', role: 'status' });
    const button = h('button', { type: 'submit', class: 'primary', id: 'create-machine' }, 'Create machine');
    void (async () => {
      try {
        this.desktops = await desktopTemplates();
        const options: HTMLOptionElement[] = [];
        for await (const t of api().listTemplates()) {
          if (t.status === 'error') continue;
          const label = `${t.name}${this.desktops.has(t.name) ? ' (desktop)' : ''}${t.status === 'not_built' ? ' (built on first use, 1–2 min)' : ''}`;
          options.push(h('option', { value: t.name, selected: t.name === 'base' }, label));
        }
        if (options.length) replace(template, options);
      } catch (err) {
        status.textContent = `Could not list templates: ${describeError(err)}`;
      }
    })();
    const field = (label: string, input: HTMLElement, hint?: string) =>
      h('div', { class: 'field' }, h('label', { for: input.id }, label), input, hint && h('small', {}, hint));
    return h(
      'form',
      {
        class: 'create',
        onsubmit: (e) => {
          e.preventDefault();
          button.disabled = true;
          status.textContent = `Creating a ${template.value} machine…`;
          api()
            .createMachine({
              template: template.value,
              config: { vcpus: Number(vcpus.value), memory_mb: Number(memory.value), disk_mb: Number(disk.value) },
              timeout_ms: Number(minutes.value) * 60_000,
              metadata: { created_with: 'console' },
              ...(isolation.value === 'container' || isolation.value === 'gvisor' ? { isolation: isolation.value } : {}),
            })
            .then(
              (m) => navigate(`/machines/${encodeURIComponent(m.id)}`),
              (err: unknown) => {
                status.textContent = `Create failed: ${describeError(err)}`;
              },
            )
            .finally(() => (button.disabled = false));
        },
      },
      field('Template', template),
      field('vCPUs', vcpus),
      field('Memory (MB)', memory),
      field('Disk (MB)', disk),
      field('Delete after (minutes)', minutes),
      field('Isolation', isolation),
      h('div', { class: 'field submit' }, button),
      status,
    );
  }
}
customElements.define('hangar-machine-list', MachineListPage);
