// Sticky sessions: the cookie codec, and routing through a real balancer to real upstreams:
// sticky, forged, failover (moved + rewritten cookie), drain, maint, removal, backup.
import t from 'tap'
import { StickyCodec, resolveConfig } from '../src/index.js'
import { constantTimeEqual, findCookie } from '../src/sticky.js'
import { SECRET, startBalancer } from './helpers/balancer.js'
import { get, json, stickyCookie, type Seen } from './helpers/http.js'
import { startUpstreams } from './helpers/upstreams.js'

const codecFor = (secret: string | string[]): StickyCodec => {
  const codec = new StickyCodec(resolveConfig({ upstreams: ['http://127.0.0.1:1'], sticky: { secret } }).sticky)
  codec.index(['a', 'b'])
  return codec
}

t.test('codec: values verify, forgeries do not', async (t) => {
  const codec = codecFor(SECRET)
  const a = codec.valueFor('a')
  const b = codec.valueFor('b')
  t.not(a, b)
  t.same(codec.verify(a), { name: 'a', mac: a.slice(13), current: true })
  t.equal(codec.valueFor('a'), a, 'derived, not random: stable across calls')
  t.equal(codecFor(SECRET).valueFor('a'), a, '...and across instances (restarts, reloads)')
  const flip = (s: string, i: number): string => s.slice(0, i) + (s[i] === 'A' ? 'B' : 'A') + s.slice(i + 1)
  const forgeries: Array<[string, string]> = [
    ['empty', ''],
    ['garbage', 'hello'],
    ['a node name', 'a'],
    ['tampered mac', flip(a, a.length - 1)],
    ['tampered id', flip(a, 0)],
    ['id of a with mac of b', `${a.slice(0, 12)}.${b.slice(13)}`],
    ['truncated', a.slice(0, -1)],
    ['signed with another secret', codecFor('another-secret-0123456789').valueFor('a')]
  ]
  for (const [name, value] of forgeries) t.equal(codec.verify(value), undefined, name)
})

t.test('codec: key rotation — old cookies verify but are marked for re-issue', async (t) => {
  const old = codecFor('old-secret-0123456789abc').valueFor('a')
  const rotated = codecFor(['new-secret-0123456789abc', 'old-secret-0123456789abc'])
  t.same(rotated.verify(old), { name: 'a', mac: old.slice(13), current: false })
  t.equal(rotated.verify(rotated.valueFor('a'))?.current, true)
})

t.test('codec: Set-Cookie attributes', async (t) => {
  const plain = codecFor(SECRET)
  t.match(plain.setCookieFor('a'), /^tether_node=[\w-]{12}\.[\w-]{22}; Path=\/; HttpOnly; SameSite=Lax$/)
  const custom = new StickyCodec(resolveConfig({ upstreams: ['http://127.0.0.1:1'], sticky: { secret: SECRET, cookie: 'lb', maxAge: '1h', secure: true, sameSite: 'Strict', domain: 'example.com', path: '/app' } }).sticky)
  custom.index(['a'])
  t.match(custom.setCookieFor('a'), /^lb=[\w-]+\.[\w-]+; Path=\/app; HttpOnly; SameSite=Strict; Max-Age=3600; Domain=example\.com; Secure$/)
})

t.test('findCookie reads only our cookie', async (t) => {
  const cases: Array<[string, string | undefined]> = [
    ['tether_node=abc', 'abc'],
    ['a=1; tether_node=abc; b=2', 'abc'],
    ['a=1;tether_node=abc', 'abc'],
    ['xtether_node=evil; tether_node=good', 'good'],
    ['xtether_node=evil', undefined],
    ['tether_node="quoted"', 'quoted'],
    ['tether_node= spaced ;x=1', 'spaced'],
    ['other=tether_node=abc', undefined],
    ['', undefined]
  ]
  for (const [header, want] of cases) t.equal(findCookie(header, 'tether_node'), want, JSON.stringify(header))
})

t.test('constantTimeEqual', async (t) => {
  t.ok(constantTimeEqual('abc', 'abc'))
  t.notOk(constantTimeEqual('abc', 'abd'))
  t.notOk(constantTimeEqual('abc', 'ab'))
})

const [a, b, c, d] = await startUpstreams(t, ['a', 'b', 'c', 'd'])
if (a === undefined || b === undefined || c === undefined || d === undefined) throw new Error('upstreams did not start')
const three = [{ url: a.url, name: 'a' }, { url: b.url, name: 'b' }, { url: c.url, name: 'c' }]

async function visit (url: string, cookie?: string): Promise<{ seen: Seen, cookie: string | undefined, route: string | undefined }> {
  const res = await get(`${url}/`, cookie === undefined ? {} : { cookie: `theme=dark; ${cookie}` })
  if (res.status !== 200) throw new Error(`status ${res.status}: ${res.body}`)
  const seen = json<Seen>(res)
  return { seen, cookie: stickyCookie(res), route: seen.headers['x-tether-route'] }
}

t.test('a valid cookie routes to its node; no cookie is re-sent', async (t) => {
  const { url } = await startBalancer(t, { upstreams: three })
  const first = await visit(url)
  t.equal(first.route, 'new')
  t.ok(first.cookie)
  for (let i = 0; i < 6; i++) {
    const next = await visit(url, first.cookie)
    t.equal(next.seen.name, first.seen.name, `visit ${i + 2} stays on ${first.seen.name}`)
    t.equal(next.route, 'sticky')
    t.equal(next.seen.headers['x-tether-moved'], undefined)
    t.equal(next.cookie, undefined, 'a valid cookie is not re-issued')
  }
})

