// The h1 engine's response parser, fed every split of the bytes: framing (Content-Length,
// chunked, close-delimited, no-body statuses, 1xx), keep-alive decisions, and strictness on
// what a proxy must refuse (smuggling-prone or malformed responses).
import t from 'tap'
import { ResponseParser } from '../src/engines/h1/parser.js'

interface Parsed {
  status: number
  headers: string[]
  body: string
  complete: boolean
  failed: string
  keepAlive: boolean
  consumed: number
  upgraded: boolean
}

/** Feed `raw` in pieces cut at `cuts`; then EOF when `eof`. */
function parse (raw: string, opts: { head?: boolean, upgrade?: boolean, cuts?: number[], eof?: boolean } = {}): Parsed {
  const out: Parsed = { status: 0, headers: [], body: '', complete: false, failed: '', keepAlive: false, consumed: 0, upgraded: false }
  const parser = new ResponseParser({
    onHead (status, _reason, headers) { out.status = status; out.headers = headers },
    onBody (chunk) { out.body += chunk.toString('latin1') },
    onComplete () { out.complete = true }
  })
  parser.begin(opts.head ?? false, opts.upgrade ?? false)
  const bytes = Buffer.from(raw, 'latin1')
  const cuts = [0, ...(opts.cuts ?? []), bytes.length]
  for (let i = 0; i + 1 < cuts.length; i++) {
    const piece = bytes.subarray(cuts[i], cuts[i + 1])
    const used = parser.execute(piece)
    out.consumed += used
    if (parser.failed || parser.complete || parser.upgraded) break
  }
  if (opts.eof === true && !parser.failed && !parser.complete) parser.finish()
  out.complete = out.complete || parser.complete
  out.failed = parser.failed ? parser.error : ''
  out.keepAlive = parser.keepAlive
  out.upgraded = parser.upgraded
  return out
}

const CL = 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello'
const CHUNKED = 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: v\r\n\r\n'

