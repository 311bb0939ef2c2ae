/**
 * Client addresses: normalising what sockets and X-Forwarded-For report, deciding which peers
 * are trusted proxies, and the key the ip-hash algorithm hashes.
 */
import { BlockList, isIP } from 'node:net'

const MAPPED_V4 = '::ffff:'

/**
 * The canonical text of an address: IPv4-mapped IPv6 (`::ffff:10.0.0.1`, what a dual-stack
 * socket reports for an IPv4 peer) becomes plain IPv4, so that one client has one address.
 *
 * @example
 * ```ts
 * normalizeAddress('::ffff:127.0.0.1') // '127.0.0.1'
 * normalizeAddress('2001:DB8::1')      // '2001:db8::1'
 * ```
 */
export function normalizeAddress (address: string): string {
  if (address.length > MAPPED_V4.length && address.charCodeAt(0) === 58 /* : */) {
    const lower = address.toLowerCase()
    if (lower.startsWith(MAPPED_V4) && isIP(lower.slice(MAPPED_V4.length)) === 4) return lower.slice(MAPPED_V4.length)
    return lower
  }
  // Most peers are IPv4: no allocation on that path.
  return address.indexOf(':') === -1 ? address : address.toLowerCase()
}

/**
 * The eight 16-bit groups of an IPv6 address, or `undefined` when it is not one.
 *
 * @example
 * ```ts
 * ipv6Groups('2001:db8::1') // [0x2001, 0xdb8, 0, 0, 0, 0, 0, 1]
 * ```
 */
export function ipv6Groups (address: string): number[] | undefined {
  const zone = address.indexOf('%')
  const text = zone === -1 ? address : address.slice(0, zone)
  if (isIP(text) !== 6) return undefined
  const halves = text.split('::')
  const parse = (part: string): number[] => {
    if (part === '') return []
    const out: number[] = []
    for (const group of part.split(':')) {
      if (group.includes('.')) {
        const [a = 0, b = 0, c = 0, d = 0] = group.split('.').map(Number)
        out.push((a << 8) | b, (c << 8) | d)
      } else {
        out.push(parseInt(group, 16))
      }
    }
    return out
  }
  const head = parse(halves[0] ?? '')
  if (halves.length === 1) return head
  const tail = parse(halves[1] ?? '')
  return [...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail]
}

/**
 * What ip-hash hashes for a client: the IPv4 address, or the /64 prefix of an IPv6 address.
 * The /64 because IPv6 clients rotate the low 64 bits (privacy addresses, RFC 8981) while
 * their network prefix stays put; hashing the full address would move them between nodes.
 *
 * @example
 * ```ts
 * hashKeyForAddress('203.0.113.9')           // '203.0.113.9'
 * hashKeyForAddress('2001:db8:1:2:aa::1')    // '2001:db8:1:2::/64'
 * ```
 */
export function hashKeyForAddress (address: string): string {
  if (address.indexOf(':') === -1) return address
  const groups = ipv6Groups(address)
  if (groups === undefined) return address
  return `${groups.slice(0, 4).map((g) => g.toString(16)).join(':')}::/64`
}

/**
 * Parse an IP or CIDR (`10.0.0.0/8`, `::1`, `fd00::/8`); `undefined` when invalid.
 *
 * @example
 * ```ts
 * parseCidr('10.0.0.0/8') // { address: '10.0.0.0', prefix: 8, family: 'ipv4' }
 * ```
 */
export function parseCidr (text: string): { address: string, prefix: number, family: 'ipv4' | 'ipv6' } | undefined {
  const slash = text.indexOf('/')
  const address = normalizeAddress(slash === -1 ? text : text.slice(0, slash))
  const version = isIP(address)
  if (version === 0) return undefined
  const max = version === 4 ? 32 : 128
  let prefix = max
  if (slash !== -1) {
    const raw = text.slice(slash + 1)
    if (!/^\d{1,3}$/.test(raw)) return undefined
    prefix = Number(raw)
    if (prefix > max) return undefined
  }
  return { address, prefix, family: version === 4 ? 'ipv4' : 'ipv6' }
}

/**
 * The peers whose X-Forwarded-* headers the balancer believes.
 *
 * @example
 * ```ts
 * const trusted = new TrustedProxies(['10.0.0.0/8', '::1'])
 * trusted.has('10.1.2.3') // true
 * trusted.has('::ffff:10.1.2.3') // true
 * ```
 */
export class TrustedProxies {
  readonly #list = new BlockList()
  /** True when no proxy is trusted: X-Forwarded-* from clients is then always replaced. */
  readonly empty: boolean

  /** @param cidrs IPs and CIDRs, already validated by the config loader. */
  constructor (cidrs: readonly string[]) {
    for (const cidr of cidrs) {
      const parsed = parseCidr(cidr)
      if (parsed !== undefined) this.#list.addSubnet(parsed.address, parsed.prefix, parsed.family)
    }
    this.empty = cidrs.length === 0
  }

  /** Whether `address` (any textual form) is a trusted proxy. */
  has (address: string): boolean {
    if (this.empty) return false
    const normal = normalizeAddress(address)
    const version = isIP(normal)
    if (version === 0) return false
    return this.#list.check(normal, version === 4 ? 'ipv4' : 'ipv6')
  }

  /**
   * The client's address when the peer is a trusted proxy: walk X-Forwarded-For from the right,
   * skipping trusted hops, and take the first address that is not trusted (nginx's
   * `real_ip_recursive on`). A malformed entry stops the walk at the last good hop, so a client
   * cannot inject a key by sending garbage.
   */
  clientAddress (peer: string, forwardedFor: string): string {
    let client = peer
    const hops = forwardedFor.split(',')
    for (let i = hops.length - 1; i >= 0; i--) {
      const hop = normalizeAddress((hops[i] ?? '').trim())
      if (isIP(hop) === 0) return client
      client = hop
      if (!this.has(hop)) return hop
    }
    return client
  }
}
