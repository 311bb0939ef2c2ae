// Error codes are API: this test lists them, so adding, renaming or re-statusing one is a
// visible change, and docs/errors.md must document each of them.
import t from 'tap'
import { readFileSync } from 'node:fs'
import { TetherError, errorCodes, tetherError, storeUnavailable } from '../src/index.js'

const expected = {
  TETHER_ERR_INVALID_OPTION: 500,
  TETHER_ERR_SECRET_TOO_SHORT: 500,
  TETHER_ERR_STORE_UNAVAILABLE: 503,
  TETHER_ERR_STORE_OUTCOME_UNKNOWN: 503,
  TETHER_ERR_STORE_CONFLICT: 503,
  TETHER_ERR_WRITE_UNCONFIRMED: 503,
  TETHER_ERR_STORE_CORRUPT: 500,
  TETHER_ERR_SESSION_UNSERIALIZABLE: 500,
  TETHER_ERR_RESERVED_KEY: 500,
  TETHER_ERR_NOT_A_COUNTER: 500,
  TETHER_ERR_SESSION_GONE: 409,
  TETHER_ERR_LOCK_TIMEOUT: 503,
  TETHER_ERR_LOCK_LOST: 409,
  TETHER_ERR_LOCK_UNSUPPORTED: 500,
  TETHER_ERR_NEAR_CACHE_UNSUPPORTED: 500,
  TETHER_ERR_STORE_CAPABILITY: 500,
  TETHER_ERR_DEPENDENCY_MISSING: 500,
  TETHER_ERR_INVALID_COOKIE_LIFETIME: 500
}

t.test('the registry lists exactly the documented codes and statuses', async (t) => {
  const actual = Object.fromEntries(Object.entries(errorCodes).map(([code, d]) => [code, d.status]))
  t.same(actual, expected)
  for (const [code, d] of Object.entries(errorCodes)) {
    t.match(code, /^TETHER_ERR_[A-Z_]+$/, `${code} follows the naming scheme`)
    t.ok(d.message.length > 20, `${code} has a message`)
    t.ok(d.fix.length > 10, `${code} has a fix`)
    t.notMatch(d.message + d.fix, /\|/, `${code}: no '|' (it would split the docs table's cell)`)
  }
})

t.test('docs/errors.md documents every code: same status, same message and fix, none stale', async (t) => {
  const doc = readFileSync(new URL('../../../docs/errors.md', import.meta.url), 'utf8')
  for (const code of Object.keys(expected)) t.match(doc, new RegExp(`\\b${code}\\b`), `${code} documented`)
  const start = doc.indexOf('\n## @tether/middleware\n')
  t.not(start, -1, 'the page has a @tether/middleware section')
  const next = doc.indexOf('\n## ', start + 1)
  const section = doc.slice(start, next === -1 ? undefined : next)
  t.match(section, /\| code \| status \| message \| fix \|/, "the table has the registry's columns")
  const rows = new Map<string, { status: number | null, message: string, fix: string }>()
  for (const m of section.matchAll(/^\| `(TETHER_ERR_[A-Z_]+)` \| ([^|]*) \| ([^|]*) \| ([^|]*) \|$/gm)) {
    const status = /^\d{3}\b/.exec(m[2]!.trim())
    rows.set(m[1]!, { status: status === null ? null : Number(status[0]), message: m[3]!.trim(), fix: m[4]!.trim() })
  }
  t.same([...rows.keys()].sort(), Object.keys(errorCodes).sort(), 'the same codes: none missing, none stale')
  for (const [code, d] of Object.entries(errorCodes)) {
    const row = rows.get(code)
    t.equal(row?.status, d.status, `${code}: the same status`)
    t.equal(row?.message, d.message, `${code}: the same message`)
    t.equal(row?.fix, d.fix, `${code}: the same fix`)
  }
})

t.test('errors carry code, status and cause, and instanceof works across copies', async (t) => {
  const cause = new Error('ECONNREFUSED')
  const err = storeUnavailable('RedisStore', cause)
  t.equal(err.code, 'TETHER_ERR_STORE_UNAVAILABLE')
  t.equal(err.statusCode, 503)
  t.equal(err.status, 503, 'status and statusCode carry the same value')
  t.equal(err.cause, cause)
  t.match(err.message, /RedisStore.*ECONNREFUSED/)
  t.ok(err instanceof TetherError)
  t.ok(err instanceof Error)
  t.equal(storeUnavailable('x', err), err, 'a TetherError is passed through, not re-wrapped')
  const lookalike = Object.assign(Object.create(Error.prototype), { [Symbol.for('tether.middleware.error')]: true })
  t.ok(lookalike instanceof TetherError, 'the Symbol.for marker makes instanceof work for a duplicate install')
  t.notOk(new Error('plain') instanceof TetherError)
  t.equal(tetherError('TETHER_ERR_LOCK_LOST', 'x').statusCode, 409)
  t.equal(tetherError('TETHER_ERR_LOCK_LOST', 'x').status, 409)
})
