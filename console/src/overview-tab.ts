import { describeError, sampleMachine, type Machine, type MachineSample } from './api.js';
import { LiveChart } from './chart.js';
import { formatBytes, h } from './dom.js';
import type { Tab } from './tab.js';

const SAMPLE_MS = 1_000;

/** Live CPU, memory and network charts from the compute listing's cgroup and interface counters. */
export function overviewTab(m: Machine): Tab {
  const cpu = new LiveChart('CPU', [{ label: `% of ${m.config.vcpus} vCPU`, colour: '#2f6fed' }], (v) => `${v.toFixed(1)} %`, () => 100);
  const memory = new LiveChart('Memory', [{ label: `used (limit ${formatBytes(m.config.memory_mb * 1024 * 1024)})`, colour: '#8a3ffc' }], formatBytes);
  const network = new LiveChart('Network (eth0)', [{ label: 'in', colour: '#0f9960' }, { label: 'out', colour: '#d9822b' }], (v) => `${formatBytes(v)}/s`);
  const status = h('p', { class: 'status' }, 'Sampling every second…');
  let last: { at: number; s: MachineSample } | null = null;
  let stopped = false;
  const tick = async (): Promise<void> => {
    try {
      const s = await sampleMachine(m.id);
      if (stopped) return;
      const at = performance.now();
      if (!s) {
        status.textContent = 'No statistics: the machine is not running.';
        return;
      }
      if (last) {
        const seconds = (at - last.at) / 1000;
        cpu.push([Math.max(0, (s.cpuNs - last.s.cpuNs) / 1e9 / seconds / m.config.vcpus) * 100]);
        network.push([Math.max(0, (s.rxBytes - last.s.rxBytes) / seconds), Math.max(0, (s.txBytes - last.s.txBytes) / seconds)]);
      }
      memory.push([s.memoryBytes]);
      last = { at, s };
      status.textContent = `Live: cgroup and interface counters of ${m.id}, sampled every second (GET /compute/machines).`;
    } catch (err) {
      status.textContent = `Could not sample: ${describeError(err)}`;
    }
  };
  void tick();
  const timer = window.setInterval(() => void tick(), SAMPLE_MS);
  return {
    element: h('div', { class: 'overview' }, h('div', { class: 'charts' }, cpu.element, memory.element, network.element), status),
    dispose: () => {
      stopped = true;
      window.clearInterval(timer);
    },
  };
}
