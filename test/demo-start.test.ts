// `npm start` as a user runs it: scripts/start.mjs spawned as a process. Good input brings up
// the cluster and a signal takes all of it down; bad input gives one line, a non-zero exit, and
// leaves no process behind. Survivors are found by a tag in their environment (/proc), which
// every process the script starts inherits.
import t from 'tap'
import type { Test } from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startRedis } from './helpers/redis.js'
import { cookieFrom, freePort, request } from './helpers/net.js'
import { exited, noSurvivors, start, tagged, up } from './helpers/demo-cluster.js'
import type { RunningCluster } from './helpers/demo-cluster.js'

const dir = mkdtempSync(join(tmpdir(), 'tether-start-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))

async function busyPort (t: Test): Promise<number> {
  const srv = net.createServer()
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve))
  t.teardown(() => srv.close())
  return (srv.address() as net.AddressInfo).port
}

t.test('bad input: one clear line, a non-zero exit, no process left', async (t) => {
  const busy = await busyPort(t)
  const closed = await freePort() // nothing listens there
  const cases: Array<[string, string[], Record<string, string>, number, RegExp]> = [
    ['unknown store scheme', ['--store', 'mongodb://db'], {}, 2, /^tether: --store must be sqlite:<path>, redis:\/\/host:port, postgres:\/\/host\/db, mysql:\/\/host\/db or memcached:\/\/host:port; got "mongodb:\/\/db"$/],
    ['memory store', ['--store', 'memory:'], {}, 2, /needs? a shared store/],
    ['bad REDIS_URL', [], { REDIS_URL: 'http://cache' }, 2, /^tether: REDIS_URL must be sqlite:<path>, redis:\/\/host:port/],
    ['missing port value', ['--port'], {}, 2, /^tether: Option '--port <value>' argument missing/],
    ['invalid port', ['--port', '80x'], {}, 2, /^tether: --port must be an integer from 0 to 65535; got "80x"$/],
    ['port out of range', ['--admin-port', '65536'], {}, 2, /--admin-port must be an integer/],
    ['port in use', ['--port', String(busy), '--admin-port', '0', '--data-dir', dir], {}, 1, new RegExp(`^tether: port ${busy} \\(--port\\) is already in use`)],
    ['node port in use', ['--port', '0', '--admin-port', '0', '--node-ports', `0,${busy},0`, '--data-dir', dir], {}, 1, new RegExp(`^tether: port ${busy} \\(--node-ports\\) is already in use`)],
    ['Redis not reachable', ['--store', `redis://127.0.0.1:${closed}`, '--port', '0', '--admin-port', '0'], {}, 1, /^tether: cannot reach Redis at redis:\/\/127\.0\.0\.1:\d+/],
    // The nodes start, and then fail: the store path is a directory. Every node must be gone.
    ['store unusable after the nodes spawned', ['--store', `sqlite:${dir}`, '--port', '0', '--admin-port', '0'], {}, 1, /^tether: node\d did not start: cannot open the session store/]
  ]
  // All cases run at once (each is its own process tree, told apart by its tag), then each
  // is checked in its own subtest.
  const runs = cases.map(([, args, env]) => start(t, args, env))
  const exits = await Promise.all(runs.map((s) => exited(s, 30_000)))
  for (const [i, [what, , , code, message]] of cases.entries()) {
    const s = runs[i]!
    await t.test(what, async (t) => {
      t.equal(exits[i]!.code, code, `exit status ${code}`)
      t.match(s.stderr().trim(), message)
      t.equal(s.stderr().trim().split('\n').length, 1, 'one line on stderr')
      await noSurvivors(t, s.tag)
    })
  }
})

function cluster (t: Test, args: string[] = [], env: Record<string, string> = {}, dataDir = mkdtempSync(join(dir, 'data-'))): Promise<RunningCluster> {
  return up(t, ['--port', '0', '--admin-port', '0', '--data-dir', dataDir, ...args], env)
}

async function visit (url: string, cookie?: string): Promise<{ count: number, node: string, cookie: string }> {
  const res = await request(`${url}api/visit`, { headers: cookie === undefined ? {} : { cookie } })
  if (res.status !== 200) throw new Error(`${res.status} ${res.body}`)
  const body = JSON.parse(res.body) as { count: number, node: { name: string } }
  const jar = new Map((cookie ?? '').split('; ').filter(Boolean).map((p) => [p.split('=')[0]!, p]))
  for (const name of ['tether.sid', 'tether_node']) {
    const c = cookieFrom(res.headers, name)
    if (c !== undefined) jar.set(name, c)
  }
  return { count: body.count, node: body.node.name, cookie: [...jar.values()].join('; ') }
}

t.test('the cluster serves the counter through the balancer, SIGTERM stops all of it with status 0, and a restart keeps the session', async (t) => {
  const dataDir = mkdtempSync(join(dir, 'data-'))
  const s = await cluster(t, [], {}, dataDir)
  t.same(s.nodes.map((n) => n.pid).filter((pid) => tagged(s.tag).includes(pid)), s.nodes.map((n) => n.pid), 'the three printed node pids are running')
  let v = await visit(s.url)
  t.equal(v.count, 1)
  v = await visit(s.url, v.cookie)
  t.equal(v.count, 2, 'the session counts on through the balancer')
  const status = await request(s.statusUrl)
  t.equal(status.status, 200, 'the status page answers')
  t.match(status.body, /node1[\s\S]*node2[\s\S]*node3/, 'and lists the three nodes')
  s.child.kill('SIGTERM')
  t.same(await exited(s, 15_000), { code: 0, signal: null }, 'exit status 0')
  await noSurvivors(t, s.tag)
  // The SQLite file and the cookie secrets live in the data directory, so the browser's
  // cookies still work after the whole cluster restarted.
  const again = await cluster(t, [], {}, dataDir)
  t.equal((await visit(again.url, v.cookie)).count, 3, 'the count carries on after a restart')
  again.child.kill('SIGTERM')
  t.equal((await exited(again, 15_000)).code, 0)
  await noSurvivors(t, again.tag)
})

t.test('REDIS_URL makes the same cluster use Redis; SIGINT (Ctrl-C) stops it with status 0', async (t) => {
  const redis = await startRedis(t)
  const s = await cluster(t, [], { REDIS_URL: redis.url })
  t.match(s.stdout(), new RegExp(`store {3}${redis.url.replace(/[.]/g, '\\.')}`))
  const v = await visit(s.url)
  t.equal(v.count, 1)
  // One hash per session, beside it the `:w` hash of its recent write ids (exactly-once).
  const keys = await redis.client().keys('counter:sess:*')
  t.equal(keys.filter((k) => !k.endsWith(':w')).length, 1, 'the session lives in Redis')
  s.child.kill('SIGINT')
  t.same(await exited(s, 15_000), { code: 0, signal: null }, 'exit status 0')
  await noSurvivors(t, s.tag)
})

t.test('if the supervisor itself is killed, its nodes follow (their stdin closes)', async (t) => {
  const s = await cluster(t)
  s.child.kill('SIGKILL')
  await exited(s, 5000)
  await noSurvivors(t, s.tag)
})
