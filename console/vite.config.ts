// The web console's build: served by the server at /console (src/http/console/), so every
// asset URL starts there; built into dist/console beside the server's own build.
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: '/console/',
  // No public/ dir: every file the page needs is imported, hashed and bundled.
  publicDir: false,
  build: {
    outDir: fileURLToPath(new URL('../dist/console', import.meta.url)),
    emptyOutDir: true,
    // noVNC uses top-level await; every browser the console supports has it.
    target: 'es2022',
    chunkSizeWarningLimit: 1024,
  },
  logLevel: 'warn',
});
