// The tether-balancer command as a spawned process: flags, config files, errors with exit
// status 2, a port in use with exit status 1, SIGHUP reload without dropping connections,
// SIGTERM graceful stop. Runs the built dist/cli.js (npm test builds first).
import t from 'tap'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { Agent } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { SECRET } from './helpers/balancer.js'
import { assertBuilt, listening, run } from './helpers/cli.js'
import { get, json, send, waitFor, type Seen } from './helpers/http.js'
import { startUpstreams } from './helpers/upstreams.js'

assertBuilt()
const dir = mkdtempSync(join(tmpdir(), 'tether-balancer-cli-'))

const [a, b] = await startUpstreams(t, ['a', 'b'])
if (a === undefined || b === undefined) throw new Error('no upstreams')

t.test('--help and --version', async (t) => {
  const help = run(t, ['--help'])
  t.equal(await help.exit, 0)
  t.match(help.stdout(), /Usage: tether-balancer/)
  t.match(help.stdout(), /--upstream URL\[,OPTS\]/)
  const version = run(t, ['--version'])
  t.equal(await version.exit, 0)
  t.match(version.stdout(), /^\d+\.\d+\.\d+\n$/)
})

t.test('configuration and usage errors: one line each, exit status 2', async (t) => {
  const bad = join(dir, 'bad.yaml')
  writeFileSync(bad, `upstreams:\n  - url: ${a.url}\n    weight: heavy\nalgorithm: fastest\n`)
  const cases: Array<[string, string[], RegExp[]]> = [
    ['invalid values in a file', ['--config', bad], [
      new RegExp(`^tether-balancer: ${bad.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: upstreams\\[0\\]\\.weight: must be an integer from 1 to 10000 \\(got "heavy"\\) \\[TETHER_ERR_CONFIG_INVALID\\]$`, 'm'),
      /algorithm: must be one of weighted-round-robin, least-connections, ip-hash \(got "fastest"\)/
    ]],
    ['missing file', ['--config', join(dir, 'nope.yaml')], [/nope\.yaml: cannot read the configuration file: no such file \[TETHER_ERR_CONFIG_FILE\]/]],
    ['unknown flag', ['--upstream', a.url, '--bogus'], [/unknown flag --bogus \(see --help\) \[TETHER_ERR_CLI_USAGE\]/]],
    ['nothing to balance', [], [/give --config FILE or at least one --upstream URL/]],
    ['invalid flag value', ['--upstream', a.url, '--algorithm', 'random'], [/algorithm: must be one of .* \(got "random"\)/]],
    ['bad upstream option', ['--upstream', `${a.url},weight=x`], [/weight must be an integer/]],
    ['unreadable upstream CA', ['--upstream', 'https://127.0.0.1:9', '--upstream-ca', join(dir, 'no-ca.pem')], [/upstreamTls\.ca: cannot be read \(ENOENT\) .*\[TETHER_ERR_CONFIG_INVALID\]/]],
    ['a node\'s tls is for the file', ['--upstream', 'https://127.0.0.1:9,tls=x'], [/unknown option "tls"/]]
  ]
  for (const [name, args, patterns] of cases) {
    const r = run(t, args)
    t.equal(await r.exit, 2, `${name}: exit status 2`)
    for (const p of patterns) t.match(r.stderr(), p, name)
    t.notMatch(r.stderr(), /\n\s+at /, `${name}: no stack trace`)
  }
})

t.test('--check validates and prints the resolved configuration, secrets hidden', async (t) => {
  const file = join(dir, 'ok.yaml')
  writeFileSync(file, `upstreams:\n  - ${a.url}\nsticky:\n  secret: ${SECRET}\nadmin:\n  listen: 9999\n  token: admin-token-0123456789\n`)
  const r = run(t, ['--config', file, '--check'])
  t.equal(await r.exit, 0)
  t.match(r.stdout(), /configuration OK/)
  t.notMatch(r.stdout(), SECRET)
  t.notMatch(r.stdout(), 'admin-token-0123456789')
})

