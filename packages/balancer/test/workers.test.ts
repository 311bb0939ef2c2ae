// `tether-balancer --workers 2` as real processes: a supervisor and two node:cluster workers
// sharing the listener, in front of two real upstreams. One balancer serves the whole file, in
// order: every worker serves; sticky cookies (with the supervisor's generated secret) route the
// same in every worker; health checks run once and their verdict reaches every worker; an admin
// drain reaches every worker; /metrics adds the workers up; a SIGKILLed worker is replaced while
// requests keep succeeding; SIGHUP reaches every worker; SIGTERM drains them all and exits 0.
//
// Which worker served a request is read from GET /api/workers (each worker's request count),
// before and after a batch: requests on fresh connections are spread round-robin by the
// primary, so a batch that reaches both workers shows in both counts.
import t from 'tap'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { assertBuilt, listening, run } from './helpers/cli.js'
import { get, json, send, stickyCookie, waitFor, type Seen } from './helpers/http.js'
import { startUpstreams } from './helpers/upstreams.js'
import { hasOpenssl, makeCert, tempDir } from './helpers/tls.js'
import { replacementDelay } from '../src/cluster/primary.js'
import { request as httpsRequest } from 'node:https'

assertBuilt()
const dir = mkdtempSync(join(tmpdir(), 'tether-balancer-workers-'))
const [a, b] = await startUpstreams(t, ['a', 'b'])
if (a === undefined || b === undefined) throw new Error('no upstreams')

const INTERVAL_MS = 200
const file = join(dir, 'lb.yaml')
const config = (upstreams: string): string => `listen: 127.0.0.1:0
workers: 2
healthCheck:
  path: /health
  interval: ${INTERVAL_MS}ms
  rise: 1
  fall: 2
admin:
  listen: 127.0.0.1:0
log:
  level: info
upstreams:
${upstreams}`
writeFileSync(file, config(`  - { url: ${a.url}, name: a }\n  - { url: ${b.url}, name: b, maxFails: 2, failTimeout: 1s }\n`))

// No sticky secret: the supervisor generates one for every worker.
const lb = run(t, ['--config', file])
const { port, admin } = await listening(lb)
const adminUrl = `http://127.0.0.1:${admin ?? 0}`
const url = `http://127.0.0.1:${port}`
/** Every request this file sent through the balancer, for the /metrics check. */
let sent = 0

interface WorkerInfo { id: number, pid: number, requests: number }
async function workers (): Promise<WorkerInfo[]> {
  return json<{ workers: WorkerInfo[] }>(await get(`${adminUrl}/api/workers`)).workers
}
async function counts (): Promise<Map<number, number>> {
  return new Map((await workers()).map((w) => [w.pid, w.requests]))
}
/** `n` GETs on fresh connections, in order: the node names that answered. */
async function batch (n: number, headers: Record<string, string> = {}): Promise<string[]> {
  const names: string[] = []
  for (let i = 0; i < n; i++) {
    sent++
    const res = await get(`${url}/`, headers)
    names.push(res.status === 200 ? json<Seen>(res).name : `status ${res.status}`)
  }
  return names
}
/** Run `fn`, and return how many requests each worker served meanwhile. */
async function perWorker (fn: () => Promise<unknown>): Promise<number[]> {
  const before = await counts()
  await fn()
  const after = await counts()
  return [...after].map(([pid, n]) => n - (before.get(pid) ?? 0))
}

t.test('two workers, distinct pids, both serve', async (t) => {
  const list = await workers()
  t.equal(list.length, 2)
  t.equal(new Set(list.map((w) => w.pid)).size, 2, 'two processes')
  t.notOk(list.some((w) => w.pid === lb.child.pid), 'neither is the supervisor')
  const served = await perWorker(() => batch(20))
  t.ok(served.every((n) => n > 0), `every worker served some of 20 requests: ${served.join(' / ')}`)
})

t.test('a sticky cookie routes the same in every worker (one generated secret)', async (t) => {
  sent++
  const first = await get(`${url}/`)
  const cookie = stickyCookie(first)
  if (cookie === undefined) throw new Error('no sticky cookie')
  const home = json<Seen>(first).name
  let names: string[] = []
  const served = await perWorker(async () => { names = await batch(20, { cookie }) })
  t.ok(served.every((n) => n > 0), `both workers saw the cookie: ${served.join(' / ')}`)
  t.same(new Set(names), new Set([home]), `all 20 on ${home}`)
})

