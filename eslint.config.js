import tseslint from 'typescript-eslint';
import { importX } from 'eslint-plugin-import-x';
import prettier from 'eslint-config-prettier';

// Who may import whom (design.md §2). Each zone forbids `target` from importing `from`.
const layer = (target, allowed, message) => ({
  target: `./src/${target}`,
  from: './src',
  except: [`./${target}`, ...allowed.map((a) => `./${a}`)],
  message,
});

export default tseslint.config(
  {
    ignores: [
      'dist/**',
      'coverage/**',
      'node_modules/**',
      'eslint.config.js',
      'bin/**',
      'tmpprof/**',
      'test-results/**',
    ],
  },
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    plugins: { 'import-x': importX },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/switch-exhaustiveness-check': 'error',
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/require-await': 'off',
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_' },
      ],
      'import-x/no-cycle': 'error',
      'import-x/no-restricted-paths': [
        'error',
        {
          zones: [
            layer('lib', [], 'lib/ imports nothing of ours'),
            layer('protocol', ['lib'], 'protocol/ may import only lib/'),
            layer('domain', ['protocol', 'lib'], 'domain/ may import protocol/ and lib/'),
            layer(
              'store',
              ['domain', 'protocol', 'lib'],
              'store/ may import domain/, protocol/, lib/',
            ),
            layer(
              'providers',
              ['domain', 'protocol', 'lib'],
              'providers/ may import domain/, protocol/, lib/',
            ),
            layer(
              'engine',
              [
                'domain',
                'protocol',
                'lib',
                'store/store.ts',
                'providers/provider.ts',
                'store/blobs/blob-store.ts',
              ],
              'engine/ may use only the interfaces of store/ and providers/',
            ),
            layer(
              'api',
              [
                'domain',
                'protocol',
                'lib',
                'store/store.ts',
                'store/blobs/blob-store.ts',
                'providers/provider.ts',
                'engine/engine.ts',
              ],
              'api/ may use domain/, protocol/, lib/, the store interface and the engine facade',
            ),
            layer(
              'metrics',
              [
                'domain',
                'protocol',
                'lib',
                'store/store.ts',
                'providers/provider.ts',
                'engine/engine.ts',
              ],
              'metrics/ reads the store interface, the engine facade and wraps upstreams',
            ),
            layer(
              'sdk',
              ['protocol', 'lib', 'domain/line-validation.ts'],
              'the SDK may import only protocol/, lib/ and the line validator',
            ),
            layer(
              'simulator',
              ['protocol', 'lib'],
              'the simulator may import only protocol/ and lib/',
            ),
            layer(
              'config',
              ['protocol', 'lib', 'domain'],
              'config/ may import protocol/, domain/ and lib/',
            ),
            layer(
              'cli',
              ['sdk', 'config', 'compose.ts', 'simulator', 'lib', 'protocol'],
              'cli/ goes through sdk/, config/ and compose.ts',
            ),
          ],
        },
      ],
      'no-restricted-properties': [
        'error',
        { object: 'process', property: 'env', message: 'read configuration in src/config/' },
      ],
    },
  },
  { files: ['src/config/**', 'test/**', 'bench/**'], rules: { 'no-restricted-properties': 'off' } },
  {
    files: ['test/**', 'bench/**'],
    rules: {
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-non-null-assertion': 'off',
      '@typescript-eslint/unbound-method': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
    },
  },
  // The dashboard is browser JavaScript served as is (no TypeScript project): syntax-level rules only.
  { files: ['dashboard/**/*.js'], ...tseslint.configs.disableTypeChecked },
  prettier,
);
