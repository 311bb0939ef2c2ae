/**
 * Import rules checked by `npm run lint:deps` (and so by `npm test`): no import loops
 * anywhere, and the two packages stay independent of each other and of their tests.
 * @type {import('dependency-cruiser').IConfiguration}
 */
module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'An import loop: each module must have one place in the layering.',
      from: {},
      to: { circular: true }
    },
    {
      name: 'packages-independent',
      severity: 'error',
      comment: 'The middleware and the balancer talk over HTTP headers, never by importing each other.',
      from: { path: '^packages/(middleware|balancer)/src' },
      to: { path: '^packages/(middleware|balancer)/src', pathNot: '^packages/$1/src' }
    },
    {
      name: 'src-not-from-tests',
      severity: 'error',
      comment: 'Shipped code must not import test code.',
      from: { path: '^(packages/[^/]+|examples/[^/]+)/src' },
      to: { path: '/test/' }
    }
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '(^|/)(dist|node_modules)/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.base.json' },
    enhancedResolveOptions: { extensions: ['.ts', '.js', '.mjs'] }
  }
}
