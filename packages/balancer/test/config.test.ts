// Configuration: defaults, every validation error naming field, value and file, file loading
// (YAML and JSON), durations and listen addresses, and the CLI's flag parsing.
import t from 'tap'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadConfigFile, parseDuration, parseListen, resolveConfig, TetherBalancerError } from '../src/index.js'
import { mergeConfig, parseFlags, parseUpstreamFlag } from '../src/cli/flags.js'
import { parseNodeUpdate } from '../src/config/resolve.js'
import { shareOf } from '../src/cluster/share.js'

const dir = mkdtempSync(join(tmpdir(), 'tether-balancer-config-'))

function issuesOf (input: unknown, file?: string): string[] {
  try {
    resolveConfig(input, file === undefined ? {} : { file })
  } catch (err) {
    if (err instanceof TetherBalancerError && err.code === 'TETHER_ERR_CONFIG_INVALID') return err.issues.map((i) => `${i.field}: ${i.problem}`)
    throw err
  }
  return []
}

t.test('defaults', async (t) => {
  const c = resolveConfig({ upstreams: ['http://127.0.0.1:3001', { url: 'http://[::1]:3002' }] })
  t.same(c.listen, { host: undefined, port: 8080, tls: null })
  t.equal(c.algorithm, 'weighted-round-robin')
  t.equal(c.engine, 'h1')
  t.same(c.upstreams.map((u) => [u.name, u.host, u.port, u.weight, u.maxFails, u.failTimeout, u.state, u.backup]), [
    ['127.0.0.1:3001', '127.0.0.1', 3001, 1, 1, 10_000, 'active', false],
    ['[::1]:3002', '::1', 3002, 1, 1, 10_000, 'active', false]
  ])
  t.equal(c.sticky.enabled, true)
  t.equal(c.sticky.cookie, 'tether_node')
  t.equal(c.sticky.secretGenerated, true)
  t.equal(c.healthCheck.enabled, false, 'active checks only when configured')
  t.same(c.timeouts, { clientHeaders: 10_000, clientRequest: 300_000, clientKeepAlive: 5000, connect: 3000, response: 60_000, perTry: 0, shutdown: 10_000 })
  t.equal(c.retries, 2)
  t.equal(c.admin, null)
  t.equal(resolveConfig({ upstreams: ['http://a:1'], healthCheck: { path: '/health' } }).healthCheck.enabled, true)
  t.same(resolveConfig({ upstreams: ['http://a:1'], admin: { listen: 9090 } }).admin?.listen, { host: '127.0.0.1', port: 9090 }, 'a bare admin port binds to loopback')
})

