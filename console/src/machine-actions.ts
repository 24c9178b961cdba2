import { api, describeError, type Machine } from './api.js';
import { h } from './dom.js';

/** A machine's status as a coloured badge. */
export function statusBadge(status: string): HTMLSpanElement {
  return h('span', { class: `badge ${status}`, 'data-status': status }, status);
}

/**
 * The buttons that change a machine's state, for the states that allow them: Pause for a
 * running machine, Resume for a paused one, Delete for any. `changed` runs after each.
 */
export function machineActions(m: Machine, changed: () => void, failed: (message: string) => void): HTMLSpanElement {
  const act = (label: string, run: () => Promise<unknown>, cls = '') =>
    h('button', {
      class: cls,
      'data-action': label.toLowerCase(),
      onclick: (e) => {
        const b = e.currentTarget as HTMLButtonElement;
        b.disabled = true;
        b.textContent = `${label}…`;
        run().then(changed, (err: unknown) => {
          failed(`${label} ${m.id} failed: ${describeError(err)}`);
          changed();
        });
      },
    }, label);
  return h(
    'span',
    { class: 'buttons' },
    m.status === 'running' && act('Pause', () => api().pause(m.id)),
    m.status === 'paused' && act('Resume', () => api().resume(m.id)),
    act('Delete', async () => {
      if (!confirm(`Delete machine ${m.id}? Its disk is removed; its manual snapshots stay.`)) return;
      await api().deleteMachine(m.id);
    }, 'danger'),
  );
}