t.test('health checks run once, in the supervisor, and every worker follows the verdict', async (t) => {
  const before = (await b.counts())['GET /health'] ?? 0
  const started = Date.now()
  await new Promise((resolve) => setTimeout(resolve, 2000))
  const checks = ((await b.counts())['GET /health'] ?? 0) - before
  const expected = (Date.now() - started) / INTERVAL_MS
  // One checker: about `expected`; a checker per worker would make it twice that.
  t.ok(checks <= expected * 1.3 + 1, `${checks} checks of b in ${Date.now() - started} ms (one checker: ~${Math.round(expected)})`)

  t.equal((await get(`${b.url}/health/fail`)).status, 200)
  t.teardown(async () => { await get(`${b.url}/health/ok`) })
  await waitFor(async () => json<{ nodes: Array<{ name: string, health: string }> }>(await get(`${adminUrl}/api/nodes`)).nodes.find((n) => n.name === 'b')?.health === 'down', 5000, 'b to be down')
  let names: string[] = []
  const served = await perWorker(async () => { names = await batch(20) })
  t.ok(served.every((n) => n > 0), `both workers served: ${served.join(' / ')}`)
  t.same(new Set(names), new Set(['a']), 'no worker sends a new client to b')
  t.equal(lb.lines.filter((l) => l.msg === 'node b is down' && l.pid === lb.child.pid).length, 1, 'the supervisor decided it once')

  await get(`${b.url}/health/ok`)
  await waitFor(async () => json<{ nodes: Array<{ name: string, health: string }> }>(await get(`${adminUrl}/api/nodes`)).nodes.find((n) => n.name === 'b')?.health === 'up', 5000, 'b to be up')
  await waitFor(async () => (await batch(6)).includes('b'), 5000, 'b to take clients again')
})

t.test('an admin drain reaches every worker', async (t) => {
  const res = await send(`${adminUrl}/api/nodes/a`, { method: 'PATCH', headers: { 'content-type': 'application/json' }, body: '{"state":"drain"}' })
  t.equal(res.status, 200)
  t.equal(json<{ state: string }>(res).state, 'drain')
  let names: string[] = []
  const served = await perWorker(async () => { names = await batch(20) })
  t.ok(served.every((n) => n > 0), `both workers served: ${served.join(' / ')}`)
  t.same(new Set(names), new Set(['b']), 'no worker sends a new client to the drained node')
  await send(`${adminUrl}/api/nodes/a`, { method: 'PATCH', headers: { 'content-type': 'application/json' }, body: '{"state":"active"}' })
})

t.test('passive health: the supervisor counts failures from every worker and holds the node out in all', async (t) => {
  const nodeB = async (): Promise<{ errors: number, passiveDownUntil: string | null }> => {
    const nodes = json<{ nodes: Array<{ name: string, errors: number, passiveDownUntil: string | null }> }>(await get(`${adminUrl}/api/nodes`)).nodes
    const found = nodes.find((n) => n.name === 'b')
    if (found === undefined) throw new Error('no node b')
    return found
  }
  const errorsBefore = (await nodeB()).errors
  const linesBefore = lb.lines.length
  await b.kill()
  // Sequential GETs alternate between the workers; b's refused connections are retried on a.
  const names = await batch(12)
  t.same(new Set(names), new Set(['a']), 'every client was answered (by a, after a retry)')
  const passive = lb.lines.slice(linesBefore).filter((l) => l.msg === 'node b is down' && String(l.reason).startsWith('passive:'))
  t.equal(passive.filter((l) => l.pid === lb.child.pid).length, 1, 'the supervisor ejected b once')
  t.ok(passive.filter((l) => l.pid !== lb.child.pid).length >= 2, 'and told both workers')
  // maxFails is 2 for the whole balancer: a rule per worker would need 2 in each (4).
  const failed = (await nodeB()).errors - errorsBefore
  t.ok(failed >= 2 && failed <= 3, `${failed} failed attempts on b before every worker held it out (2, or 3 when one raced the hold)`)
  await b.restart()
  await waitFor(async () => (await nodeB()).passiveDownUntil === null, 5000, 'the hold to end')
  await waitFor(async () => (await batch(6)).includes('b'), 5000, 'b to take clients again')
})