t.test('each invalid value is reported with its field', async (t) => {
  const cases: Array<[string, unknown, string]> = [
    ['no upstreams', { upstreams: [] }, 'upstreams: must be a non-empty list'],
    ['missing upstreams', {}, 'upstreams: must be a non-empty list'],
    ['bad url', { upstreams: ['not a url'] }, 'upstreams[0].url: must be a URL'],
    ['ftp upstream', { upstreams: ['ftp://a:1'] }, 'upstreams[0].url: must use http:// or https://'],
    ['url with path', { upstreams: ['http://a:1/app'] }, 'upstreams[0].url: must be just scheme, host and port'],
    ['weight zero', { upstreams: [{ url: 'http://a:1', weight: 0 }] }, 'upstreams[0].weight: must be an integer from 1 to 10000'],
    ['weight text', { upstreams: [{ url: 'http://a:1', weight: 'three' }] }, 'upstreams[0].weight: must be an integer'],
    ['bad state', { upstreams: [{ url: 'http://a:1', state: 'down' }] }, 'upstreams[0].state: must be one of active, drain, maint'],
    ['bad name', { upstreams: [{ url: 'http://a:1', name: 'has space' }] }, 'upstreams[0].name: must be 1-100 characters'],
    ['duplicate names', { upstreams: [{ url: 'http://a:1', name: 'x' }, { url: 'http://b:1', name: 'x' }] }, 'upstreams[1].name: must be unique'],
    ['typo in a field', { upstreams: [{ url: 'http://a:1', maxfails: 3 }] }, 'upstreams[0].maxfails: is not a known field'],
    ['unknown top-level field', { upstreams: ['http://a:1'], algoritm: 'ip-hash' }, 'algoritm: is not a known field'],
    ['bad algorithm', { upstreams: ['http://a:1'], algorithm: 'random' }, 'algorithm: must be one of weighted-round-robin, least-connections, ip-hash'],
    ['bad engine', { upstreams: ['http://a:1'], engine: 'nginx' }, 'engine: must be one of h1, undici, http-proxy'],
    ['bad listen', { upstreams: ['http://a:1'], listen: 'localhost' }, 'listen: must be a port, "host:port" or an object { port, tls }'],
    ['TLS without a key', { upstreams: ['http://a:1'], listen: { port: 443, tls: { cert: 'a.pem' } } }, 'listen.tls.key: must be a non-empty string'],
    ['old TLS', { upstreams: ['http://a:1'], listen: { port: 443, tls: { cert: 'a.pem', key: 'k.pem', minVersion: 'TLSv1.1' } } }, 'listen.tls.minVersion: must be one of TLSv1.2, TLSv1.3'],
    ['h2 streams out of range', { upstreams: ['http://a:1'], listen: { port: 443, tls: { cert: 'a.pem', key: 'k.pem', http2: { maxConcurrentStreams: 0 } } } }, 'listen.tls.http2.maxConcurrentStreams: must be an integer from 1 to 1000'],
    ['port out of range', { upstreams: ['http://a:1'], listen: 70000 }, 'listen: must be a port'],
    ['bad duration', { upstreams: ['http://a:1'], timeouts: { connect: '5 minutes' } }, 'timeouts.connect: must be a duration'],
    ['short secret', { upstreams: ['http://a:1'], sticky: { secret: 'short' } }, 'sticky.secret: must be a string (or list of strings) of at least 16 characters'],
    ['bad cookie name', { upstreams: ['http://a:1'], sticky: { cookie: 'a b' } }, 'sticky.cookie: must be a cookie name'],
    ['SameSite=None without Secure', { upstreams: ['http://a:1'], sticky: { sameSite: 'None' } }, 'sticky.sameSite: can be "None" only with sticky.secure: true'],
    ['bad trusted proxy', { upstreams: ['http://a:1'], trustedProxies: ['10.0.0.0/33'] }, 'trustedProxies[0]: must be an IP address or CIDR'],
    ['bad health path', { upstreams: ['http://a:1'], healthCheck: { path: 'health' } }, 'healthCheck.path: must start with /'],
    ['rise zero', { upstreams: ['http://a:1'], healthCheck: { rise: 0 } }, 'healthCheck.rise: must be an integer from 1 to 100'],
    ['retries too many', { upstreams: ['http://a:1'], retries: 50 }, 'retries: must be an integer from 0 to 10'],
    ['short admin token', { upstreams: ['http://a:1'], admin: { listen: 9090, token: 'abc' } }, 'admin.token: must be at least 16 characters'],
    ['bad log level', { upstreams: ['http://a:1'], log: { level: 'loud' } }, 'log.level: must be one of'],
    ['not an object', 'nonsense', '(configuration): must be an object']
  ]
  for (const [name, input, want] of cases) {
    const issues = issuesOf(input)
    t.ok(issues.some((i) => i.startsWith(want)), `${name}: ${JSON.stringify(issues)}`)
  }
})

t.test('all issues at once; the message names file, field and value; secrets never echoed', async (t) => {
  try {
    resolveConfig({ upstreams: [{ url: 'http://a:1', weight: -2 }], algorithm: 'fastest', sticky: { secret: 'hunter2' } }, { file: 'lb.yaml' })
    t.fail('should throw')
  } catch (err) {
    if (!(err instanceof TetherBalancerError)) throw err
    t.equal(err.code, 'TETHER_ERR_CONFIG_INVALID')
    t.equal(err.issues.length, 3)
    t.match(err.message, 'lb.yaml: upstreams[0].weight: must be an integer from 1 to 10000 (got -2)')
    t.match(err.message, 'lb.yaml: algorithm: must be one of weighted-round-robin, least-connections, ip-hash (got "fastest")')
    t.notMatch(err.message, 'hunter2')
  }
})

t.test('durations and listen addresses', async (t) => {
  const durations: Array<[unknown, number | undefined]> = [[250, 250], ['250', 250], ['250ms', 250], ['1.5s', 1500], ['2m', 120_000], ['1h', 3_600_000], [' 3s ', 3000], ['-1', undefined], [-5, undefined], ['soon', undefined], [null, undefined], [Infinity, undefined]]
  for (const [input, want] of durations) t.equal(parseDuration(input), want, JSON.stringify(input))
  const listens: Array<[unknown, unknown]> = [
    [8080, { host: 'H', port: 8080 }], ['8080', { host: 'H', port: 8080 }], ['0.0.0.0:80', { host: '0.0.0.0', port: 80 }],
    ['[::1]:8080', { host: '::1', port: 8080 }], ['localhost:1', { host: 'localhost', port: 1 }], [0, { host: 'H', port: 0 }],
    ['::1:8080', undefined], ['x', undefined], [65536, undefined], [1.5, undefined], ['', undefined]
  ]
  for (const [input, want] of listens) t.same(parseListen(input, 'H'), want, JSON.stringify(input))
})

