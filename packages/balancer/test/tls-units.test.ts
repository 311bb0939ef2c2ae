// The deterministic parts of the TLS frontend, table-driven: the h2 → HTTP/1.1 header
// translation, the redirect's Location, and the ticket keys' derivation.
import t from 'tap'
import { h1HeadersOf } from '../src/frontend/h2.js'
import { httpsLocation } from '../src/frontend/redirect.js'
import { TICKET_KEY_BYTES, TicketKeys, ticketKey } from '../src/frontend/tickets.js'

t.test('h2 headers as HTTP/1.1 headers', async (t) => {
  const cases: Array<[string, string[], boolean, string[]]> = [
    ['pseudo-headers out, :authority as Host', [':method', 'GET', ':scheme', 'https', ':authority', 'shop.example', ':path', '/'], false, ['host', 'shop.example']],
    ['a Host header wins over :authority', [':authority', 'a.example', 'host', 'b.example'], false, ['host', 'b.example']],
    ['cookie crumbs joined in order', [':authority', 'x', 'cookie', 'a=1', 'accept', '*/*', 'cookie', 'b=2', 'cookie', 'c=3'], false, ['cookie', 'a=1; b=2; c=3', 'accept', '*/*', 'host', 'x']],
    ['a body without length is chunked', [':method', 'POST', ':authority', 'x'], true, ['host', 'x', 'transfer-encoding', 'chunked']],
    ['a body with length keeps it', [':method', 'POST', ':authority', 'x', 'content-length', '5'], true, ['content-length', '5', 'host', 'x']],
    ['no :authority, no Host', [':method', 'GET', ':path', '/'], false, []]
  ]
  for (const [name, raw, body, want] of cases) t.same(h1HeadersOf(raw, body), want, name)
})

t.test('the redirect Location', async (t) => {
  const cases: Array<[string | undefined, string | undefined, number, string | undefined]> = [
    ['shop.example', '/cart?x=1', 443, 'https://shop.example/cart?x=1'],
    ['shop.example:80', '/', 443, 'https://shop.example/'],
    ['shop.example', '/', 8443, 'https://shop.example:8443/'],
    ['[::1]:8080', '/a', 443, 'https://[::1]/a'],
    ['10.0.0.1', 'http://evil.example/x', 443, 'https://10.0.0.1/'],
    [undefined, '/', 443, undefined],
    ['evil.example/path', '/', 443, undefined],
    ['a b', '/', 443, undefined]
  ]
  for (const [host, url, port, want] of cases) t.equal(httpsLocation(host, url, port), want, `${String(host)} ${String(url)}`)
})

t.test('ticket keys: derived from the secret and the period, the same in every process', async (t) => {
  const secret = Buffer.alloc(32, 7)
  t.equal(ticketKey(secret, 1).length, TICKET_KEY_BYTES)
  t.same(ticketKey(secret, 1), ticketKey(Buffer.alloc(32, 7), 1), 'same secret, same period: same key')
  t.notSame(ticketKey(secret, 1), ticketKey(secret, 2), 'the next period has another key')
  t.notSame(ticketKey(secret, 1), ticketKey(Buffer.alloc(32, 8), 1), 'another secret, another key')
  const applied: Buffer[] = []
  const keys = new TicketKeys(secret, 3_600_000, (k) => applied.push(k))
  keys.start()
  keys.stop()
  t.same(applied, [ticketKey(secret, Math.floor(Date.now() / 3_600_000))], 'start() applies the current key')
  t.equal(new TicketKeys(undefined, 1000, () => {}).secret.length, 32, 'a random secret by default')
})
