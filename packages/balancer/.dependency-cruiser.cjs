// Import rules for @tether/balancer's src/, checked with
//   npx depcruise --config packages/balancer/.dependency-cruiser.cjs packages/balancer/src
// Type-only imports count: a loop through types is still a loop in the design.
/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    { name: 'no-circular', severity: 'error', comment: 'No import loops.', from: {}, to: { circular: true } },
    {
      name: 'engines-move-bytes-only',
      severity: 'error',
      comment: 'Engines know connections and HTTP framing, not nodes, health, retries or metrics.',
      from: { path: '^packages/balancer/src/engines/' },
      to: { path: '^packages/balancer/src/(proxy|pool|admin|frontend|health|algorithms)/' }
    },
    {
      name: 'algorithms-only-choose',
      severity: 'error',
      comment: 'Algorithms do no I/O and hold no state of others: they import only their own folder and the config types.',
      from: { path: '^packages/balancer/src/algorithms/' },
      to: { path: '^packages/balancer/src/', pathNot: '^packages/balancer/src/(algorithms/|config/types\\.ts$|config/schema\\.ts$|config/fields\\.ts$)' }
    },
    {
      name: 'proxy-reports-through-events',
      severity: 'error',
      comment: 'The proxy reports through ProxyEvents; it never imports the metrics or the admin API.',
      from: { path: '^packages/balancer/src/proxy/' },
      to: { path: '^packages/balancer/src/(admin|frontend)/' }
    },
    {
      name: 'health-checks-targets',
      severity: 'error',
      comment: 'Health checks take a target; the pool applies their results.',
      from: { path: '^packages/balancer/src/health/' },
      to: { path: '^packages/balancer/src/(pool|proxy)/' }
    }
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true
  }
}
