import { FitAddon } from '@xterm/addon-fit';
import { Terminal } from '@xterm/xterm';
import { socketUrl } from './api.js';
import { h } from './dom.js';
import type { Tab } from './tab.js';

/** A shell in the machine: xterm.js over the server's terminal WebSocket (`GET /v1/machines/{id}/pty`). */
export function terminalTab(id: string): Tab {
  const screen = h('div', { class: 'terminal', 'data-testid': 'terminal' });
  const status = h('span', { class: 'status' }, 'Connecting…');
  const reconnect = h('button', { hidden: true, onclick: () => connect() }, 'Reconnect');
  const term = new Terminal({ cursorBlink: true, fontFamily: 'ui-monospace, Menlo, Consolas, monospace', fontSize: 14, lineHeight: 1.2, theme: { background: '#000000' } });
  const fit = new FitAddon();
  term.loadAddon(fit);
  let ws: WebSocket | null = null;
  const encoder = new TextEncoder();
  const sendSize = (): void => {
    if (ws?.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ type: 'resize', cols: term.cols, rows: term.rows }));
  };
  const connect = (): void => {
    reconnect.hidden = true;
    status.textContent = 'Connecting…';
    const socket = new WebSocket(socketUrl(`/v1/machines/${encodeURIComponent(id)}/pty`, { cols: term.cols, rows: term.rows }));
    socket.binaryType = 'arraybuffer';
    socket.onopen = () => {
      status.textContent = 'Connected: a login shell in the machine. Closing the tab ends it.';
      sendSize();
      term.focus();
    };
    socket.onmessage = (e: MessageEvent<ArrayBuffer | string>) => {
      if (typeof e.data === 'string') {
        const msg = JSON.parse(e.data) as { type: string; exit_code?: number | null; message?: string };
        if (msg.type === 'exit') term.write(`\r\n[the shell exited with code ${msg.exit_code ?? 'unknown'}]\r\n`);
        else if (msg.message) term.write(`\r\n[${msg.message}]\r\n`);
        return;
      }
      term.write(new Uint8Array(e.data));
    };
    socket.onclose = (e) => {
      if (ws !== socket) return;
      status.textContent = `Disconnected${e.reason ? ` (${e.reason})` : ''}.`;
      reconnect.hidden = false;
    };
    ws = socket;
  };
  term.onData((data) => {
    if (ws?.readyState === WebSocket.OPEN) ws.send(encoder.encode(data));
  });
  term.onResize(sendSize);
  const observer = new ResizeObserver(() => {
    if (screen.clientWidth > 0) fit.fit();
  });
  // xterm needs its element in the page before it can measure; the tab is attached right after this returns.
  let disposed = false;
  requestAnimationFrame(() => {
    if (disposed) return;
    term.open(screen);
    fit.fit();
    observer.observe(screen);
    connect();
  });
  return {
    element: h('div', { class: 'terminal-tab' }, h('div', { class: 'toolbar' }, status, reconnect), screen),
    dispose: () => {
      disposed = true;
      observer.disconnect();
      const s = ws;
      ws = null;
      s?.close();
      term.dispose();
    },
  };
}