t.test('files: YAML and JSON, with errors that name the file', async (t) => {
  const yamlFile = join(dir, 'lb.yaml')
  writeFileSync(yamlFile, 'listen: 8081\nupstreams:\n  - url: http://127.0.0.1:3001\n    weight: 3\n  - http://127.0.0.1:3002\nhealthCheck:\n  path: /health\n  interval: 1s\n')
  const fromYaml = resolveConfig(await loadConfigFile(yamlFile), { file: yamlFile })
  t.equal(fromYaml.listen.port, 8081)
  t.same(fromYaml.upstreams.map((u) => u.weight), [3, 1])
  t.equal(fromYaml.healthCheck.interval, 1000)

  const jsonFile = join(dir, 'lb.json')
  writeFileSync(jsonFile, JSON.stringify({ upstreams: ['http://127.0.0.1:3001'], algorithm: 'ip-hash' }))
  t.equal(resolveConfig(await loadConfigFile(jsonFile)).algorithm, 'ip-hash')

  const broken = join(dir, 'broken.yaml')
  writeFileSync(broken, 'upstreams:\n  - url: [unclosed\n')
  await t.rejects(loadConfigFile(broken), { code: 'TETHER_ERR_CONFIG_FILE', message: /broken\.yaml: line \d+: cannot parse/ })
  const brokenJson = join(dir, 'broken.json')
  writeFileSync(brokenJson, '{"upstreams": [}')
  await t.rejects(loadConfigFile(brokenJson), { code: 'TETHER_ERR_CONFIG_FILE', message: /broken\.json: cannot parse/ })
  await t.rejects(loadConfigFile(join(dir, 'missing.yaml')), { code: 'TETHER_ERR_CONFIG_FILE', message: /missing\.yaml: cannot read the configuration file: no such file/ })

  const invalid = join(dir, 'invalid.yaml')
  writeFileSync(invalid, 'upstreams:\n  - url: http://127.0.0.1:3001\n    weight: heavy\n')
  const raw = await loadConfigFile(invalid)
  t.throws(() => resolveConfig(raw, { file: invalid }), { message: /invalid\.yaml: upstreams\[0\]\.weight: must be an integer from 1 to 10000 \(got "heavy"\)/ })
})

t.test('flags: the simple case from the issue', async (t) => {
  const cli = parseFlags(['--listen', '8080', '--upstream', 'http://127.0.0.1:3001', '--upstream', 'http://127.0.0.1:3002,weight=3', '--algorithm', 'least-connections'])
  t.same(cli.overrides, { listen: 8080, algorithm: 'least-connections', upstreams: [{ url: 'http://127.0.0.1:3001' }, { url: 'http://127.0.0.1:3002', weight: 3 }] })
  const c = resolveConfig(cli.overrides)
  t.same(c.upstreams.map((u) => u.weight), [1, 3])
  t.equal(c.algorithm, 'least-connections')
})

t.test('flags: every option, both spellings', async (t) => {
  const cli = parseFlags([
    '-c', 'lb.yaml', '-l', '127.0.0.1:9000', '-u', 'http://h:1,name=app-1,weight=2,maxFails=3,failTimeout=5s,backup,state=drain',
    '-a', 'ip-hash', '--engine=undici', '--cookie', 'srv', '--sticky-secret', 'a-very-long-secret-value', '--health-check', '/health',
    '--health-interval', '500', '--retries', '1', '--trusted-proxy', '10.0.0.0/8', '--trusted-proxy', '::1', '--admin', '9090',
    '--admin-token', 'admin-token-0123456789', '--log-level', 'debug', '--access-log', '--check'
  ])
  t.equal(cli.configFile, 'lb.yaml')
  t.equal(cli.check, true)
  t.same(cli.overrides, {
    listen: '127.0.0.1:9000',
    algorithm: 'ip-hash',
    engine: 'undici',
    retries: 1,
    upstreams: [{ url: 'http://h:1', name: 'app-1', weight: 2, maxFails: 3, failTimeout: '5s', backup: true, state: 'drain' }],
    trustedProxies: ['10.0.0.0/8', '::1'],
    sticky: { cookie: 'srv', secret: 'a-very-long-secret-value' },
    healthCheck: { enabled: true, path: '/health', interval: 500 },
    admin: { listen: 9090, token: 'admin-token-0123456789' },
    log: { level: 'debug', accessLog: true }
  })
  t.same(parseFlags(['--upstream', 'http://h:1', '--no-sticky']).overrides.sticky, { enabled: false })
  t.same(parseFlags(['-u', 'http://h:1'], { TETHER_STICKY_SECRET: 'from-the-environment-1234' }).overrides.sticky, { secret: 'from-the-environment-1234' })
  t.equal(parseFlags(['--help']).help, true)
  t.equal(parseFlags(['-v']).version, true)
})