t.test('well-formed responses', async (t) => {
  const cases: Array<[string, string, Partial<Parsed>, { head?: boolean, eof?: boolean }?]> = [
    ['content-length', CL, { status: 200, body: 'hello', complete: true, keepAlive: true }],
    ['chunked with extension and trailer', CHUNKED, { status: 200, body: 'hello world', complete: true, keepAlive: true }],
    ['zero length', 'HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n', { body: '', complete: true, keepAlive: true }],
    ['204 has no body', 'HTTP/1.1 204 No Content\r\nX: 1\r\n\r\n', { status: 204, complete: true, keepAlive: true }],
    ['304 ignores its Content-Length', 'HTTP/1.1 304 Not Modified\r\nContent-Length: 99\r\n\r\n', { status: 304, complete: true, body: '' }],
    ['HEAD ignores Content-Length', 'HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n', { complete: true, body: '', keepAlive: true }, { head: true }],
    ['close-delimited completes at EOF', 'HTTP/1.1 200 OK\r\n\r\nuntil close', { body: 'until close', complete: true, keepAlive: false }, { eof: true }],
    ['100 Continue skipped', 'HTTP/1.1 100 Continue\r\n\r\n' + CL, { status: 200, body: 'hello', complete: true }],
    ['103 Early Hints skipped', 'HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n' + CL, { status: 200, body: 'hello' }],
    ['Connection: close', 'HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\nx', { complete: true, keepAlive: false }],
    ['HTTP/1.0 defaults to close', 'HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nx', { complete: true, keepAlive: false }],
    ['HTTP/1.0 keep-alive', 'HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\nx', { keepAlive: true }],
    ['duplicate equal Content-Length', 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok', { body: 'ok', complete: true }],
    ['folded equal Content-Length', 'HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\n\r\nok', { body: 'ok', complete: true }],
    ['no reason phrase', 'HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n', { status: 200, complete: true }],
    ['TE wins over CL, connection not reused', 'HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n', { body: 'ok', complete: true, keepAlive: false }],
    ['unknown TE: read until close', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nzzz', { body: 'zzz', complete: true, keepAlive: false }, { eof: true }]
  ]
  for (const [name, raw, want, opts] of cases) {
    const got = parse(raw, opts ?? {})
    t.match(got, { failed: '', ...want }, name)
  }
})

t.test('every split of the bytes gives the same result', async (t) => {
  const problems: string[] = []
  for (const raw of [CL, CHUNKED, 'HTTP/1.1 100 Continue\r\n\r\n' + CHUNKED]) {
    const whole = parse(raw)
    for (let i = 1; i < raw.length; i++) {
      for (const j of [i + 1, i + 7]) {
        const cuts = j < raw.length ? [i, j] : [i]
        const got = parse(raw, { cuts })
        if (got.body !== whole.body || got.complete !== whole.complete || got.status !== whole.status || got.failed !== '') {
          problems.push(`cut at ${cuts.join(',')}: ${JSON.stringify(got)}`)
        }
      }
    }
  }
  t.same(problems, [], 'all splits agree')
})

t.test('headers are reported as received, values trimmed', async (t) => {
  const got = parse('HTTP/1.1 200 OK\r\nX-A:  spaced \t\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nContent-Length: 0\r\n\r\n')
  t.same(got.headers, ['X-A', 'spaced', 'Set-Cookie', 'a=1', 'Set-Cookie', 'b=2', 'Content-Length', '0'])
})

t.test('bytes after a complete response are not consumed', async (t) => {
  const got = parse(CL + 'HTTP/1.1 200 OK\r\n')
  t.equal(got.consumed, CL.length)
  t.ok(got.complete)
})

t.test('upgrade: 101 ends parsing, leftover bytes stay', async (t) => {
  const head = 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n'
  const got = parse(head + '\x81\x02hi', { upgrade: true })
  t.ok(got.upgraded)
  t.equal(got.consumed, head.length)
  t.equal(got.status, 101)
  t.match(parse(head), { failed: 'unexpected 101 response' }, 'a 101 nobody asked for is an error')
})

t.test('malformed and ambiguous responses are refused', async (t) => {
  const cases: Array<[string, string, RegExp, { eof?: boolean }?]> = [
    ['not HTTP', 'HTTP/2 200 OK\r\n\r\n', /status line/],
    ['bad status', 'HTTP/1.1 2x0 OK\r\n\r\n', /status line/],
    ['status 600', 'HTTP/1.1 600 Odd\r\n\r\n', /status line/],
    ['conflicting Content-Length', 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok', /Content-Length/],
    ['folded conflicting Content-Length', 'HTTP/1.1 200 OK\r\nContent-Length: 2, 3\r\n\r\nok', /Content-Length/],
    ['negative Content-Length', 'HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n', /Content-Length/],
    ['Content-Length with junk', 'HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n', /Content-Length/],
    ['obsolete line folding', 'HTTP/1.1 200 OK\r\nX-A: 1\r\n continued\r\n\r\n', /folding/],
    ['bare LF in a header', 'HTTP/1.1 200 OK\r\nX-A: 1\nContent-Length: 0\r\n\r\n', /bare LF/],
    ['header without colon', 'HTTP/1.1 200 OK\r\nno colon here\r\n\r\n', /header line/],
    ['bad chunk size', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n', /chunk size/],
    ['huge chunk size', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffff\r\n', /too large/],
    ['chunk without CRLF', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nokXX', /CRLF/],
    ['head too large', 'HTTP/1.1 200 OK\r\n' + 'X: ' + 'y'.repeat(70_000), /too large/]
  ]
  for (const [name, raw, reason, opts] of cases) {
    const got = parse(raw, opts ?? {})
    t.match(got.failed, reason, name)
    t.equal(got.keepAlive, false, `${name}: connection not reused`)
  }
})

t.test('a cut-short body is not complete at EOF', async (t) => {
  const got = parse('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort', { eof: true })
  t.equal(got.complete, false)
  t.equal(got.body, 'short')
})
