// Property-based fuzzing (fast-check) of what the middleware reads from outside: the session
// cookie and the stored session values, and the whole path of session data from an assignment
// to the next request's toJSON(). Each target runs FUZZ_RUNS generated inputs (10,000 by
// default, as in CI); a failure prints the seed and the shrunk input that reproduces it.
import t from 'tap'
import fc from 'fast-check'
import { errorCodes, MemoryStore, newId, SessionManager, TetherError } from '../src/index.js'
import { decodeValue, encodeValue } from '../src/codec.js'

const RUNS = Number(process.env.FUZZ_RUNS ?? 10_000)
const SECRET = 'fuzz-secret-0123456789-abcdefghijklmnopqrstuvwxyz'
const OLD = 'fuzz-old-secret-0123456789-abcdefghijklmnopqrstu'

/** A thrown value is a TetherError with a code the registry lists, and one of `allowed`. */
function typed (err: unknown, allowed: readonly string[]): boolean {
  return err instanceof TetherError && Object.hasOwn(errorCodes, err.code) && allowed.includes(err.code)
}

t.test('session cookie: any Cookie header reads without a throw; signed ids round-trip', async (t) => {
  const manager = new SessionManager({ secret: [SECRET, OLD] })
  const old = new SessionManager({ secret: OLD })
  const jar = manager.jar
  const valid = jar.serialize(jar.sign(newId()), false, undefined).split(';')[0]!
  const header = fc.oneof(
    fc.string({ unit: 'binary', maxLength: 200 }),
    fc.string({ maxLength: 120 }).map((s) => `tether.sid=${s}`),
    // A valid cookie with one character changed, cut, or surrounded by other cookies.
    fc.tuple(fc.nat(valid.length - 1), fc.string({ minLength: 1, maxLength: 1 })).map(([i, c]) => valid.slice(0, i) + c + valid.slice(i + 1)),
    fc.nat(valid.length).map((n) => valid.slice(0, n)),
    fc.tuple(fc.string({ maxLength: 40 }), fc.string({ maxLength: 40 })).map(([a, b]) => `${a}; ${valid}; ${b}`)
  )
  fc.assert(fc.property(header, (h) => {
    const read = jar.read(h)
    // Either no id, or exactly the valid cookie's id (never something else made up).
    return read.id === undefined || read.id === valid.split('=')[1]!.split('.')[0]
  }), { numRuns: RUNS })
  fc.assert(fc.property(fc.constant(null).map(() => newId()), fc.boolean(), (id, fromOld) => {
    const signer = fromOld ? old.jar : jar
    const cookie = signer.serialize(signer.sign(id), false, undefined).split(';')[0]!
    const read = jar.read(cookie)
    return read.id === id && read.present && read.resign === fromOld
  }), { numRuns: RUNS })
  t.pass(`${RUNS} headers and ${RUNS} round trips`)
  await manager.close()
  await old.close()
})

t.test('session data codec: JSON values round-trip; anything else is a typed error', async (t) => {
  fc.assert(fc.property(fc.jsonValue(), (value) => {
    const json = encodeValue('k', value)!
    // Decoding and encoding again gives the same text: nothing dropped (`__proto__` keys
    // included), nothing added.
    return encodeValue('k', decodeValue('k', json)) === json
  }), { numRuns: RUNS })
  fc.assert(fc.property(fc.anything({ withBigInt: true, withMap: true, withSet: true, withTypedArray: true, withSparseArray: true, withNullPrototype: true, withObjectString: true }), (value) => {
    try {
      const json = encodeValue('k', value)
      return json === undefined ? value === undefined : typeof json === 'string'
    } catch (err) {
      return typed(err, ['TETHER_ERR_SESSION_UNSERIALIZABLE'])
    }
  }), { numRuns: RUNS })
  fc.assert(fc.property(fc.string({ unit: 'binary', maxLength: 100 }), (text) => {
    try {
      decodeValue('k', text)
      return true
    } catch (err) {
      return typed(err, ['TETHER_ERR_STORE_CORRUPT'])
    }
  }), { numRuns: RUNS })
  t.pass(`${RUNS} inputs per property`)
})

t.test('session data end to end: assigned keys come back as plain own keys, or a typed refusal', async (t) => {
  const store = new MemoryStore({ maxEntries: 1_000_000 })
  const manager = new SessionManager({ secret: SECRET, store })
  const log = { debug () {}, info () {}, warn () {}, error () {} }
  // Keys from everywhere, the prototype names and the reserved ones included.
  const key = fc.oneof(fc.string({ maxLength: 12 }), fc.constantFrom('__proto__', 'constructor', 'prototype', 'hasOwnProperty', 'toString', 'save', 'id', 'then', '\u0000x'))
  const runs = Math.max(1, Math.floor(RUNS / 5))
  await fc.assert(fc.asyncProperty(fc.dictionary(key, fc.jsonValue({ maxDepth: 3 }), { maxKeys: 6, noNullPrototype: false }), async (data) => {
    const state = await manager.open({ cookie: undefined, secure: false, lock: false, log })
    try {
      Object.assign(state.proxy, data)
    } catch (err) {
      if (!typed(err, ['TETHER_ERR_RESERVED_KEY'])) throw err
      return
    }
    const finished = await manager.finish(state)
    if (finished === undefined) return
    // finish() may set a companion cookie (the near-cache's version) after the session's.
    const setCookie = Array.isArray(finished) ? finished[0] ?? '' : finished
    const next = await manager.open({ cookie: setCookie.split(';')[0], secure: false, lock: false, log })
    const json = next.proxy.toJSON()
    if (Object.getPrototypeOf(json) !== Object.prototype) throw new Error('toJSON() took a prototype from session data')
    const expected = JSON.parse(JSON.stringify(Object.fromEntries(Object.entries(data).filter(([, v]) => v !== undefined)))) as unknown
    if (JSON.stringify(json) !== JSON.stringify(expected)) throw new Error(`read back ${JSON.stringify(json)}, wrote ${JSON.stringify(expected)}`)
    if (({} as Record<string, unknown>).polluted !== undefined) throw new Error('Object.prototype polluted')
  }), { numRuns: runs })
  t.pass(`${runs} sessions written and read back`)
  await manager.close()
  await store.close()
})
