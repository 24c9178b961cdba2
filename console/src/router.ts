/** Where the server serves the console. */
export const BASE = '/console';

/** Go to a console path (e.g. `/machines/mch_…`) without reloading the page. */
export function navigate(path: string): void {
  history.pushState(null, '', BASE + path);
  window.dispatchEvent(new PopStateEvent('popstate'));
}
