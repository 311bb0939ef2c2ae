// Request-side fuzzing (fast-check) of a real running balancer in front of a real upstream that
// records every request it receives. FUZZ_RUNS generated raw HTTP/1.1 inputs (10,000 by
// default, as in CI) go over raw sockets, many at once: request lines and header names and
// values with CR, LF, NUL and obs-fold, duplicate and conflicting Content-Length and
// Transfer-Encoding, chunked bodies with bad sizes, many header lines, pipelining, and bodies
// that hold a request (`GET /fz/<case>/smuggled`). Properties:
// - bounded: every connection is answered and closed by the balancer within its timeouts;
// - valid: what comes back is a sequence of whole HTTP/1.1 responses, each the upstream's
//   answer to a request of this case, an interim 100, or a 4xx/5xx; or nothing (a clean close);
// - no smuggling: every request the upstream receives carries the balancer's own
//   `x-tether-node` header (a request hidden in a body and parsed by the upstream as a request
//   would not), and the upstream never sees more requests for a case than its bytes hold
//   request lines;
// - the balancer stays up: a normal request after each batch is answered 200.
// A failure prints the seed and the input; rerun with FUZZ_SEED to reproduce.
import t from 'tap'
import fc from 'fast-check'
import { randomBytes } from 'node:crypto'
import { createServer } from 'node:http'
import { connect } from 'node:net'
import type { AddressInfo } from 'node:net'
import { startBalancer } from './helpers/balancer.js'
import { get } from './helpers/http.js'

const RUNS = Number(process.env.FUZZ_RUNS ?? 10_000)
const SEED = Number(process.env.FUZZ_SEED ?? Date.now() % 2_147_483_647)
/** Connections in flight at once. */
const PARALLEL = 300
/** Longest a connection may stay open: above every client timeout below, with slack for a loaded machine. */
const BOUND_MS = 8000

// ---- the recording upstream ------------------------------------------------------------------

/** The node's name: the balancer sends it in `x-tether-node`; no generated input holds it. */
const NODE = `fz-${randomBytes(6).toString('hex')}`