t.test('flags only: the simple case from the issue, and a port in use', async (t) => {
  const r = run(t, ['--listen', '127.0.0.1:0', '--upstream', a.url, '--upstream', `${b.url},weight=3`, '--algorithm', 'least-connections', '--admin', '127.0.0.1:0', '--log-level', 'info'], { TETHER_STICKY_SECRET: SECRET })
  const { port, admin } = await listening(r)
  t.equal((await get(`http://127.0.0.1:${port}/`)).status, 200)
  const nodes = json<{ nodes: Array<{ name: string, weight: number }> }>(await get(`http://127.0.0.1:${admin ?? 0}/api/nodes`)).nodes
  t.same(nodes.map((n) => [n.name, n.weight]), [[`127.0.0.1:${a.port}`, 1], [`127.0.0.1:${b.port}`, 3]])

  const clash = run(t, ['--listen', `127.0.0.1:${port}`, '--upstream', a.url])
  t.equal(await clash.exit, 1, 'a port in use: exit status 1')
  t.match(clash.stderr(), new RegExp(`^tether-balancer: cannot listen on 127\\.0\\.0\\.1:${port}: EADDRINUSE \\[TETHER_ERR_LISTEN\\]\\n$`))
})

t.test('SIGHUP reloads the file without dropping connections; a bad file is rejected', async (t) => {
  const file = join(dir, 'reload.yaml')
  writeFileSync(file, `listen: 127.0.0.1:0\nsticky:\n  secret: ${SECRET}\nupstreams:\n  - url: ${a.url}\n    name: a\n  - url: ${b.url}\n    name: b\n`)
  const r = run(t, ['--config', file, '--admin', '127.0.0.1:0'])
  const { port, admin } = await listening(r)
  const agent = new Agent({ keepAlive: true, maxSockets: 1 })
  t.teardown(() => agent.destroy())
  t.equal((await send(`http://127.0.0.1:${port}/`, { agent })).status, 200, 'a keep-alive client connection is open')
  const slow = send(`http://127.0.0.1:${port}/slow?ms=500`, { agent })
  await new Promise((resolve) => setTimeout(resolve, 100))

  writeFileSync(file, `listen: 127.0.0.1:0\nsticky:\n  secret: ${SECRET}\nupstreams:\n  - url: ${b.url}\n    name: b\n    weight: 5\n`)
  r.child.kill('SIGHUP')
  await waitFor(() => r.lines.some((l) => l.msg === 'configuration reloaded'), 5000, 'the reload')
  t.equal((await slow).status, 200, 'the request in flight during the reload completed')
  const after = await send(`http://127.0.0.1:${port}/`, { agent })
  t.equal(json<Seen>(after).name, 'b', 'the same client connection is served by the new configuration')
  t.same(json<{ nodes: Array<{ name: string, weight: number }> }>(await get(`http://127.0.0.1:${admin ?? 0}/api/nodes`)).nodes.map((n) => [n.name, n.weight]), [['b', 5]])

  writeFileSync(file, 'upstreams: []\n')
  r.child.kill('SIGHUP')
  await waitFor(() => r.lines.some((l) => l.code === 'TETHER_ERR_RELOAD'), 5000, 'the rejected reload')
  const rejected = r.lines.find((l) => l.code === 'TETHER_ERR_RELOAD')
  t.match(rejected, { msg: /previous configuration stays in force/, issues: [/reload\.yaml: upstreams: must be a non-empty list/] })
  t.equal((await get(`http://127.0.0.1:${port}/`)).status, 200, 'still serving on the old configuration')
  t.equal(r.child.exitCode, null, 'still running')
})

t.test('SIGTERM: stops accepting, finishes in-flight requests, exits 0', async (t) => {
  // One process: "refused once closing began" is about one listener (workers.test.ts covers
  // SIGTERM with several workers).
  const r = run(t, ['--listen', '127.0.0.1:0', '--upstream', a.url, '--sticky-secret', SECRET, '--workers', '1'])
  const { port } = await listening(r)
  const slow = get(`http://127.0.0.1:${port}/slow?ms=600`)
  await new Promise((resolve) => setTimeout(resolve, 150))
  const started = Date.now()
  r.child.kill('SIGTERM')
  await waitFor(() => r.lines.some((l) => l.msg === 'balancer closing'), 3000, 'shutdown to begin')
  const refused = await get(`http://127.0.0.1:${port}/`).then((x) => x.status, (err: NodeJS.ErrnoException) => err.code)
  t.equal(refused, 'ECONNREFUSED', 'new connections are refused')
  t.equal((await slow).status, 200, 'the in-flight request completed')
  t.equal(await r.exit, 0, 'exit status 0')
  t.notOk(r.lines.some((l) => /shutdown timeout/.test(String(l.msg))), 'as soon as the request finished, not at the shutdown deadline')
  t.ok(Date.now() - started < 9000, 'well within timeouts.shutdown (10 s)')
  t.ok(r.lines.some((l) => l.msg === 'balancer closed'))
})
