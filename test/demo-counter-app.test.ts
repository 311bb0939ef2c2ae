// The counter-app as its users run it: real processes, real HTTP on loopback, and each store
// it accepts (a SQLite file shared by two nodes, a private redis-server, memory).
import t from 'tap'
import type { Test } from 'tap'
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import http from 'node:http'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { performance } from 'node:perf_hooks'
import { startRedis } from './helpers/redis.js'
import { startMemcached } from './helpers/memcached.js'
import { cookieFrom, freePort, request, waitFor } from './helpers/net.js'
import { childEnv } from './helpers/net.js'

const server = fileURLToPath(new URL('../examples/counter-app/dist/server.js', import.meta.url))
const SECRET = 'counter-test-secret-0123456789-abcdefghijkl'
const dir = mkdtempSync(join(tmpdir(), 'tether-counter-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))

interface Node { url: string, child: ChildProcess, output: () => string }

/** Run `node server.js args` and collect what it prints; resolves when it exits. */
function run (args: string[], env: Record<string, string> = {}): Promise<{ code: number | null, stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [server, ...args], { env: childEnv({ LOG_LEVEL: 'warn', ...env }), stdio: ['ignore', 'ignore', 'pipe'] })
    let stderr = ''
    child.stderr.on('data', (d) => { stderr += String(d) })
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`counter-app ${args.join(' ')} did not exit within 30 s`)) }, 30_000)
    child.on('exit', (code) => { clearTimeout(timer); resolve({ code, stderr }) })
  })
}