t.test('flags: usage errors', async (t) => {
  const cases: Array<[string[], RegExp]> = [
    [[], /give --config FILE or at least one --upstream/],
    [['--upstream'], /--upstream needs a value/],
    [['--listen', '--upstream', 'http://h:1'], /--listen needs a value/],
    [['--frobnicate'], /unknown flag --frobnicate/],
    [['extra'], /unexpected argument "extra"/],
    [['-u', 'http://h:1,weight=abc'], /weight must be an integer/],
    [['-u', 'http://h:1,colour=red'], /unknown option "colour"/],
    [['-u', 'http://h:1,weight'], /weight needs a value/],
    [['--check=yes', '-u', 'http://h:1'], /--check takes no value/],
    [['-u', 'http://h:1', '--retries', 'two'], /must be an integer/]
  ]
  for (const [argv, message] of cases) t.throws(() => parseFlags(argv), { code: 'TETHER_ERR_CLI_USAGE', message }, argv.join(' '))
  t.same(parseUpstreamFlag('http://h:1,backup=false'), { url: 'http://h:1', backup: false })
})

t.test('flags override a file; --upstream replaces its list', async (t) => {
  const merged = mergeConfig(
    { listen: 80, upstreams: ['http://a:1', 'http://b:1'], log: { level: 'info' }, sticky: { secret: 'file-secret-0123456789' } },
    { upstreams: [{ url: 'http://c:1' }], log: { accessLog: true }, listen: 81 }
  )
  t.same(merged, { listen: 81, upstreams: [{ url: 'http://c:1' }], log: { level: 'info', accessLog: true }, sticky: { secret: 'file-secret-0123456789' } })
})

t.test('every unknown field is reported, with every other problem', async (t) => {
  t.same(issuesOf({ upstreams: [{ url: 'http://a:1', wieght: 2, colour: 'red', weight: 0 }], algoritm: 'ip-hash', retries: -1 }).sort(), [
    'algoritm: is not a known field (known: listen, upstreams, algorithm, hashBalanceFactor, workers, engine, upstreamTls, sticky, healthCheck, timeouts, keepAlive, limits, queue, retries, maxEjectedPercent, latencyEjection, trustedProxies, admin, log)',
    'retries: must be an integer from 0 to 10',
    'upstreams[0].colour: is not a known field (known: url, name, weight, maxFails, failTimeout, backup, state, maxConn, tls)',
    'upstreams[0].weight: must be an integer from 1 to 10000',
    'upstreams[0].wieght: is not a known field (known: url, name, weight, maxFails, failTimeout, backup, state, maxConn, tls)'
  ])
})

t.test('node updates (admin API, setNode) follow the node fields\' own rules', async (t) => {
  t.same(parseNodeUpdate({ state: 'drain', weight: 3 }), { state: 'drain', weight: 3 })
  t.same(parseNodeUpdate({ weight: 10_000 }), { weight: 10_000 })
  const cases: Array<[unknown, RegExp]> = [
    [{ weight: 0 }, /^weight: must be an integer from 1 to 10000 \(got 0\)$/],
    [{ weight: 10_001 }, /^weight: must be an integer from 1 to 10000/],
    [{ state: 'down' }, /^state: must be one of active, drain, maint/],
    [{ colour: 'red' }, /^colour: is not a known field \(known: state, weight\)/],
    [{}, /^send state and\/or weight$/]
  ]
  for (const [input, message] of cases) t.throws(() => parseNodeUpdate(input), { code: 'TETHER_ERR_INVALID_NODE_UPDATE', message }, JSON.stringify(input))
  // The same rule, the same words, in a file:
  t.ok(issuesOf({ upstreams: [{ url: 'http://a:1', weight: 0 }] }).includes('upstreams[0].weight: must be an integer from 1 to 10000'))
})

