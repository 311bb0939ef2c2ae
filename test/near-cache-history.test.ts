// The near-cache history checker. Concurrent clients, each with its own cookie jar, run random
// reads, writes, increments and logouts through tether-balancer to three app processes with
// the near-cache on, while the nodes move between active, drain and maint through the admin
// API. Some requests replay an older sticky cookie, two clients share one session cookie
// (each with its own sticky and version cookies), some requests go straight to a node, and one
// node's invalidation connection to Redis is killed once. Every request is recorded
// (client, op, start, end, result) and the history is checked afterwards:
//   - no stale read: a read that starts after a write (or increment) of the same client
//     completed never returns an older value; for another client's write the documented bound
//     applies (docs/middleware.md, "Near-cache"): visible everywhere within `maxLag` (the
//     fixture's 1 s). Reads inside that window that saw the older value are counted and printed;
//   - no acknowledged write or increment is missing at the end (Redis itself is read);
//   - nothing of a session is readable by a request that starts after its logout completed.
import t from 'tap'
import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import { nearCacheCluster } from './helpers/near-cache-cluster.js'
import { request } from './helpers/net.js'
import type { Reply } from './helpers/net.js'

const RUN_MS = Number(process.env.HISTORY_MS ?? 25_000)
const CLIENTS = 8
const PREFIX = 'nch:'

const names = ['a', 'b', 'c']
const { redis, apps, balancer, front, admin } = await nearCacheCluster(t, names, PREFIX, { BROKEN: process.env.HISTORY_BROKEN ?? '' })

type Op = 'read' | 'write' | 'incr' | 'logout'
interface Event {
  client: number
  op: Op
  start: number
  end: number
  /** The session the request saw (null: none, a new empty session). */
  id: string | null
  val?: number | null
  n?: number | null
  status: number
  via: string
}

class Client {
  readonly cookies = new Map<string, string>()
  readonly oldSticky: string[] = []
  partner: Client | undefined
  constructor (readonly index: number) {}

  header (replaySticky: boolean): string {
    const jar = new Map(this.cookies)
    if (replaySticky && this.oldSticky.length > 0) jar.set('tether_node', this.oldSticky[Math.floor(Math.random() * this.oldSticky.length)]!)
    return [...jar].map(([k, v]) => `${k}=${v}`).join('; ')
  }

  take (reply: Reply): void {
    for (const line of reply.headers['set-cookie'] ?? []) {
      const pair = line.split(';')[0]!
      const eq = pair.indexOf('=')
      const name = pair.slice(0, eq)
      const value = pair.slice(eq + 1)
      if (name === 'tether_node') {
        const old = this.cookies.get(name)
        if (old !== undefined && old !== value) this.oldSticky.push(old)
      }
      if (/Max-Age=0/i.test(line) || value === '') this.cookies.delete(name)
      else this.cookies.set(name, value)
      // The shared-cookie pair: the partner gets the session cookie (never the sticky or
      // version cookie), as a second subdomain or a copied cookie would.
      if (name === 'tether.sid' && this.partner !== undefined) {
        if (this.cookies.has(name)) this.partner.cookies.set(name, value)
        else this.partner.cookies.delete(name)
      }
    }
  }
}

const history: Event[] = []
let seq = 0
let failures = 0

