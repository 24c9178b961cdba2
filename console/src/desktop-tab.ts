import RFB from '@novnc/novnc';
import { describeError, socketUrl, vncPassword } from './api.js';
import { h } from './dom.js';
import type { Tab } from './tab.js';

const MAX_RETRIES = 15;
const RETRY_MS = 1_000;

/**
 * The machine's desktop in the page: noVNC over the server's VNC WebSocket
 * (`GET /v1/machines/{id}/desktop/vnc`), which joins it to the machine's VNC port. The
 * VNC password comes from the desktop settings, which only callers who reach the machine get.
 */
export function desktopTab(id: string): Tab {
  const screen = h('div', { class: 'desktop', 'data-testid': 'desktop' });
  const status = h('span', { class: 'status' }, 'Connecting to the desktop…');
  const reconnect = h('button', { hidden: true, onclick: () => void connect() }, 'Reconnect');
  let rfb: RFB | null = null;
  let disposed = false;
  // The VNC server starts a moment after the machine: a new machine's first attempts may find nothing listening.
  let retries = 0;
  const connect = async (): Promise<void> => {
    reconnect.hidden = true;
    status.textContent = 'Connecting to the desktop…';
    let password: string;
    try {
      password = await vncPassword(id);
    } catch (err) {
      status.textContent = `No desktop: ${describeError(err)}`;
      reconnect.hidden = false;
      return;
    }
    if (disposed) return;
    const r = new RFB(screen, socketUrl(`/v1/machines/${encodeURIComponent(id)}/desktop/vnc`), { credentials: { password }, shared: true });
    r.scaleViewport = true;
    r.background = '#1f2937';
    let connected = false;
    r.addEventListener('connect', () => {
      connected = true;
      retries = 0;
      status.textContent = 'Connected: click into the screen to type; it scales to fit.';
    });
    r.addEventListener('disconnect', (e) => {
      if (rfb !== r) return;
      if (!connected && retries < MAX_RETRIES) {
        retries++;
        status.textContent = `Waiting for the desktop to start (attempt ${retries + 1})…`;
        window.setTimeout(() => void (disposed || connect()), RETRY_MS);
        return;
      }
      const clean = (e as CustomEvent<{ clean: boolean }>).detail.clean;
      status.textContent = clean ? 'Disconnected.' : 'The desktop connection was lost.';
      reconnect.hidden = false;
    });
    r.addEventListener('securityfailure', (e) => {
      status.textContent = `The VNC server refused the password: ${(e as CustomEvent<{ reason?: string }>).detail.reason ?? 'no reason given'}.`;
    });
    rfb = r;
  };
  void connect();
  return {
    element: h('div', { class: 'desktop-tab' }, h('div', { class: 'toolbar' }, status, reconnect), screen),
    dispose: () => {
      disposed = true;
      const r = rfb;
      rfb = null;
      r?.disconnect();
    },
  };
}