t.test('a TLS listener: object form, defaults, and a Secure sticky cookie by default', async (t) => {
  const c = resolveConfig({ upstreams: ['http://a:1'], listen: { port: '127.0.0.1:8443', tls: { cert: 'c.pem', key: 'k.pem', hsts: '1h', redirectHttp: 8080 } } })
  t.equal(c.listen.host, '127.0.0.1')
  t.equal(c.listen.port, 8443)
  t.same(c.listen.tls?.sni, [])
  t.equal(c.listen.tls?.minVersion, 'TLSv1.2')
  t.equal(c.listen.tls?.hsts, 3_600_000)
  t.same(c.listen.tls?.redirectHttp, { host: undefined, port: 8080 })
  t.same(c.listen.tls?.http2, { enabled: true, maxConcurrentStreams: 100, maxHeaderListSize: 65_536, maxResetsPerSecond: 100 })
  t.equal(c.sticky.secure, true, 'Secure by default on TLS')
  t.equal(resolveConfig({ upstreams: ['http://a:1'], listen: { port: 443, tls: { cert: 'c', key: 'k' } }, sticky: { secure: false } }).sticky.secure, false, 'unless turned off')
  t.equal(resolveConfig({ upstreams: ['http://a:1'] }).sticky.secure, false, 'not Secure on plain HTTP')
  t.equal(resolveConfig({ upstreams: ['http://a:1'], listen: { port: 443, tls: { cert: 'c', key: 'k' } }, sticky: { sameSite: 'None' } }).sticky.sameSite, 'None', 'SameSite=None is fine on TLS')
  t.equal(resolveConfig({ upstreams: ['http://a:1'], listen: { port: 443, tls: { cert: 'c', key: 'k', http2: false } } }).listen.tls?.http2.enabled, false)
})

t.test('TLS flags: --tls-cert/--tls-key under --listen, merged over a file', async (t) => {
  const flags = parseFlags(['--listen', '8443', '--tls-cert', 'c.pem', '--tls-key', 'k.pem', '-u', 'http://h:1'])
  t.same(flags.overrides.listen, { port: 8443, tls: { cert: 'c.pem', key: 'k.pem' } })
  t.equal(resolveConfig(flags.overrides).listen.tls?.cert, 'c.pem')
  const tlsOnly = parseFlags(['--tls-cert', 'new.pem', '-u', 'http://h:1']).overrides
  t.same(mergeConfig({ listen: { port: 443, tls: { cert: 'old.pem', key: 'k.pem', hsts: '1h' } } }, tlsOnly), { listen: { port: 443, tls: { cert: 'new.pem', key: 'k.pem', hsts: '1h' } }, upstreams: [{ url: 'http://h:1' }] }, 'a flag changes one TLS field of the file')
  t.same(mergeConfig({ listen: 443 }, tlsOnly), { listen: { port: 443, tls: { cert: 'new.pem' } }, upstreams: [{ url: 'http://h:1' }] }, 'a file\'s bare port is kept')
  t.same(mergeConfig({ listen: { port: 443, tls: { cert: 'c', key: 'k' } } }, { listen: 8443 }), { listen: { port: 8443, tls: { cert: 'c', key: 'k' } } }, '--listen changes the port and keeps TLS')
})

t.test('workers: auto or a count; a flag gives digits', async (t) => {
  const up = { upstreams: ['http://a:1'] }
  t.equal(resolveConfig(up).workers, 'auto', 'auto by default')
  t.equal(resolveConfig({ ...up, workers: 4 }).workers, 4)
  t.equal(resolveConfig({ ...up, workers: '3' }).workers, 3, 'digits from a flag are a count')
  t.same(parseFlags(['--upstream', 'http://a:1', '--workers', '2']).overrides.workers, '2')
  for (const bad of [0, -1, 1.5, 'many', 2000]) {
    t.same(issuesOf({ ...up, workers: bad }), ['workers: must be "auto" or an integer from 1 to 1024'], `${JSON.stringify(bad)} is refused`)
  }
})

t.test('with workers, each worker takes its share of the caps', async (t) => {
  const config = resolveConfig({ upstreams: [{ url: 'http://a:1', maxConn: 100 }, { url: 'http://b:1', maxConn: 1 }, 'http://c:1'], limits: { connections: 1000 }, queue: { size: 5 } })
  const share = shareOf(config, 4)
  t.same(share.upstreams.map((u) => u.maxConn), [25, 1, 0], 'divided; never below 1; 0 (no limit) stays 0')
  t.equal(share.limits.connections, 250)
  t.equal(share.queue.size, 2, 'queue rounded up')
  t.equal(shareOf(config, 1), config, 'one worker: unchanged')
})