interface Seen { readonly path: string, readonly viaBalancer: boolean, readonly headerCount: number }
const seen: Seen[] = []
let upstreamRejected = 0
const rejectedSamples: string[] = []
const upstream = createServer((req, res) => {
  seen.push({ path: req.url ?? '', viaBalancer: req.headers['x-tether-node'] === NODE, headerCount: req.rawHeaders.length / 2 })
  req.resume()
  req.on('end', () => {
    const body = `up ${req.url ?? ''}`
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body) })
    res.end(body)
  })
})
upstream.on('clientError', (err: NodeJS.ErrnoException & { rawPacket?: Buffer }, socket) => {
  // A request cut short (the balancer gave up on a client's body and closed the connection) is
  // not a malformed one.
  if (err.code === 'HPE_INVALID_EOF_STATE' || err.code === 'ECONNRESET') { socket.destroy(); return }
  upstreamRejected++
  if (rejectedSamples.length < 3) rejectedSamples.push(`${err.code ?? err.message}: ${JSON.stringify(err.rawPacket?.toString('latin1').slice(0, 300))}`)
  socket.destroy()
})
await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve))
t.teardown(() => { upstream.closeAllConnections(); upstream.close() })
const upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`

// ---- the generator ----------------------------------------------------------------------------

const ANY_EOL = fc.constantFrom('\r\n', '\r\n', '\r\n', '\r\n', '\r\n', '\n', '\r', '\r\n ', '\n\r')
const ANY_JUNK = fc.constantFrom('', '', '', '', ' ', '\t', '\0', '\r', '\n', '\x7f', '\xff', '%00', '\r\n', ':', ',', ';', '"', '\r\n\t', '\x0b')
/** Mostly nothing: most inputs should be near-valid, to reach the upstream and the framing code. */
const JUNK = fc.oneof({ weight: 9, arbitrary: fc.constant('') }, { weight: 1, arbitrary: ANY_JUNK })
const ANY_METHOD = fc.constantFrom('GET', 'GET', 'GET', 'POST', 'POST', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH', 'get', 'G ET', 'GET\0', '', 'POST ', '\x01', 'CONNECT', 'TRACE', 'PRI', 'X-CUSTOM')
const ANY_VERSION = fc.constantFrom('HTTP/1.1', 'HTTP/1.1', 'HTTP/1.1', 'HTTP/1.1', 'HTTP/1.0', 'HTTP/2.0', 'HTTP/1.10', 'http/1.1', 'HTTP/1.1 ', 'HTTP/0.9', 'HTTP/1.1\0', '', 'HTTP/1.1\r')

type Framing = 'none' | 'length' | 'chunked' | 'both' | 'te-then-length'
const ANY_CL_VALUE = fc.constantFrom('exact', 'exact', 'exact', 'less', 'more', 'zero', '-1', '+N', 'N, N', 'N,M', '0xN', 'huge', ' N', 'N ', 'N\0', '')
const ANY_TE_VALUE = fc.constantFrom('chunked', 'chunked', 'chunked', 'Chunked', ' chunked', 'chunked, identity', 'identity, chunked', 'gzip, chunked', 'chunked\0', 'xchunked', 'chunked ', '\tchunked', 'identity', 'chunked, chunked', 'chunked\r\n x')
const ANY_CHUNK_SIZE = fc.constantFrom('exact', 'exact', 'exact', 'less', 'more', '-1', 'fffffffffffffffffff', 'N;ext=1', 'N;', ' N', 'N ', 'g', '0xN', '', 'N\0')
const EXTRA_HEADER = fc.oneof(
  fc.constantFrom(
    'Host: fz', 'Host: a@evil.example/x', 'Host:', 'Host: fz:99999', 'Host: fz\0', 'X-A: a\r\n b', 'X-A:\r\n\tb',
    'Transfer-Encoding:\r\n chunked', 'Content-Length:\r\n 3', 'Transfer-Encoding : chunked', 'Content-Length : 3',
    'Connection: close', 'Connection: keep-alive', 'Connection: upgrade\r\nUpgrade: websocket', 'Upgrade: h2c', 'Expect: 100-continue',
    'Expect: nonsense', 'Connection: content-length', 'Connection: transfer-encoding, close', 'X-Forwarded-For: 1.2.3.4',
    ': empty-name', 'No-Colon-Line', ' Leading-Space: x', 'Bad Name: x', 'Über: x', 'Cookie: tether_node=forged', 'Trailer: x'
  ),
  fc.tuple(fc.stringMatching(/^[A-Za-z][A-Za-z0-9-]{0,10}$/), JUNK, fc.string({ maxLength: 12 }), JUNK).map(([n, a, v, b]) => `${n}${a}: ${v}${b}`),
  fc.tuple(fc.integer({ min: 2, max: 40 }), fc.constantFrom('a', 'Connection')).map(([n, name]) => name === 'a' ? Array(n).fill('a: b').join('\r\n') : `Connection: ${Array.from({ length: n }, (_, i) => `t${i}`).join(', ')}`)
)
/** Mostly `clean`, sometimes anything of `dirty`: each part of a request is usually valid, so that inputs reach the framing code and the upstream. */
function mostly<T> (clean: T, dirty: fc.Arbitrary<T>, cleanWeight = 8): fc.Arbitrary<T> {
  return fc.oneof({ weight: cleanWeight, arbitrary: fc.constant(clean) }, { weight: 10 - cleanWeight, arbitrary: dirty })
}
const EOL = mostly('\r\n', ANY_EOL, 9)
const METHOD = fc.oneof({ weight: 8, arbitrary: fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH') }, { weight: 2, arbitrary: ANY_METHOD })
const VERSION = mostly('HTTP/1.1', ANY_VERSION)
const CL_VALUE = mostly('exact', ANY_CL_VALUE, 6)
const TE_VALUE = mostly('chunked', ANY_TE_VALUE, 6)
const CHUNK_SIZE = mostly('exact', ANY_CHUNK_SIZE, 6)
const MASS = fc.constantFrom(0, 0, 0, 0, 0, 0, 0, 0, 50, 99, 101, 999, 1100)

interface RequestSpec {
  method: string,
  junk: string,
  version: string,
  eol: string,
  framing: Framing,
  cl: string,
  te: string,
  chunk: string,
  data: string,
  extras: string[],
  mass: number,
  tail: string,
  smuggle: boolean,
  close: boolean,
  headersFirst: boolean
}

const REQUEST = fc.record({
  method: METHOD,
  junk: JUNK,
  version: VERSION,
  eol: EOL,
  framing: fc.constantFrom<Framing>('none', 'none', 'length', 'length', 'chunked', 'chunked', 'both', 'te-then-length'),
  cl: CL_VALUE,
  te: TE_VALUE,
  chunk: CHUNK_SIZE,
  data: fc.string({ maxLength: 20 }),
  extras: mostly<string[]>([], fc.array(EXTRA_HEADER, { minLength: 1, maxLength: 3 }), 7),
  mass: MASS,
  tail: mostly('', fc.constantFrom('\r\n', 'x', '0\r\n\r\n', '\r\n\r\n'), 9),
  smuggle: fc.boolean(),
  close: fc.boolean(),
  headersFirst: fc.boolean()
})

/** The raw bytes of one request of case `id`, number `j`; `smuggled` is the request a body may hide. */
function render (r: RequestSpec, id: number, j: number): string {
  const smuggled = `GET /fz/${id}/smuggled HTTP/1.1\r\nHost: fz\r\n\r\n`
  const data = r.smuggle ? `${r.data}${smuggled}` : r.data
  const n = Buffer.byteLength(data, 'latin1')
  const clValue = ({ exact: `${n}`, less: `${Math.max(0, n - 3)}`, more: `${n + 5}`, zero: '0', '-1': '-1', '+N': `+${n}`, 'N, N': `${n}, ${n}`, 'N,M': `${n},${n + 1}`, '0xN': `0x${n.toString(16)}`, huge: '99999999999999999999', ' N': ` ${n}`, 'N ': `${n} `, 'N\0': `${n}\0`, '': '' } as Record<string, string>)[r.cl] ?? `${n}`
  const hex = n.toString(16)
  const sizeLine = ({ exact: hex, less: (Math.max(0, n - 2)).toString(16), more: (n + 4).toString(16), 'N;ext=1': `${hex};ext=1`, 'N;': `${hex};`, ' N': ` ${hex}`, 'N ': `${hex} `, '0xN': `0x${hex}`, 'N\0': `${hex}\0` } as Record<string, string>)[r.chunk] ?? r.chunk
  const chunked = `${sizeLine}\r\n${data}\r\n0\r\n\r\n`
  const headers: string[] = ['Host: fz']
  let body = ''
  switch (r.framing) {
    case 'none': break
    case 'length': headers.push(`Content-Length: ${clValue}`); body = data; break
    case 'chunked': headers.push(`Transfer-Encoding: ${r.te}`); body = chunked; break
    case 'both': headers.push(`Content-Length: ${clValue}`, `Transfer-Encoding: ${r.te}`); body = chunked; break
    case 'te-then-length': headers.push(`Transfer-Encoding: ${r.te}`, `Content-Length: ${clValue}`, `Content-Length: ${n + 1}`); body = r.headersFirst ? chunked : data; break
  }
  const mass = r.mass === 0 ? [] : [Array(r.mass).fill('a:').join('\r\n')]
  const all = r.headersFirst ? [...r.extras, ...mass, ...headers] : [...headers, ...mass, ...r.extras]
  if (r.close) all.push('Connection: close')
  return `${r.method} /fz/${id}/${j}${r.junk} ${r.version}${r.eol}${all.map((h) => `${h}\r\n`).join('')}\r\n${body}${r.tail}`
}

/** One case: 1 to 3 pipelined requests; a few keep the connection open after sending (the balancer's timeouts must end it). */
const CASE = fc.record({ requests: fc.array(REQUEST, { minLength: 1, maxLength: 3 }), keepOpen: fc.constantFrom(false, false, false, false, false, false, false, false, false, true) })

// ---- one exchange ------------------------------------------------------------------------------

interface Exchange { data: string, ms: number, hung: boolean }

/** Send `bytes` on a new connection, then read until the balancer closes it (half-closing our side unless `keepOpen`). */
function exchange (port: number, bytes: string, keepOpen: boolean): Promise<Exchange> {
  return new Promise((resolve) => {
    const started = Date.now()
    const socket = connect(port, '127.0.0.1')
    const chunks: Buffer[] = []
    let done = false
    const finish = (hung: boolean): void => {
      if (done) return
      done = true
      clearTimeout(timer)
      socket.destroy()
      resolve({ data: Buffer.concat(chunks).toString('latin1'), ms: Date.now() - started, hung })
    }
    const timer = setTimeout(() => finish(true), BOUND_MS)
    socket.on('connect', () => {
      socket.write(bytes, 'latin1')
      // Half-closing at once would make Node abort requests still in flight; wait for the
      // answers, then say we are done.
      if (!keepOpen) setTimeout(() => { if (!done) socket.end() }, 800).unref()
    })
    socket.on('data', (c: Buffer) => chunks.push(c))
    socket.on('error', () => finish(false))
    socket.on('close', () => finish(false))
  })
}

/** Split raw bytes into whole HTTP/1.1 responses; `problem` says what is wrong with them, if anything. */
function responses (data: string, id: number): { statuses: number[], problem: string | null } {
  const statuses: number[] = []
  let at = 0
  while (at < data.length) {
    const headEnd = data.indexOf('\r\n\r\n', at)
    if (headEnd < 0) return { statuses, problem: `a truncated head at byte ${at}` }
    const head = data.slice(at, headEnd)
    const m = /^HTTP\/1\.1 (\d{3}) [^\r\n]*/.exec(head)
    if (m === null) return { statuses, problem: `not a status line at byte ${at}: ${JSON.stringify(head.slice(0, 40))}` }
    const status = Number(m[1])
    statuses.push(status)
    at = headEnd + 4
    if (status < 200) {
      if (status !== 100) return { statuses, problem: `interim status ${status}` }
      continue
    }
    let body = ''
    if (/\r\ntransfer-encoding: *chunked\r?$/im.test(head)) {
      for (;;) {
        const lineEnd = data.indexOf('\r\n', at)
        const size = lineEnd < 0 ? NaN : parseInt(data.slice(at, lineEnd), 16)
        if (Number.isNaN(size) || data.length < lineEnd + 2 + size + 2) return { statuses, problem: `a truncated or invalid chunked body (${status})` }
        body += data.slice(lineEnd + 2, lineEnd + 2 + size)
        at = lineEnd + 2 + size + 2
        if (size === 0) break
      }
    } else {
      const length = /\r\ncontent-length: *(\d+)/i.exec(head)
      if (length === null) return { statuses, problem: `a response without framing (${status})` }
      body = data.slice(at, at + Number(length[1]))
      if (body.length < Number(length[1])) return { statuses, problem: `a truncated body (${status})` }
      at += Number(length[1])
    }
    if (status === 200 && !body.startsWith(`up /fz/${id}/`)) return { statuses, problem: `a 200 that is not the upstream's answer to this case: ${JSON.stringify(body)}` }
    if (status !== 200 && status < 400) return { statuses, problem: `status ${status}` }
    // The upstream only answers 200: every error is the balancer's own, which carries its code.
    if (status >= 400 && !/\r\nx-tether-error: TETHER_ERR_[A-Z_]+/i.test(head)) return { statuses, problem: `an error ${status} without a typed code (x-tether-error)` }
  }
  return { statuses, problem: null }
}

