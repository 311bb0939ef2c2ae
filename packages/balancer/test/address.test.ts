// Client addresses: normalisation, trusted-proxy matching (IPv4, IPv6, mapped), and the
// X-Forwarded-For walk that finds the real client behind trusted proxies only.
import t from 'tap'
import { normalizeAddress, TrustedProxies } from '../src/index.js'
import { ipv6Groups, parseCidr } from '../src/net/address.js'

t.test('normalizeAddress', async (t) => {
  const cases: Array<[string, string]> = [
    ['127.0.0.1', '127.0.0.1'], ['::ffff:10.1.2.3', '10.1.2.3'], ['::FFFF:10.1.2.3', '10.1.2.3'],
    ['2001:DB8::1', '2001:db8::1'], ['::1', '::1'], ['::ffff:abcd', '::ffff:abcd']
  ]
  for (const [input, want] of cases) t.equal(normalizeAddress(input), want, input)
})

t.test('ipv6Groups and parseCidr', async (t) => {
  t.same(ipv6Groups('2001:db8::1'), [0x2001, 0xdb8, 0, 0, 0, 0, 0, 1])
  t.same(ipv6Groups('::ffff:1.2.3.4'), [0, 0, 0, 0, 0, 0xffff, 0x0102, 0x0304])
  t.equal(ipv6Groups('1.2.3.4'), undefined)
  t.same(parseCidr('10.0.0.0/8'), { address: '10.0.0.0', prefix: 8, family: 'ipv4' })
  t.same(parseCidr('fd00::/8'), { address: 'fd00::', prefix: 8, family: 'ipv6' })
  t.same(parseCidr('::1'), { address: '::1', prefix: 128, family: 'ipv6' })
  for (const bad of ['10.0.0.0/33', 'fd00::/129', 'nope', '10.0.0.0/x', '']) t.equal(parseCidr(bad), undefined, bad)
})

t.test('TrustedProxies.has', async (t) => {
  const trusted = new TrustedProxies(['10.0.0.0/8', '192.168.1.7', 'fd00::/8', '::1'])
  const cases: Array<[string, boolean]> = [
    ['10.200.3.4', true], ['11.0.0.1', false], ['192.168.1.7', true], ['192.168.1.8', false],
    ['::ffff:10.9.9.9', true], ['fd12::5', true], ['fe80::1', false], ['::1', true], ['garbage', false]
  ]
  for (const [address, want] of cases) t.equal(trusted.has(address), want, address)
  t.equal(new TrustedProxies([]).has('127.0.0.1'), false, 'nothing is trusted by default')
})

t.test('clientAddress walks X-Forwarded-For from the right over trusted hops only', async (t) => {
  const trusted = new TrustedProxies(['10.0.0.0/8'])
  const cases: Array<[string, string, string]> = [
    ['10.0.0.1', '203.0.113.5', '203.0.113.5'],
    ['10.0.0.1', '203.0.113.5, 10.0.0.2', '203.0.113.5'],
    ['10.0.0.1', '6.6.6.6, 203.0.113.5, 10.0.0.2', '203.0.113.5'],
    ['10.0.0.1', '10.0.0.3, 10.0.0.2', '10.0.0.3'],
    ['10.0.0.1', 'garbage, 10.0.0.2', '10.0.0.2'],
    ['10.0.0.1', '2001:db8::7', '2001:db8::7'],
    ['10.0.0.1', '', '10.0.0.1']
  ]
  for (const [peer, xff, want] of cases) t.equal(trusted.clientAddress(peer, xff), want, `${peer} <- ${xff}`)
})
