// Lint: neostandard (the style fastify uses, and the one this code is written in) with its
// TypeScript rules, plus a few type-aware rules that catch real async bugs (a floating promise
// is an unhandled rejection waiting to happen; a misused promise is a callback that never waits).
import neostandard from 'neostandard'
import tseslint from 'typescript-eslint'

export default [
  ...neostandard({ ts: true, ignores: ['**/dist/**', '**/node_modules/**', 'docs/**', '**/*.d.ts'] }),
  {
    files: ['**/*.ts'],
    languageOptions: {
      parserOptions: {
        // The type tests under test/types compile with their own tsconfig files (they check
        // declaration merging per program); the default project covers them for linting.
        projectService: { allowDefaultProject: ['packages/middleware/test/types/express-usage.ts'] },
        tsconfigRootDir: import.meta.dirname
      }
    },
    plugins: { '@typescript-eslint': tseslint.plugin },
    rules: {
      // tap runs a test file's subtests itself: the promise t.test() returns needs no await.
      '@typescript-eslint/no-floating-promises': ['error', {
        allowForKnownSafePromises: [{ from: 'package', name: 'PromiseWithSubtest', package: '@tapjs/core' }]
      }],
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: { arguments: false, attributes: false } }],
      '@typescript-eslint/no-explicit-any': 'error',
      // `void promise` is how the code marks a promise that is deliberately not awaited.
      'no-void': ['error', { allowAsStatement: true }]
    }
  }
]
