import { api, describeError } from './api.js';
import { formatBytes, formatTime, h, replace } from './dom.js';
import type { Tab } from './tab.js';

/** The parent of an absolute path ('/' stays '/'). */
function parentOf(path: string): string {
  const i = path.replace(/\/+$/, '').lastIndexOf('/');
  return i <= 0 ? '/' : path.slice(0, i);
}

function join(dir: string, name: string): string {
  return dir === '/' ? `/${name}` : `${dir}/${name}`;
}

/** A file browser of the machine: list a directory, go in and up, upload, download, make folders and delete. */
export function filesTab(id: string, start = '/root'): Tab {
  let dir = start;
  const pathInput = h('input', { id: 'files-path', value: dir, 'aria-label': 'Directory' });
  const list = h('tbody');
  const status = h('p', { class: 'status', role: 'status' });
  const upload = h('input', { id: 'files-upload', type: 'file', multiple: true, hidden: true });
  const run = (what: string, job: () => Promise<unknown>): void => {
    status.textContent = `${what}…`;
    job().then(
      () => load(dir, ''),
      (err: unknown) => (status.textContent = `${what} failed: ${describeError(err)}`),
    );
  };
  const load = (path: string, note = 'Loading…'): void => {
    if (note) status.textContent = note;
    api()
      .listFiles(id, path)
      .then(
        (l) => {
          dir = l.path;
          pathInput.value = dir;
          status.textContent = `${l.entries.length} ${l.entries.length === 1 ? 'entry' : 'entries'} in ${dir}`;
          const rows = l.entries.map((e) => {
            const name = e.path.slice(e.path.lastIndexOf('/') + 1);
            const isDir = e.type === 'directory';
            return h(
              'tr',
              { 'data-path': e.path },
              h('td', {}, isDir ? h('a', { href: '#', class: 'dir', onclick: (ev) => (ev.preventDefault(), load(e.path)) }, `${name}/`) : h('span', {}, name)),
              h('td', { class: 'kind' }, isDir ? 'folder' : e.type),
              h('td', { class: 'num' }, isDir ? '' : formatBytes(e.size)),
              h('td', { class: 'mono' }, e.mode),
              h('td', {}, formatTime(e.mtime)),
              h('td', { class: 'actions' },
                e.type === 'file' && h('button', { 'data-action': 'download', onclick: () => download(e.path, name) }, 'Download'),
                h('button', { class: 'danger', 'data-action': 'delete', onclick: () => confirm(`Delete ${e.path}${isDir ? ' and everything in it' : ''}?`) && run(`Deleting ${name}`, () => api().remove(id, e.path)) }, 'Delete')),
            );
          });
          if (!rows.length) rows.push(h('tr', {}, h('td', { colspan: 6, class: 'empty' }, 'Empty directory: upload files with the button above.')));
          if (dir !== '/') rows.unshift(h('tr', {}, h('td', { colspan: 6 }, h('a', { href: '#', class: 'dir', onclick: (ev) => (ev.preventDefault(), load(parentOf(dir))) }, '↑ ..'))));
          replace(list, rows);
        },
        (err: unknown) => (status.textContent = `Cannot list ${path}: ${describeError(err)}`),
      );
  };
  const download = (path: string, name: string): void => {
    status.textContent = `Downloading ${name}…`;
    api()
      .readFile(id, path)
      .then(
        (bytes) => {
          const url = URL.createObjectURL(new Blob([bytes as Uint8Array<ArrayBuffer>]));
          h('a', { href: url, download: name }).click();
          setTimeout(() => URL.revokeObjectURL(url), 10_000);
          status.textContent = `Downloaded ${name} (${formatBytes(bytes.byteLength)}).`;
        },
        (err: unknown) => (status.textContent = `Download failed: ${describeError(err)}`),
      );
  };
  upload.addEventListener('change', () => {
    const files = [...(upload.files ?? [])];
    upload.value = '';
    if (!files.length) return;
    run(`Uploading ${files.map((f) => f.name).join(', ')}`, async () => {
      // A File is a Blob: the browser streams it, whatever its size.
      for (const f of files) await api().writeFile(id, join(dir, f.name), f);
    });
  });
  load(dir);
  return {
    element: h(
      'div',
      { class: 'files' },
      h('form', { class: 'toolbar', onsubmit: (e) => (e.preventDefault(), load(pathInput.value.trim() || '/')) },
        h('button', { type: 'button', onclick: () => load(parentOf(dir)), title: 'Parent directory' }, '↑ Up'),
        pathInput,
        h('button', { type: 'submit' }, 'Go'),
        h('button', { type: 'button', class: 'primary', id: 'files-upload-button', onclick: () => upload.click() }, '⤒ Upload files'),
        h('button', { type: 'button', onclick: () => {
          const name = prompt(`New folder in ${dir}:`);
          if (name) run(`Making ${name}`, () => api().mkdir(id, join(dir, name)));
        } }, '+ New folder'),
        upload),
      status,
      h('table', { class: 'file-list' }, h('thead', {}, h('tr', {}, ...['Name', 'Type', 'Size', 'Mode', 'Modified', ''].map((t) => h('th', {}, t)))), list),
    ),
    dispose: () => undefined,
  };
}