async function startNode (t: Test, name: string, store: string, env: Record<string, string> = {}): Promise<Node> {
  const port = await freePort()
  const child = spawn(process.execPath, [server, '--port', String(port), '--node-name', name, '--store', store], {
    env: childEnv({ SESSION_SECRET: SECRET, LOG_LEVEL: 'warn', ...env }),
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let output = ''
  child.stdout!.on('data', (d) => { output += String(d) })
  child.stderr!.on('data', (d) => { output += String(d) })
  t.teardown(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return
    const exited = new Promise((resolve) => child.once('exit', resolve))
    child.kill('SIGKILL')
    await exited
  })
  const url = `http://127.0.0.1:${port}`
  await waitFor(async () => {
    if (child.exitCode !== null) throw new Error(`${name} exited: ${output}`)
    try { return (await request(`${url}/health`, { timeoutMs: 1000 })).status === 200 } catch { return false }
  }, 60_000, `${name} on port ${port}`)
  return { url, child, output: () => output }
}

interface Facts { count: number, node: { name: string, port: number, pid: number }, session: string, nodes: string[], moved: boolean, route: string | null, store: string }

async function json (url: string, cookie?: string, headers: Record<string, string> = {}): Promise<{ facts: Facts, cookie: string | undefined }> {
  const res = await request(url, { headers: { ...headers, ...(cookie !== undefined ? { cookie } : {}) } })
  if (res.status !== 200) throw new Error(`${url}: ${res.status} ${res.body}`)
  return { facts: JSON.parse(res.body) as Facts, cookie: cookieFrom(res.headers, 'tether.sid') ?? cookie }
}

async function storeCases (t: Test, store: string, shared: boolean): Promise<void> {
  const [a, second] = await Promise.all([startNode(t, 'alpha', store), shared ? startNode(t, 'beta', store) : undefined])
  const b = second ?? a

  await t.test('GET /api/visit counts per session; GET /api/state reads without counting', async (t) => {
    let { facts, cookie } = await json(`${a.url}/api/visit`)
    t.ok(cookie, 'a session cookie was set')
    t.equal(facts.count, 1)
    t.same(facts.node, { name: 'alpha', port: Number(new URL(a.url).port), pid: a.child.pid }, 'node name, port and pid')
    t.match(facts.session, /^[A-Za-z0-9_-]{8}$/, 'the first 8 characters of the session id')
    t.same(facts.nodes, ['alpha'])
    t.equal(facts.moved, false)
    ;({ facts } = await json(`${a.url}/api/visit`, cookie))
    t.equal(facts.count, 2, 'the same session counts on')
    ;({ facts } = await json(`${a.url}/api/state`, cookie))
    t.equal(facts.count, 2, '/api/state does not increment')
    const other = await json(`${a.url}/api/visit`)
    t.equal(other.facts.count, 1, 'another browser has its own session')
    t.not(other.facts.session, facts.session)
  })

  if (shared) {
    await t.test('a second node sharing the store continues the count and adds itself', async (t) => {
      let { facts, cookie } = await json(`${a.url}/api/visit`)
      ;({ facts, cookie } = await json(`${a.url}/api/visit`, cookie))
      ;({ facts } = await json(`${b.url}/api/visit`, cookie, { 'x-tether-moved': '1', 'x-tether-route': 'moved' }))
      t.equal(facts.count, 3, 'no reset on the other node')
      t.same(facts.nodes, ['alpha', 'beta'], 'both nodes listed, in order')
      t.equal(facts.node.name, 'beta')
      t.equal(facts.moved, true, 'the balancer\'s moved header is reported')
      t.equal(facts.route, 'moved')
    })

    await t.test('concurrent reloads on two nodes with one cookie are all counted', async (t) => {
      const { cookie } = await json(`${a.url}/api/visit`)
      const replies = await Promise.all(Array.from({ length: 60 }, (_, i) => json(`${i % 2 === 0 ? a.url : b.url}/api/visit`, cookie)))
      const counts = replies.map((r) => r.facts.count).sort((x, y) => x - y)
      t.same(counts, Array.from({ length: 60 }, (_, i) => i + 2), 'every reload saw its own exact count')
      t.equal((await json(`${b.url}/api/state`, cookie)).facts.count, 61)
    })
  }

  await t.test('the HTML page shows the same facts, escaped, and the moved notice', async (t) => {
    const first = await request(`${a.url}/`)
    t.equal(first.status, 200)
    t.match(first.headers['content-type'], /text\/html/)
    t.match(first.body, /<div class="count" id="count">1<\/div>/)
    t.notMatch(first.body, /id="moved"/, 'no moved notice without the header')
    t.notMatch(first.body, /<(script|link)\b|src=|https?:\/\//, 'no scripts and no external assets')
    const cookie = cookieFrom(first.headers, 'tether.sid')!
    const moved = await request(`${b.url}/`, { headers: { cookie, 'x-tether-moved': '1' } })
    t.match(moved.body, /<div class="count" id="count">2<\/div>/, 'refreshing increments')
    t.match(moved.body, /this session moved to this node/i)
  })

  await t.test('POST /reset ends the session', async (t) => {
    const { cookie } = await json(`${a.url}/api/visit`)
    const res = await request(`${a.url}/reset`, { method: 'POST', headers: { cookie: cookie! } })
    t.equal(res.status, 303)
    t.equal((await json(`${a.url}/api/state`, cookie)).facts.count, 0, 'the old cookie no longer finds a session')
  })
}

t.test('with a SQLite file shared by two node processes', async (t) => {
  await storeCases(t, `sqlite:${join(dir, 'nested', 'sessions.db')}`, true)
})

t.test('with Redis shared by two node processes', async (t) => {
  const redis = await startRedis(t)
  await storeCases(t, redis.url, true)
})

t.test('with memcached shared by two node processes', async (t) => {
  const memcached = await startMemcached(t)
  await storeCases(t, memcached.url, true)
})

t.test('with the in-process memory store', async (t) => {
  await storeCases(t, 'memory:', false)
})

t.test('behind a proxy on 127.0.0.1, X-Forwarded-Proto https makes the cookie Secure', async (t) => {
  const node = await startNode(t, 'gamma', 'memory:')
  const res = await request(`${node.url}/api/visit`, { headers: { 'x-forwarded-proto': 'https' } })
  t.match(res.headers['set-cookie']?.[0], /;\s*Secure/i)
  const plain = await request(`${node.url}/api/visit`)
  t.notMatch(plain.headers['set-cookie']?.[0], /;\s*Secure/i, 'plain HTTP: no Secure flag')
})

t.test('bad start-up input: one line on stderr and a non-zero exit', async (t) => {
  const cases: Array<[string[], Record<string, string>, number, RegExp]> = [
    [['--port', 'abc'], {}, 2, /--port must be an integer from 0 to 65535; got "abc"/],
    [[], { PORT: '70000' }, 2, /PORT must be an integer/],
    [['--store', 'mongodb://db'], {}, 2, /--store must be sqlite:<path>, redis:\/\/host:port/],
    [['--bogus'], {}, 2, /Unknown option '--bogus'/],
    [['--secret', 'short', '--store', 'memory:'], {}, 2, /secret is 5 characters/],
    [['--store', `sqlite:${dir}`], { SESSION_SECRET: SECRET }, 1, /cannot open the session store/],
    [['--store', 'memory:'], { SHUTDOWN_DELAY: '1.5s' }, 2, /SHUTDOWN_DELAY must be a whole number of milliseconds/]
  ]
  const results = await Promise.all(cases.map(([args, env]) => run(args, env)))
  for (const [i, [args, env, code, message]] of cases.entries()) {
    const r = results[i]!
    t.equal(r.code, code, `${args.join(' ') || JSON.stringify(env)}: exit ${code}`)
    t.match(r.stderr, message)
    t.equal(r.stderr.trim().split('\n').length, 1, 'exactly one line')
  }
  const busy = net.createServer()
  await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve))
  t.teardown(() => busy.close())
  const port = (busy.address() as net.AddressInfo).port
  const r = await run(['--port', String(port), '--store', 'memory:'], { SESSION_SECRET: SECRET })
  t.equal(r.code, 1)
  t.equal(r.stderr.trim(), `counter-app: port ${port} on 127.0.0.1 is already in use`)
})

