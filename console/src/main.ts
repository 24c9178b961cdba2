/**
 * The web console: one page served at /console; this element routes between the sign-in
 * page, the machine list and a machine's page by the path, with the history API.
 */
import '@xterm/xterm/css/xterm.css';
import './style.css';
import { signOut, storedKey } from './api.js';
import { h, replace } from './dom.js';
import { MachineListPage } from './machine-list.js';
import { MachinePage } from './machine-page.js';
import { BASE, navigate } from './router.js';
import { SignInPage } from './sign-in.js';

class HangarConsole extends HTMLElement {
  private readonly main = h('main');

  connectedCallback(): void {
    window.addEventListener('popstate', () => this.route());
    // Links inside the console change the route without a reload.
    this.addEventListener('click', (e) => {
      const a = (e.target as Element).closest('a[data-route]');
      if (!a || (e as MouseEvent).ctrlKey || (e as MouseEvent).metaKey) return;
      e.preventDefault();
      navigate(a.getAttribute('data-route') ?? '/');
    });
    this.route();
  }

  private route(): void {
    const path = location.pathname.startsWith(BASE) ? location.pathname.slice(BASE.length) : '/';
    const parts = path.split('/').filter(Boolean);
    if (!storedKey() || parts[0] === 'sign-in') {
      this.show(false, new SignInPage(() => navigate('/')));
      return;
    }
    if (parts[0] === 'machines' && parts[1]) {
      this.show(true, new MachinePage(decodeURIComponent(parts[1]), parts[2] ?? 'overview'));
      return;
    }
    this.show(true, new MachineListPage());
  }

  private show(signedIn: boolean, page: HTMLElement): void {
    const header = h(
      'header',
      {},
      h('a', { class: 'brand', href: `${BASE}/`, 'data-route': '/' }, h('span', { class: 'logo' }, '▣'), ' Hangar'),
      signedIn && h('nav', {}, h('a', { href: `${BASE}/`, 'data-route': '/' }, 'Machines')),
      signedIn &&
        h('button', {
          class: 'ghost',
          onclick: () => {
            signOut();
            navigate('/sign-in');
          },
        }, 'Sign out'),
    );
    replace(this.main, page);
    replace(this, header, this.main);
  }
}

customElements.define('hangar-console', HangarConsole);