async function step (c: Client): Promise<void> {
  const r = Math.random()
  const op: Op = r < 0.7 ? 'read' : r < 0.84 ? 'write' : r < 0.975 ? 'incr' : 'logout'
  const direct = Math.random() < 0.1
  const base = direct ? apps[Math.floor(Math.random() * apps.length)]!.url : front
  const val = ++seq
  const path = op === 'read' ? '/r' : op === 'write' ? `/w?val=${val}` : op === 'incr' ? '/i' : '/logout'
  const cookie = c.header(Math.random() < 0.2)
  const start = performance.now()
  let reply: Reply
  try {
    reply = await request(base + path, { method: op === 'read' ? 'GET' : 'POST', headers: cookie === '' ? {} : { cookie }, timeoutMs: 15_000 })
  } catch {
    failures++
    return
  }
  const end = performance.now()
  if (reply.status !== 200) { failures++; return }
  c.take(reply)
  const body = JSON.parse(reply.body) as { node: string, id: string | null, val?: number | null, n?: number | null }
  history.push({ client: c.index, op, start, end, id: body.id, status: reply.status, via: direct ? `direct:${body.node}` : body.node, ...(op === 'write' ? { val } : {}), ...(op === 'read' ? { val: body.val ?? null, n: body.n ?? null } : {}), ...(op === 'incr' ? { n: body.n ?? null } : {}) })
}

async function setState (name: string, state: 'active' | 'drain' | 'maint'): Promise<void> {
  await request(`${admin}/api/nodes/${name}`, { method: 'PATCH', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ state }) })
}

