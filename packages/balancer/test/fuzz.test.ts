// Property-based fuzzing (fast-check) of what the balancer reads from outside: its
// configuration (file text and the parsed value) and upstream HTTP/1.1 responses. Each target
// runs FUZZ_RUNS generated inputs (10,000 by default, as in CI); a failure prints the seed and
// the shrunk input that reproduces it.
import t from 'tap'
import fc from 'fast-check'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { errorCodes, loadConfigFile, resolveConfig, TetherBalancerError } from '../src/index.js'
import { FAILURE_CODES } from '../src/engines/failure.js'
import { ResponseParser } from '../src/engines/h1/parser.js'

const RUNS = Number(process.env.FUZZ_RUNS ?? 10_000)

/** A thrown value is a TetherBalancerError whose code the registry lists, and one of `allowed`. */
function typed (err: unknown, allowed: readonly string[]): boolean {
  return err instanceof TetherBalancerError && Object.hasOwn(errorCodes, err.code) && allowed.includes(err.code)
}

// Near-valid configurations find more of the validator than random values do.
const upstream = fc.oneof(
  fc.constantFrom('http://127.0.0.1:3001', 'http://[::1]:80', 'https://a.example', 'ftp://x', '127.0.0.1:1', ''),
  fc.record({ url: fc.constantFrom('http://127.0.0.1:3001', 'nope'), weight: fc.oneof(fc.integer({ min: -5, max: 20_000 }), fc.string()), name: fc.string({ maxLength: 8 }), state: fc.constantFrom('active', 'drain', 'maint', 'x') }, { requiredKeys: ['url'] })
)
const nearConfig = fc.record({
  upstreams: fc.oneof(fc.array(upstream, { maxLength: 4 }), fc.anything()),
  algorithm: fc.oneof(fc.constantFrom('weighted-round-robin', 'least-connections', 'ip-hash', 'random'), fc.anything()),
  engine: fc.constantFrom('h1', 'undici', 'http-proxy', 'h3'),
  listen: fc.oneof(fc.constantFrom('127.0.0.1:0', ':8080', '[::1]:1', 'x:y', 8080, -1), fc.anything()),
  timeouts: fc.oneof(fc.record({ connect: fc.oneof(fc.constantFrom('1s', '500ms', '2m', '-1s', 'soon'), fc.integer()) }, { requiredKeys: [] }), fc.anything()),
  sticky: fc.oneof(fc.boolean(), fc.record({ secret: fc.string({ maxLength: 40 }) }, { requiredKeys: [] }), fc.anything()),
  healthCheck: fc.oneof(fc.boolean(), fc.record({ interval: fc.constantFrom('1s', 'x', 0), path: fc.string({ maxLength: 10 }) }, { requiredKeys: [] }))
}, { requiredKeys: [] })

t.test('config: any parsed value resolves or fails with TETHER_ERR_CONFIG_INVALID', async (t) => {
  fc.assert(fc.property(fc.oneof(nearConfig, fc.anything({ withNullPrototype: true, withObjectString: true })), (input) => {
    try {
      const config = resolveConfig(input, { generatedSecret: 'fuzz-generated-secret-0123456789-abcdef' })
      return Array.isArray(config.upstreams) && config.upstreams.length > 0
    } catch (err) {
      return typed(err, ['TETHER_ERR_CONFIG_INVALID']) && (err as TetherBalancerError).issues.length > 0
    }
  }), { numRuns: RUNS })
  t.pass(`${RUNS} configurations`)
})

t.test('config file: any text loads or fails with TETHER_ERR_CONFIG_FILE, then resolves or fails typed', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tether-fuzz-config-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const text = fc.oneof(
    fc.string({ unit: 'binary', maxLength: 200 }),
    nearConfig.map((c) => JSON.stringify(c) ?? ''),
    fc.array(fc.constantFrom('upstreams:\n', '  - http://127.0.0.1:3001\n', 'algorithm: ip-hash\n', '  - {url: x}\n', 'listen: :0\n', '\t', '&a [*a]\n', '!!binary x\n', '? ', '"\\u', '{', '- ', ': '), { maxLength: 12 }).map((parts) => parts.join(''))
  )
  let n = 0
  await fc.assert(fc.asyncProperty(text, fc.boolean(), async (body, json) => {
    const file = join(dir, `c${n++ % 8}.${json ? 'json' : 'yaml'}`)
    writeFileSync(file, body)
    let raw: unknown
    try {
      raw = await loadConfigFile(file)
    } catch (err) {
      return typed(err, ['TETHER_ERR_CONFIG_FILE'])
    }
    try {
      resolveConfig(raw, { file, generatedSecret: 'fuzz-generated-secret-0123456789-abcdef' })
      return true
    } catch (err) {
      return typed(err, ['TETHER_ERR_CONFIG_INVALID'])
    }
  }), { numRuns: RUNS })
  t.pass(`${RUNS} files`)
})