t.test('/metrics and /api/stats add the workers up', async (t) => {
  const text = (await get(`${adminUrl}/metrics`)).body
  const sum = (re: RegExp): number => [...text.matchAll(re)].reduce((n, m) => n + Number(m[1]), 0)
  t.equal(sum(/^tether_balancer_responses_total\{[^}]*\} (\d+)$/gm), sent, `tether_balancer_responses_total sums to the ${sent} requests sent`)
  const retries = sum(/^tether_balancer_retries_total (\d+)$/gm)
  t.ok(retries >= 2, `the passive test's retries are counted (${retries})`)
  t.equal(sum(/^tether_balancer_requests_total\{node="[ab]"\} (\d+)$/gm), sent + retries, 'attempts: one per request, plus the retries')
  t.match(text, /^tether_balancer_node_up\{node="a"\} 1$/m, 'node_up is 1, not one per worker')
  const stats = json<{ summary: { total: { responses: { '2xx': number } } } }>(await get(`${adminUrl}/api/stats`))
  t.equal(stats.summary.total.responses['2xx'], sent, 'the status page counts every worker\'s answers')
})

t.test('a worker killed with SIGKILL is replaced; requests keep succeeding', async (t) => {
  const [victim, survivor] = await workers()
  if (victim === undefined || survivor === undefined) throw new Error('two workers expected')
  // CONCURRENCY clients loop on fresh connections and record every result.
  const CONCURRENCY = 4
  const results: Array<{ started: number, at: number, ok: boolean, error?: string }> = []
  const loop = { running: true }
  const loops = Array.from({ length: CONCURRENCY }, async () => {
    while (loop.running) {
      sent++
      const started = Date.now()
      try {
        const res = await send(`${url}/`, { timeoutMs: 3000 })
        results.push({ started, at: Date.now(), ok: res.status === 200, ...(res.status === 200 ? {} : { error: `status ${res.status}` }) })
      } catch (err) {
        results.push({ started, at: Date.now(), ok: false, error: (err as NodeJS.ErrnoException).code ?? (err as Error).message })
      }
    }
  })
  await new Promise((resolve) => setTimeout(resolve, 300))
  process.kill(victim.pid, 'SIGKILL')
  const killedAt = Date.now()
  await waitFor(async () => {
    const now = await workers()
    return now.length === 2 && !now.some((w) => w.pid === victim.pid)
  }, 15_000, 'a replacement worker')
  const replacedAt = Date.now()
  await new Promise((resolve) => setTimeout(resolve, 300))
  loop.running = false
  await Promise.all(loops)
  const failures = results.filter((r) => !r.ok)
  t.ok(results.filter((r) => r.at > killedAt && r.at < replacedAt && r.ok).length > 0, 'the surviving worker served while the replacement started')
  const exit = lb.lines.find((l) => l.code === 'TETHER_ERR_WORKER_EXIT' && l.signal === 'SIGKILL')
  t.ok(exit, 'the exit is logged with its code')
  const noticed = Date.parse(String(exit?.time))
  // What may fail: requests already started when the supervisor noticed the exit, one per
  // client at most: those on the killed worker (reset), and a connection the primary handed to
  // it just before (Node's round-robin handoff then never completes: the client times out).
  // Never an HTTP error answer, and nothing started after the exit was noticed.
  t.ok(failures.length <= CONCURRENCY, `${failures.length} of ${results.length} failed (at most ${CONCURRENCY} allowed): ${JSON.stringify(failures)}`)
  t.ok(failures.every((f) => f.error !== undefined && !f.error.startsWith('status')), 'no failure was an HTTP error answer')
  t.ok(failures.every((f) => f.started <= noticed), `every failed request had started before the supervisor noticed the exit (${noticed - killedAt} ms after the kill)`)
  // What ran meanwhile is not counted in the aggregated metrics (the killed worker's counters
  // died with it): the /metrics test above ran before this one.
})