t.test('SIGTERM closes the server and exits 0', async (t) => {
  const node = await startNode(t, 'delta', 'memory:')
  const exited = new Promise<number | null>((resolve) => node.child.once('exit', (code) => resolve(code)))
  node.child.kill('SIGTERM')
  t.equal(await exited, 0)
})

t.test('with SHUTDOWN_DELAY, SIGTERM first answers /health 503 while requests are still served, then exits 0', async (t) => {
  const node = await startNode(t, 'epsilon', 'memory:', { SHUTDOWN_DELAY: '800' })
  const exited = new Promise<number | null>((resolve) => node.child.once('exit', (code) => resolve(code)))
  const t0 = performance.now()
  node.child.kill('SIGTERM')
  await new Promise((resolve) => setTimeout(resolve, 100))
  t.equal((await request(`${node.url}/health`)).status, 503, '/health says stopping: balancers take the node out')
  const visit = await request(`${node.url}/api/visit`, { method: 'POST' })
  t.equal(visit.status, 200, 'a request during the delay is served')
  t.equal(visit.headers.connection, 'close', 'with Connection: close')
  t.equal(await exited, 0)
  t.ok(performance.now() - t0 >= 750, 'the port stayed open for the delay')
})

/** POST headers declaring `length` bytes and the first KiB of them; resolves with the status. */
function declaredTooBig (url: string, cookie: string, length: number): Promise<number | undefined> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'POST', headers: { cookie, 'content-type': 'application/octet-stream', 'content-length': String(length) } }, (res) => {
      res.resume()
      resolve(res.statusCode)
      req.destroy()
    })
    req.setTimeout(10_000, () => { req.destroy(new Error('no answer to an oversized upload within 10 s')) })
    req.on('error', reject)
    req.write(Buffer.alloc(1024, 120))
  })
}

t.test('POST /api/upload counts one visit per whole body; a body over 4 MiB is 413', async (t) => {
  const node = await startNode(t, 'zeta', 'memory:')
  const body = 'x'.repeat(300 * 1024)
  const first = await request(`${node.url}/api/upload`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body })
  t.equal(first.status, 200)
  const facts = JSON.parse(first.body) as Facts & { bytes: number }
  t.equal(facts.bytes, body.length, 'the whole body arrived')
  t.equal(facts.count, 1, 'one visit')
  const cookie = cookieFrom(first.headers, 'tether.sid')!
  const second = await request(`${node.url}/api/upload`, { method: 'POST', headers: { cookie, 'content-type': 'application/octet-stream' }, body })
  t.equal((JSON.parse(second.body) as Facts).count, 2, 'the next upload counts the next visit')
  // A body declared over the limit is refused from its Content-Length, before it is read. The
  // client sends only its first KiB and waits: writing all 4 MiB would race the server closing
  // the connection after its 413 (EPIPE on the client instead of the answer).
  t.equal(await declaredTooBig(`${node.url}/api/upload`, cookie, 4 * 1024 * 1024 + 1), 413)
  t.equal((await json(`${node.url}/api/state`, cookie)).facts.count, 2, 'and counts nothing')
})