interface Outcome { status: number, body: string, complete: boolean, failed: boolean, error: string, upgraded: boolean }

/** Feed `bytes` cut at `cuts`, then EOF. */
function parse (bytes: Buffer, cuts: number[], head: boolean, upgrade: boolean): Outcome {
  const out: Outcome = { status: 0, body: '', complete: false, failed: false, error: '', upgraded: false }
  const parser = new ResponseParser({
    onHead (status) { out.status = status },
    onBody (chunk) { out.body += chunk.toString('latin1') },
    onComplete () { out.complete = true }
  })
  parser.begin(head, upgrade)
  const points = [0, ...cuts.filter((c) => c > 0 && c < bytes.length).sort((a, b) => a - b), bytes.length]
  for (let i = 0; i + 1 < points.length; i++) {
    parser.execute(bytes.subarray(points[i], points[i + 1]))
    if (parser.failed || parser.complete || parser.upgraded) break
  }
  if (!parser.failed && !parser.complete && !parser.upgraded) parser.finish()
  out.failed = parser.failed
  out.error = parser.error
  out.upgraded = parser.upgraded
  out.complete = out.complete || parser.complete
  return out
}

t.test('h1 response parser: any bytes, any split: no throw, one clear end; valid responses round-trip', async (t) => {
  const valid = 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello'
  const bytes = fc.oneof(
    fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a)),
    // Valid responses with bytes changed, inserted or cut: closest to what a broken upstream sends.
    fc.tuple(fc.nat(valid.length), fc.uint8Array({ minLength: 1, maxLength: 3 })).map(([i, a]) => Buffer.concat([Buffer.from(valid.slice(0, i), 'latin1'), Buffer.from(a), Buffer.from(valid.slice(i + 1), 'latin1')])),
    fc.array(fc.constantFrom('HTTP/1.1 ', 'HTTP/1.0 ', '200 OK', '101 Switching', '100 Continue', '204 x', '\r\n', '\n', 'Content-Length: 3', 'Content-Length: -1', 'Content-Length: 99999999999999999999', 'Transfer-Encoding: chunked', 'Transfer-Encoding: gzip, chunked', 'Connection: close', '5\r\nhello', '0\r\n\r\n', 'fffffffffffffff\r\n', ';ext', 'abc', ' \t', ':', '\0'), { maxLength: 16 }).map((parts) => Buffer.from(parts.join(''), 'latin1'))
  )
  fc.assert(fc.property(bytes, fc.array(fc.nat(320), { maxLength: 4 }), fc.boolean(), fc.boolean(), (b, cuts, head, upgrade) => {
    const out = parse(b, cuts, head, upgrade)
    // Failed with a reason (which the engine reports as a registered code), or not failed.
    if (out.failed) return out.error !== '' && !out.complete && Object.hasOwn(errorCodes, FAILURE_CODES.protocol)
    return out.error === ''
  }), { numRuns: RUNS })

  const header = fc.tuple(fc.stringMatching(/^[A-Za-z][A-Za-z0-9-]{0,10}$/), fc.stringMatching(/^[!-~]( ?[!-~]){0,15}$/)).filter(([name]) => !/^(content-length|transfer-encoding|connection|upgrade)$/i.test(name))
  fc.assert(fc.property(fc.integer({ min: 200, max: 599 }).filter((s) => s !== 204 && s !== 304), fc.array(header, { maxLength: 5 }), fc.uint8Array({ maxLength: 200 }), fc.boolean(), fc.array(fc.nat(600), { maxLength: 5 }), (status, headers, bodyBytes, chunked, cuts) => {
    const body = Buffer.from(bodyBytes)
    const lines = headers.map(([n, v]) => `${n}: ${v}\r\n`).join('')
    let framed: Buffer
    if (chunked) {
      const half = Math.floor(body.length / 2)
      const parts = [body.subarray(0, half), body.subarray(half)].filter((p) => p.length > 0)
      framed = Buffer.concat([...parts.flatMap((p) => [Buffer.from(`${p.length.toString(16)}\r\n`), p, Buffer.from('\r\n')]), Buffer.from('0\r\n\r\n')])
    } else {
      framed = body
    }
    const headText = `HTTP/1.1 ${status} X\r\n${lines}${chunked ? 'Transfer-Encoding: chunked' : `Content-Length: ${body.length}`}\r\n\r\n`
    const out = parse(Buffer.concat([Buffer.from(headText, 'latin1'), framed]), cuts, false, false)
    return !out.failed && out.complete && out.status === status && out.body === body.toString('latin1')
  }), { numRuns: RUNS })
  t.pass(`${RUNS} byte strings and ${RUNS} valid responses, each at random splits`)
})