t.test('history: no stale read, no lost write or increment, nothing after a logout', { timeout: 120_000 }, async (t) => {
  const clients = Array.from({ length: CLIENTS }, (_, i) => new Client(i))
  clients[0]!.partner = clients[1]
  clients[2]!.partner = clients[3]
  const until = Date.now() + RUN_MS
  let moves = 0
  let killed = false
  const chaos = (async () => {
    while (Date.now() < until) {
      await sleep(700 + Math.random() * 800)
      const name = names[Math.floor(Math.random() * names.length)]!
      const states = ['active', 'drain', 'maint'] as const
      const next = states[Math.floor(Math.random() * states.length)]!
      // Keep at least one node taking new clients.
      const others = balancer.nodes().filter((n) => n.name !== name && n.state === 'active')
      await setState(name, others.length === 0 ? 'active' : next)
      moves++
      if (!killed && Date.now() > until - RUN_MS / 2) {
        killed = true
        const pid = apps[0]!.child.pid
        const list = await redis.client().call('CLIENT', 'LIST') as string
        const line = list.split('\n').find((l) => l.includes(`name=tether-near-cache-${pid!}`))
        if (line !== undefined) await redis.client().call('CLIENT', 'KILL', 'ID', /id=(\d+)/.exec(line)![1]!)
        t.ok(line, 'node a\'s invalidation connection was found and killed')
      }
    }
    for (const name of names) await setState(name, 'active')
  })()
  await Promise.all([chaos, ...clients.map(async (c) => { while (Date.now() < until) await step(c) })])

  // --- the checks ---------------------------------------------------------------------------
  const stale: string[] = []
  const afterLogout: string[] = []
  const bySession = new Map<string, Event[]>()
  for (const e of history) {
    if (e.id === null) continue
    let list = bySession.get(e.id)
    if (list === undefined) bySession.set(e.id, list = [])
    list.push(e)
  }
  let readsChecked = 0
  // The guarantee between clients: another client's write is visible within maxLag.
  const LAG = 1000
  const allowed = (reader: Event, writer: Event): number => reader.client === writer.client ? 0 : LAG
  let withinLag = 0
  for (const [id, events] of bySession) {
    const writes = events.filter((e) => e.op === 'write')
    const incrs = events.filter((e) => e.op === 'incr')
    const logouts = events.filter((e) => e.op === 'logout')
    for (const r of events.filter((e) => e.op === 'read')) {
      readsChecked++
      // The value it returned came from write X (or none yet). Stale when some write W began
      // after X completed and completed before the read began.
      const x = writes.find((w) => w.val === r.val)
      for (const w of writes) {
        if (w.end >= r.start || w === x) continue
        if (!(r.val === null || (x !== undefined && x.end < w.start))) continue
        if (w.end + allowed(r, w) >= r.start) { withinLag++; continue }
        stale.push(`client ${r.client} read val=${String(r.val)} via ${r.via} at ${r.start.toFixed(1)}, after write val=${w.val!} (client ${w.client}, via ${w.via}) completed at ${w.end.toFixed(1)}`)
      }
      for (const i of incrs) {
        if (!(i.end < r.start && (r.n ?? 0) < i.n!)) continue
        if (i.end + allowed(r, i) >= r.start) { withinLag++; continue }
        stale.push(`client ${r.client} read n=${String(r.n)} via ${r.via} at ${r.start.toFixed(1)}, after an increment to ${i.n!} (client ${i.client}, via ${i.via}) completed at ${i.end.toFixed(1)}`)
      }
    }
    for (const l of logouts) {
      for (const e of events) {
        if (!(e.start > l.end)) continue
        if (l.end + allowed(e, l) >= e.start) { withinLag++; continue }
        afterLogout.push(`client ${e.client} ${e.op} via ${e.via} saw session ${id.slice(0, 6)} at ${e.start.toFixed(1)}, after its logout (client ${l.client}) completed at ${l.end.toFixed(1)}`)
      }
    }
  }
  // The end state in Redis itself: every acknowledged write and increment is there.
  const probe = redis.client()
  const lost: string[] = []
  let sessionsChecked = 0
  for (const [id, events] of bySession) {
    if (events.some((e) => e.op === 'logout')) continue
    const hash = await probe.hgetall(`${PREFIX}{${id}}`)
    if (Object.keys(hash).length === 0) continue
    sessionsChecked++
    const incrs = events.filter((e) => e.op === 'incr')
    const ns = incrs.map((e) => e.n!)
    if (new Set(ns).size !== ns.length) lost.push(`session ${id.slice(0, 6)}: two increments returned the same count (${ns.join(',')})`)
    if (Number(hash.n ?? 0) !== incrs.length) lost.push(`session ${id.slice(0, 6)}: ${incrs.length} acknowledged increments, Redis holds n=${String(hash.n)}`)
    const writes = events.filter((e) => e.op === 'write')
    if (writes.length > 0) {
      // The final value must come from a write that no other write followed entirely.
      const last = writes.filter((w) => !writes.some((o) => o !== w && w.end < o.start))
      if (!last.some((w) => String(w.val) === hash.val)) lost.push(`session ${id.slice(0, 6)}: Redis holds val=${String(hash.val)}, not one of the last acknowledged writes (${last.map((w) => w.val).join(',')})`)
    }
  }
  const stats = await Promise.all(apps.map(async (a) => JSON.parse((await request(`${a.url}/stats`)).body) as { node: string, loads: number }))
  const reads = history.filter((e) => e.op === 'read').length
  const loads = stats.reduce((s, x) => s + x.loads, 0)
  t.comment(`checked ${history.length} requests (${reads} reads, ${history.filter((e) => e.op === 'write').length} writes, ${history.filter((e) => e.op === 'incr').length} increments, ${history.filter((e) => e.op === 'logout').length} logouts; ${history.filter((e) => e.via.startsWith('direct')).length} straight to a node) over ${bySession.size} sessions by ${CLIENTS} clients; ${moves} node state changes; ${failures} requests failed (not counted); ${readsChecked} reads checked for staleness, ${sessionsChecked} sessions checked in Redis; store loads ${loads} for ${reads} reads (the rest served from copies); ${withinLag} reads by another client within ${LAG} ms of a write or logout saw the state before it (allowed by the guarantee between clients)`)
  t.same(stale.slice(0, 10), [], `no stale read (${stale.length} found)`)
  t.same(afterLogout.slice(0, 10), [], `nothing seen after a completed logout (${afterLogout.length} found)`)
  t.same(lost.slice(0, 10), [], `no acknowledged write or increment missing (${lost.length} problems)`)
  t.ok(killed, 'the invalidation connection was dropped once during the run')
  t.ok(history.length > 200, `enough traffic to mean something (${history.length} requests)`)
  t.ok(loads < reads, 'some reads were served from the near-cache')
})