t.test('SIGHUP reloads the file in every worker (the replacement too)', async (t) => {
  writeFileSync(file, config(`  - { url: ${b.url}, name: b }\n`))
  const pids = (await workers()).map((w) => w.pid)
  lb.child.kill('SIGHUP')
  await waitFor(() => pids.every((pid) => lb.lines.some((l) => l.msg === 'configuration reloaded' && l.pid === pid)), 5000, 'every worker to reload')
  let names: string[] = []
  const served = await perWorker(async () => { names = await batch(20) })
  t.ok(served.every((n) => n > 0), `both workers served: ${served.join(' / ')}`)
  t.same(new Set(names), new Set(['b']), 'every worker routes by the new file')
})

t.test('SIGTERM: every worker finishes its in-flight request, then exit 0', async (t) => {
  const slow = [get(`${url}/slow?ms=600`), get(`${url}/slow?ms=600`)]
  await new Promise((resolve) => setTimeout(resolve, 150))
  const pids = (await workers()).map((w) => w.pid)
  lb.child.kill('SIGTERM')
  const answers = await Promise.all(slow)
  t.same(answers.map((r) => r.status), [200, 200], 'the requests in flight completed')
  t.equal(await lb.exit, 0, 'exit status 0')
  for (const pid of pids) t.ok(lb.lines.some((l) => l.msg === 'balancer closed' && l.pid === pid), `worker ${pid} closed`)
  t.ok(lb.lines.some((l) => l.msg === 'balancer closed' && l.pid === lb.child.pid), 'the supervisor closed last')
})

t.test('TLS: one ticket secret for every worker, so a session resumes on any of them', { skip: hasOpenssl ? false : 'no openssl' }, async (t) => {
  const certs = makeCert(tempDir(t), 'lb', ['localhost'])
  const tls = run(t, ['--listen', '127.0.0.1:0', '--tls-cert', certs.cert, '--tls-key', certs.key, '--upstream', a.url, '--admin', '127.0.0.1:0', '--workers', '2'])
  const { port: tlsPort, admin: tlsAdmin } = await listening(tls)
  let session: Buffer | undefined
  const fetchOnce = (): Promise<boolean> => new Promise((resolve, reject) => {
    // TLS 1.2: the ticket is there once the handshake is done (1.3 sends it later).
    const req = httpsRequest({ host: '127.0.0.1', port: tlsPort, path: '/', servername: 'localhost', ca: certs.pem, agent: false, maxVersion: 'TLSv1.2', ...(session === undefined ? {} : { session }) }, (res) => {
      const socket = res.socket as import('node:tls').TLSSocket
      const reused = socket.isSessionReused()
      session ??= socket.getSession()
      res.resume()
      res.on('end', () => resolve(reused))
    })
    req.on('error', reject)
    req.end()
  })
  t.equal(await fetchOnce(), false, 'the first connection is a full handshake')
  const before = new Map(json<{ workers: WorkerInfo[] }>(await get(`http://127.0.0.1:${tlsAdmin ?? 0}/api/workers`)).workers.map((w) => [w.pid, w.requests]))
  const reused: boolean[] = []
  for (let i = 0; i < 8; i++) reused.push(await fetchOnce())
  const after = json<{ workers: WorkerInfo[] }>(await get(`http://127.0.0.1:${tlsAdmin ?? 0}/api/workers`)).workers
  t.ok(after.every((w) => w.requests - (before.get(w.pid) ?? 0) > 0), 'both workers served the resumed connections')
  t.same(reused, new Array(8).fill(true), 'every later connection resumed, whichever worker took it')
})

t.test('replacement back-off: doubling while workers die young, reset by a long life', async (t) => {
  let crashes = 0
  const delays: number[] = []
  for (let i = 0; i < 10; i++) {
    const next = replacementDelay(crashes, 50)
    crashes = next.crashes
    delays.push(next.delayMs)
  }
  t.same(delays, [100, 200, 400, 800, 1600, 3200, 6400, 10_000, 10_000, 10_000], 'a crash loop: 0.1 s doubling, capped at 10 s')
  t.same(replacementDelay(crashes, 10_000), { crashes: 1, delayMs: 100 }, 'a worker that lived 10 s starts the count again')
})
