import { describeError, signIn } from './api.js';
import { h } from './dom.js';

/** The sign-in page: an API key, checked against the server before it is kept. */
export class SignInPage extends HTMLElement {
  constructor(private readonly done: () => void) {
    super();
  }

  connectedCallback(): void {
    const input = h('input', { id: 'api-key', type: 'password', name: 'key', autocomplete: 'current-password', placeholder: 'hk_…', required: true });
    const error = h('p', { class: 'error', role: 'alert' });
    const button = h('button', { type: 'submit', class: 'primary' }, 'Sign in');
    const form = h(
      'form',
      {
        class: 'card sign-in',
        onsubmit: (e) => {
          e.preventDefault();
          button.disabled = true;
          error.textContent = '';
          signIn(input.value.trim()).then(this.done, (err: unknown) => {
            button.disabled = false;
            error.textContent = `Sign-in refused: ${describeError(err)}`;
          });
        },
      },
      h('h1', {}, 'Sign in to Hangar'),
      h('label', { for: 'api-key' }, 'API key'),
      input,
      h('p', { class: 'hint' }, 'A team or user key (Authorization: Bearer …). The admin key is printed at the server’s first start and kept in $HANGAR_DATA_DIR/admin-key. The key stays in this tab only.'),
      button,
      error,
    );
    this.replaceChildren(form);
    input.focus();
  }
}
customElements.define('hangar-sign-in', SignInPage);
