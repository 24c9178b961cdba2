import { api, describeError, machineEvents } from './api.js';
import { formatBytes, formatTime, h, replace } from './dom.js';
import { navigate } from './router.js';
import type { Tab } from './tab.js';

const REFRESH_MS = 3_000;

/** The machine's snapshots (fork a new machine from one, or delete it) and its recorded events. */
export function historyTab(id: string): Tab {
  const snapshots = h('tbody');
  const events = h('tbody');
  const status = h('p', { class: 'status', role: 'status' });
  const load = async (): Promise<void> => {
    try {
      const [snaps, evs] = await Promise.all([api().listSnapshots(id), machineEvents(id)]);
      replace(
        snapshots,
        snaps.items.length
          ? snaps.items.map((s) =>
              h('tr', { 'data-snapshot': s.id },
                h('td', { class: 'mono' }, s.id),
                h('td', {}, s.kind),
                h('td', {}, s.memory ? 'memory + disk' : 'disk only'),
                h('td', { class: 'num' }, formatBytes(s.size_bytes)),
                h('td', {}, formatTime(s.created_at)),
                h('td', { class: 'actions' },
                  s.kind !== 'pause' && h('button', { 'data-action': 'fork', onclick: (e) => fork(e.currentTarget as HTMLButtonElement, s.id) }, 'Fork'),
                  s.kind !== 'pause' && h('button', { class: 'danger', 'data-action': 'delete-snapshot', onclick: () => remove(s.id) }, 'Delete'))))
          : h('tr', {}, h('td', { colspan: 6, class: 'empty' }, 'No snapshots: use “Take snapshot” above on a running machine.')),
      );
      replace(
        events,
        evs.map((e) =>
          h('tr', {},
            h('td', {}, e.name),
            h('td', {}, h('span', { class: `badge ${e.state.replace(' ', '-')}` }, e.state)),
            h('td', {}, formatTime(e.dtCreated)),
            h('td', {}, formatTime(e.dtFinished)),
            h('td', { class: 'event-error' }, e.error ?? ''))),
      );
    } catch (err) {
      status.textContent = describeError(err);
    }
  };
  const fork = (button: HTMLButtonElement, snapshotId: string): void => {
    button.disabled = true;
    status.textContent = `Forking a new machine from ${snapshotId}…`;
    api()
      .fork(snapshotId, { metadata: { created_with: 'console', forked_from: snapshotId } })
      .then(
        (m) => navigate(`/machines/${encodeURIComponent(m.id)}`),
        (err: unknown) => {
          button.disabled = false;
          status.textContent = `Fork failed: ${describeError(err)}`;
        },
      );
  };
  const remove = (snapshotId: string): void => {
    if (!confirm(`Delete snapshot ${snapshotId}? Machines forked from it keep running.`)) return;
    api()
      .deleteSnapshot(snapshotId)
      .then(
        () => load(),
        (err: unknown) => (status.textContent = `Delete failed: ${describeError(err)}`),
      );
  };
  void load();
  const timer = window.setInterval(() => void load(), REFRESH_MS);
  return {
    element: h(
      'div',
      { class: 'history' },
      status,
      h('h3', {}, 'Snapshots'),
      h('table', {}, h('thead', {}, h('tr', {}, ...['Snapshot', 'Kind', 'Holds', 'Size', 'Taken', ''].map((t) => h('th', {}, t)))), snapshots),
      h('h3', {}, 'Events'),
      h('table', {}, h('thead', {}, h('tr', {}, ...['Operation', 'State', 'Started', 'Finished', 'Error'].map((t) => h('th', {}, t)))), events),
    ),
    dispose: () => window.clearInterval(timer),
  };
}
