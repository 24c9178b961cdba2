// Lint: promises that are neither awaited nor handled, and the direction of imports
// between Hangar's parts (docs/architecture.md): domain <- store/runtime/templates <- service <- http.
// Type-aware (typescript-eslint's project service reads tsconfig.json).
import tseslint from 'typescript-eslint';

/** An import-direction rule: in these files, imports whose path matches `regex` are refused. */
const refuse = (files, forbidden) => ({
  files,
  ignores: ['**/*.test.ts', '**/*.conformance.ts'],
  rules: {
    'no-restricted-imports': ['error', { patterns: forbidden.map(([regex, message]) => ({ regex, message })) }],
  },
});

const SERVICE_OR_HTTP = ['(^|/)(service|http)/', 'store, runtime and templates implement what the domain defines; they never import service/ or http/.'];
const SERVER = ['(^|/)server\\.js$', 'server.ts composes the parts; nothing imports it (VERSION lives in version.ts).'];
const TESTING = ['(^|/)testing/', 'the test harness is for tests only.'];

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'bench/results/**', '.data/**', 'eslint.config.js', 'console/vite.config.ts'] },
  {
    files: ['src/**/*.ts', 'bench/**/*.ts', 'deploy/**/*.ts', 'agent/**/*.ts', 'sdk/src/**/*.ts', 'cli/src/**/*.ts', 'console/src/**/*.ts'],
    languageOptions: {
      parser: tseslint.parser,
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    plugins: { '@typescript-eslint': tseslint.plugin },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      '@typescript-eslint/no-floating-promises': [
        'error',
        // node:test collects these itself and reports their failures.
        { allowForKnownSafeCalls: [{ from: 'package', package: 'node:test', name: ['describe', 'it', 'test', 'suite', 'before', 'after', 'beforeEach', 'afterEach'] }] },
      ],
      '@typescript-eslint/await-thenable': 'error',
    },
  },
  refuse(['src/domain/**/*.ts'], [['^\\.\\./', "the domain imports nothing of Hangar's outside src/domain."]]),
  refuse(['src/store/**/*.ts', 'src/runtime/**/*.ts', 'src/templates/**/*.ts'], [SERVICE_OR_HTTP, SERVER, TESTING]),
  refuse(['src/service/**/*.ts'], [['(^|/)http/', 'the service layer never imports the HTTP edge.'], SERVER, TESTING]),
  refuse(['src/http/**/*.ts'], [SERVER, TESTING]),
  refuse(['cli/src/**/*.ts'], [['(^|/)src/(?!index)|(^|/)(service|http|runtime|store|domain|testing)/', 'the CLI is built on the SDK only.']]),
  refuse(['console/src/**/*.ts'], [['(^|/)src/(?!index)|(^|/)(service|http|runtime|store|domain|testing)/', 'the console is a client: it talks to the server through the SDK only.']]),
  refuse(['sdk/src/**/*.ts'], [['(^|/)src/|^\\.\\./\\.\\./', 'the SDK is its own package: it imports nothing of the server.']]),
);