t.test('a forged or foreign cookie is ignored and replaced', async (t) => {
  const { url, logs } = await startBalancer(t, { upstreams: three })
  const forged = await visit(url, 'tether_node=AAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAA')
  t.equal(forged.route, 'new', 'treated as no cookie')
  t.ok(forged.cookie, 'a real cookie replaces it')
  t.ok(logs.some((l) => l.msg === 'sticky cookie ignored: not one this balancer issued'))
  const other = await startBalancer(t, { upstreams: three, sticky: { secret: 'a-different-secret-0123456789' } })
  const foreign = await visit(url, (await visit(other.url)).cookie)
  t.equal(foreign.route, 'new', 'a cookie signed by another secret does not steer')
})

t.test('failover: the sticky node dies, the request moves and the cookie is rewritten', async (t) => {
  const [x, y] = await startUpstreams(t, ['x', 'y'])
  if (x === undefined || y === undefined) throw new Error('no upstreams')
  const { url } = await startBalancer(t, { upstreams: [{ url: x.url, name: 'x' }, { url: y.url, name: 'y' }] })
  let start = await visit(url)
  while (start.seen.name !== 'x') start = await visit(url) // bounded: round-robin alternates
  await x.kill()
  const moved = await visit(url, start.cookie)
  t.equal(moved.seen.name, 'y')
  t.equal(moved.route, 'moved')
  t.equal(moved.seen.headers['x-tether-moved'], '1')
  t.ok(moved.cookie, 'a new cookie is set')
  t.not(moved.cookie, start.cookie, 'it names the new node')
  const after = await visit(url, moved.cookie)
  t.equal(after.seen.name, 'y')
  t.equal(after.route, 'sticky', 'the rewritten cookie is sticky to the new node')
})

t.test('drain keeps sticky clients and takes no new ones; maint takes nothing', async (t) => {
  const { url, balancer } = await startBalancer(t, { upstreams: three })
  const clients = await Promise.all(Array.from({ length: 6 }, () => visit(url)))
  const onA = clients.filter((x) => x.seen.name === 'a')
  t.ok(onA.length >= 1, 'some client started on a')

  balancer.setNode('a', { state: 'drain' })
  for (const client of onA) {
    const again = await visit(url, client.cookie)
    t.equal(again.seen.name, 'a', 'a sticky client of a draining node stays')
    t.equal(again.route, 'sticky')
  }
  const fresh = await Promise.all(Array.from({ length: 12 }, () => visit(url)))
  t.notOk(fresh.some((x) => x.seen.name === 'a'), 'no new client lands on a draining node')

  balancer.setNode('a', { state: 'maint' })
  for (const client of onA) {
    const again = await visit(url, client.cookie)
    t.not(again.seen.name, 'a', 'maint: even sticky clients are moved')
    t.equal(again.route, 'moved')
    t.equal(again.seen.headers['x-tether-moved'], '1')
    t.ok(again.cookie)
  }
  balancer.setNode('a', { state: 'active' })
  const back = await visit(url, onA[0]?.cookie)
  t.equal(back.seen.name, 'a', 'an old cookie for a works again once a is active')
})

t.test('a node removed by reload: its clients move', async (t) => {
  const { url, balancer } = await startBalancer(t, { upstreams: three })
  let start = await visit(url)
  while (start.seen.name !== 'c') start = await visit(url)
  balancer.reload({ listen: '127.0.0.1:0', sticky: { secret: SECRET }, upstreams: three.slice(0, 2) })
  const moved = await visit(url, start.cookie)
  t.equal(moved.route, 'moved')
  t.not(moved.seen.name, 'c')
})

t.test('backup nodes serve only while no primary is up, then hand clients back', async (t) => {
  const { url, balancer } = await startBalancer(t, { upstreams: [{ url: a.url, name: 'a' }, { url: b.url, name: 'b' }, { url: d.url, name: 'd', backup: true }] })
  const normal = await Promise.all(Array.from({ length: 8 }, () => visit(url)))
  t.notOk(normal.some((x) => x.seen.name === 'd'), 'the backup idles while primaries are up')
  balancer.setNode('a', { state: 'maint' })
  balancer.setNode('b', { state: 'maint' })
  const onBackup = await visit(url)
  t.equal(onBackup.seen.name, 'd', 'with every primary out, the backup serves')
  balancer.setNode('a', { state: 'active' })
  const handedBack = await visit(url, onBackup.cookie)
  t.equal(handedBack.seen.name, 'a', 'a backup keeps no sticky client once a primary is back')
  t.equal(handedBack.route, 'moved')
})

t.test('sticky cookies off: no cookie, route new', async (t) => {
  const { url } = await startBalancer(t, { upstreams: three, sticky: false })
  const res = await visit(url)
  t.equal(res.cookie, undefined)
  t.equal(res.route, 'new')
})

t.test('secret rotation by reload keeps clients and re-issues their cookies', async (t) => {
  const { url, balancer } = await startBalancer(t, { upstreams: three, sticky: { secret: 'first-secret-0123456789ab' } })
  const start = await visit(url)
  balancer.reload({ listen: '127.0.0.1:0', upstreams: three, sticky: { secret: ['second-secret-0123456789a', 'first-secret-0123456789ab'] } })
  const after = await visit(url, start.cookie)
  t.equal(after.seen.name, start.seen.name)
  t.equal(after.route, 'sticky')
  t.ok(after.cookie, 're-issued under the new secret')
  t.not(after.cookie, start.cookie)
})
