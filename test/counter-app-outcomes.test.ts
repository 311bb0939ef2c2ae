// The counter-app meets every store outcome a visit can have and answers each honestly: the
// session gone (409), the store down (503, nothing counted), the outcome unknown (503, may have
// been counted), as JSON under /api and as a page at /.
import t from 'tap'
import { buildApp } from '../examples/counter-app/src/app.js'
import { MemoryStore, outcomeUnknown, storeUnavailable } from '@tether/middleware'
import type { ApplyResult, SessionChange } from '@tether/middleware'

const SECRET = 'counter-outcomes-secret-0123456789-abcdefghij'

/** A real MemoryStore whose next writes fail as told: after applying (reply lost) or before. */
class FaultyStore extends MemoryStore {
  fault: 'none' | 'down' | 'lost' | 'vanish' = 'none'
  override async apply (id: string, change: SessionChange): Promise<ApplyResult> {
    // The session removed between the visit's load and its save (a reset elsewhere, a FLUSHALL).
    if (this.fault === 'vanish') await this.destroy(id)
    if (this.fault === 'down') throw storeUnavailable('FaultyStore', new Error('connection refused'))
    const result = await super.apply(id, change)
    if (this.fault === 'lost') throw outcomeUnknown('FaultyStore', new Error('timed out'))
    return result
  }
}

t.test('each store outcome: its status, its words, JSON and HTML', async (t) => {
  const store = new FaultyStore()
  const app = await buildApp({ store, storeName: 'memory:', nodeName: 'n1', secret: SECRET, trustProxy: [], logLevel: 'silent' })
  t.teardown(() => app.close())
  const first = await app.inject({ method: 'POST', url: '/api/visit' })
  t.equal(first.json().count, 1)
  const cookie = first.headers['set-cookie']!.toString().split(';')[0]!

  store.fault = 'down'
  const down = await app.inject({ method: 'POST', url: '/api/visit', headers: { cookie } })
  t.equal(down.statusCode, 503)
  t.match(down.json(), { code: 'TETHER_ERR_STORE_UNAVAILABLE', retry: true, detail: /not counted/ })
  t.equal(down.headers['retry-after'], '1')
  const downPage = await app.inject({ url: '/', headers: { cookie } })
  t.equal(downPage.statusCode, 503)
  t.match(downPage.headers['content-type'], /text\/html/)
  t.match(downPage.body, /The session store is unavailable/)

  store.fault = 'lost'
  const lost = await app.inject({ method: 'POST', url: '/api/visit', headers: { cookie } })
  t.equal(lost.statusCode, 503)
  t.match(lost.json(), { code: 'TETHER_ERR_STORE_OUTCOME_UNKNOWN', retry: false, detail: /at most once/ })
  t.equal(lost.headers['retry-after'], undefined, 'not told to retry blindly')
  store.fault = 'none'
  const now = await app.inject({ url: '/api/state', headers: { cookie } })
  t.equal(now.json().count, 2, 'the visit whose answer was lost counted exactly once (the retry found it applied)')

  store.fault = 'vanish'
  const gone = await app.inject({ method: 'POST', url: '/api/visit', headers: { cookie } })
  t.equal(gone.statusCode, 409)
  t.match(gone.json(), { code: 'TETHER_ERR_SESSION_GONE', detail: /starts a new session/ })
  t.match(gone.headers['set-cookie'], /tether\.sid=;/, 'the dead session\'s cookie is cleared')
  store.fault = 'none'
  const goneAgain = await app.inject({ url: '/', headers: { cookie } })
  t.equal(goneAgain.statusCode, 200, 'an unknown session on a read is simply a new one')
  t.match(goneAgain.body, /id="count">1</)
})