function count (haystack: string, needle: string): number {
  let n = 0
  for (let i = haystack.indexOf(needle); i >= 0; i = haystack.indexOf(needle, i + 1)) n++
  return n
}

// ---- the test ----------------------------------------------------------------------------------

// The default engine gets every input; the others a twentieth (the client side is the same
// frontend; what differs is how the framing reaches the node).
for (const [engine, runs] of [['h1', RUNS], ['undici', Math.ceil(RUNS / 20)], ['http-proxy', Math.ceil(RUNS / 20)]] as const) {
  t.test(`request side, ${engine} engine: ${runs} raw HTTP/1.1 inputs against a running balancer (seed ${SEED})`, async (t) => {
    const lb = await startBalancer(t, {
      engine,
      upstreams: [{ url: upstreamUrl, name: NODE }],
      retries: 0,
      timeouts: { clientHeaders: '500ms', clientRequest: '1s', clientKeepAlive: '300ms', response: '3s' },
      log: { level: 'silent' }
    })
    const cases = fc.sample(CASE, { numRuns: runs, seed: SEED })
    const inputs = cases.map((c, id) => ({ id, keepOpen: c.keepOpen, bytes: c.requests.map((r, j) => render(r, id, j)).join('') }))
    // FUZZ_PRINT=<case> prints one input of this seed, to reproduce it by hand.
    if (process.env.FUZZ_PRINT !== undefined) t.comment(JSON.stringify(inputs[Number(process.env.FUZZ_PRINT)]))
    const failures: string[] = []
    const statuses = new Map<number, number>()
    const codes = new Map<string, number>()
    let slowest = 0
    const fail = (what: string, input: { id: number, bytes: string }): void => {
      if (failures.length < 5) failures.push(`case ${input.id} (seed ${SEED}): ${what}\n    input: ${JSON.stringify(input.bytes.slice(0, 600))}`)
    }
    const started = Date.now()
    const upstreamCounts = new Map<number, Map<string, number>>()
    /** Check what the upstream saw since the last call, case by case. */
    const audit = (): void => {
      for (const s of seen.splice(0)) {
        if (s.path === '/fz/check' && s.viaBalancer) continue
        if (!s.viaBalancer) { failures.push(`SMUGGLED: the upstream received ${JSON.stringify(s.path)} without the balancer's x-tether-node (seed ${SEED})`); continue }
        const id = Number(/^\/fz\/(\d+)\//.exec(s.path)?.[1] ?? -1)
        const input = inputs[id]
        if (input === undefined) { failures.push(`the upstream received a path no case sent: ${JSON.stringify(s.path)} (seed ${SEED})`); continue }
        const paths = upstreamCounts.get(id) ?? new Map<string, number>()
        upstreamCounts.set(id, paths)
        const n = (paths.get(s.path) ?? 0) + 1
        paths.set(s.path, n)
        const total = [...paths.values()].reduce((a, b) => a + b, 0)
        if (total > count(input.bytes, `/fz/${id}/`)) fail(`the upstream received ${total} requests, more than the input holds request lines: ${JSON.stringify([...paths.keys()])}`, input)
        if (n > count(input.bytes, s.path)) fail(`the upstream received ${JSON.stringify(s.path)} ${n} times, more than the input holds it`, input)
      }
    }
    // A sliding window of PARALLEL connections; every CHECK_EVERY inputs, an audit and a normal request.
    const CHECK_EVERY = 500
    let next = 0
    let finished = 0
    let checking: Promise<void> = Promise.resolve()
    const worker = async (): Promise<void> => {
      while (next < inputs.length && failures.length === 0) {
        const input = inputs[next++]!
        const result = await exchange(lb.port, input.bytes, input.keepOpen)
        slowest = Math.max(slowest, result.ms)
        if (result.hung) fail(`still open after ${BOUND_MS} ms`, input)
        else {
          const parsed = responses(result.data, input.id)
          for (const s of parsed.statuses) statuses.set(s, (statuses.get(s) ?? 0) + 1)
          for (const m of result.data.matchAll(/x-tether-error: (\w+)/gi)) codes.set(m[1]!, (codes.get(m[1]!) ?? 0) + 1)
          if (parsed.problem !== null) fail(`${parsed.problem}\n    got: ${JSON.stringify(result.data.slice(0, 400))}`, input)
        }
        if (++finished % CHECK_EVERY === 0) {
          const at = finished
          checking = checking.then(async () => {
            audit()
            const check = await get(`${lb.url}/fz/check`)
            if (check.status !== 200) failures.push(`after ${at} inputs a normal request got ${check.status} (seed ${SEED})`)
          })
        }
      }
    }
    await Promise.all(Array.from({ length: PARALLEL }, worker))
    await checking
    // Requests still on their way to the upstream when the last answer came: give them a moment.
    await new Promise((resolve) => setTimeout(resolve, 200))
    audit()
    t.same(failures, [], 'no hang, invalid answer, smuggled request or outage')
    t.comment(`${runs} inputs in ${Date.now() - started} ms (slowest connection ${slowest} ms); statuses ${JSON.stringify(Object.fromEntries([...statuses].sort((a, b) => a[0] - b[0])))}; codes ${JSON.stringify(Object.fromEntries(codes))}; the upstream rejected ${upstreamRejected} forwarded requests as malformed`)
    t.equal(upstreamRejected, 0, `the upstream never saw a malformed request from the balancer ${rejectedSamples.join(' | ')}`)
    // Each engine's run answers for its own rejections.
    upstreamRejected = 0
    rejectedSamples.length = 0
  })
}
