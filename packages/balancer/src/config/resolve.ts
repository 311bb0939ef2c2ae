/**
 * Validation and defaults: turns a {@link BalancerConfig} (from a file, flags or code) into a
 * {@link ResolvedConfig} in which every field is present and every duration is milliseconds.
 * All problems are collected, each naming its field, value and file, then thrown together.
 */
import { randomBytes } from 'node:crypto'
import { TetherBalancerError, formatIssue, type ConfigIssue } from '../errors.js'
import { parseCidr } from '../net/address.js'
import type { AlgorithmName, BalancerConfig, EngineName, LogLevel, NodeState } from './types.js'

/** A listen address after parsing. `host` undefined means every interface. */
export interface ResolvedListen {
  readonly host: string | undefined
  readonly port: number
}

/**
 * One upstream node, resolved.
 *
 * @example
 * ```ts
 * const [first]: readonly ResolvedUpstream[] = resolveConfig({ upstreams: ['http://[::1]:3001'] }).upstreams
 * first?.host // '::1'
 * ```
 */
export interface ResolvedUpstream {
  readonly name: string
  readonly url: string
  /** Host for `net.connect` (IPv6 without brackets). */
  readonly host: string
  readonly port: number
  /** `host:port` as it appears in a Host header. */
  readonly authority: string
  readonly weight: number
  readonly maxFails: number
  readonly failTimeout: number
  readonly backup: boolean
  readonly state: NodeState
}

export interface ResolvedSticky {
  readonly enabled: boolean
  readonly cookie: string
  /** First signs, all verify. Never empty. */
  readonly secrets: readonly string[]
  /** True when no secret was configured and one was made up for this process. */
  readonly secretGenerated: boolean
  readonly maxAgeSeconds: number | null
  readonly secure: boolean
  readonly sameSite: 'Strict' | 'Lax' | 'None'
  readonly domain: string | null
  readonly path: string
}

export interface ResolvedHealthCheck {
  readonly enabled: boolean
  readonly path: string
  readonly interval: number
  readonly timeout: number
  readonly rise: number
  readonly fall: number
}

export interface ResolvedTimeouts {
  readonly clientHeaders: number
  readonly clientRequest: number
  readonly clientKeepAlive: number
  readonly connect: number
  readonly response: number
  readonly shutdown: number
}

export interface ResolvedAdmin {
  readonly listen: ResolvedListen
  readonly token: string | null
  readonly allowedHosts: readonly string[]
}

/**
 * The configuration with every default applied; what the balancer runs on.
 *
 * @example
 * ```ts
 * const config: ResolvedConfig = resolveConfig({ upstreams: ['http://127.0.0.1:3001'] })
 * config.timeouts.connect // 3000
 * ```
 */
export interface ResolvedConfig {
  readonly listen: ResolvedListen
  readonly upstreams: readonly ResolvedUpstream[]
  readonly algorithm: AlgorithmName
  readonly engine: EngineName
  readonly sticky: ResolvedSticky
  readonly healthCheck: ResolvedHealthCheck
  readonly timeouts: ResolvedTimeouts
  readonly keepAlive: { readonly maxIdle: number, readonly timeout: number }
  readonly retries: number
  readonly trustedProxies: readonly string[]
  readonly admin: ResolvedAdmin | null
  readonly log: { readonly level: LogLevel, readonly accessLog: boolean }
}

/**
 * Every algorithm name, in the order the docs list them.
 *
 * @example
 * ```ts
 * ALGORITHMS.includes('ip-hash') // true
 * ```
 */
export const ALGORITHMS: readonly AlgorithmName[] = ['weighted-round-robin', 'least-connections', 'ip-hash']
/**
 * Every engine name; the first is the default.
 *
 * @example
 * ```ts
 * ENGINES[0] // 'h1'
 * ```
 */
export const ENGINES: readonly EngineName[] = ['h1', 'undici', 'http-proxy']
const STATES: readonly NodeState[] = ['active', 'drain', 'maint']
const LEVELS: readonly LogLevel[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']
const SAME_SITE = ['Strict', 'Lax', 'None'] as const

/** Node names end up in a header, metric labels and URLs: keep them to a safe alphabet. */
export const NODE_NAME = /^[A-Za-z0-9][A-Za-z0-9._:[\]@-]{0,99}$/
// RFC 6265 cookie-name is an RFC 7230 token.
const COOKIE_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,64}$/
const DURATION = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h)?$/
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }
const MIN_SECRET_LENGTH = 16

/**
 * Parse a duration: milliseconds as a number, or a string with a unit (`ms`, `s`, `m`, `h`).
 * Returns `undefined` when the value is not a duration.
 *
 * @example
 * ```ts
 * parseDuration('1.5s') // 1500
 * parseDuration(250)    // 250
 * ```
 */
export function parseDuration (value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) && value >= 0 ? Math.round(value) : undefined
  if (typeof value !== 'string') return undefined
  const m = DURATION.exec(value.trim())
  if (m === null) return undefined
  return Math.round(Number(m[1]) * (UNIT_MS[m[2] ?? 'ms'] ?? 1))
}

/**
 * Parse a listen address. A bare port gets `defaultHost`.
 *
 * @example
 * ```ts
 * parseListen('[::1]:8080', undefined) // { host: '::1', port: 8080 }
 * parseListen(9090, '127.0.0.1')       // { host: '127.0.0.1', port: 9090 }
 * ```
 */
export function parseListen (value: unknown, defaultHost: string | undefined): ResolvedListen | undefined {
  const port = (text: string): number | undefined => /^\d{1,5}$/.test(text) && Number(text) <= 65535 ? Number(text) : undefined
  if (typeof value === 'number') {
    return Number.isInteger(value) && value >= 0 && value <= 65535 ? { host: defaultHost, port: value } : undefined
  }
  if (typeof value !== 'string' || value === '') return undefined
  const bare = port(value)
  if (bare !== undefined) return { host: defaultHost, port: bare }
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d+)$/.exec(value)
  if (m === null) return undefined
  const p = port(m[3] ?? '')
  if (p === undefined) return undefined
  return { host: m[1] ?? m[2], port: p }
}

/** Collects issues while walking a config, so that all of them are reported at once. */
class Checker {
  readonly issues: ConfigIssue[] = []
  constructor (readonly file: string | undefined) {}

  fail (field: string, value: unknown, problem: string): undefined {
    this.issues.push({ field, value, problem, file: this.file })
    return undefined
  }

  object (field: string, value: unknown, known: readonly string[]): Record<string, unknown> | undefined {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) return this.fail(field === '' ? '(configuration)' : field, value, 'must be an object')
    const record = value as Record<string, unknown>
    for (const key of Object.keys(record)) {
      if (!known.includes(key)) this.fail(field === '' ? key : `${field}.${key}`, record[key], `is not a known field (known: ${known.join(', ')})`)
    }
    return record
  }

  int (field: string, value: unknown, min: number, max: number, fallback: number): number {
    if (value === undefined) return fallback
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
      this.fail(field, value, `must be an integer from ${min} to ${max}`)
      return fallback
    }
    return value
  }

  bool (field: string, value: unknown, fallback: boolean): boolean {
    if (value === undefined) return fallback
    if (typeof value !== 'boolean') { this.fail(field, value, 'must be true or false'); return fallback }
    return value
  }

  duration (field: string, value: unknown, fallback: number, min = 0): number {
    if (value === undefined) return fallback
    const ms = parseDuration(value)
    if (ms === undefined || ms < min) {
      this.fail(field, value, `must be a duration such as 500, "500ms", "10s" or "1m"${min > 0 ? ` (at least ${min} ms)` : ''}`)
      return fallback
    }
    return ms
  }

  oneOf<T extends string> (field: string, value: unknown, allowed: readonly T[], fallback: T): T {
    if (value === undefined) return fallback
    if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
      this.fail(field, value, `must be one of ${allowed.join(', ')}`)
      return fallback
    }
    return value as T
  }

  string (field: string, value: unknown, fallback: string): string {
    if (value === undefined) return fallback
    if (typeof value !== 'string' || value === '') { this.fail(field, value, 'must be a non-empty string'); return fallback }
    return value
  }
}

/**
 * Options for {@link resolveConfig}.
 *
 * @example
 * ```ts
 * resolveConfig(raw, { file: 'lb.yaml' } satisfies ResolveOptions)
 * ```
 */
export interface ResolveOptions {
  /** The file the config came from, named in every issue. */
  file?: string
  /** Sticky secret to reuse when none is configured (keeps cookies valid across a reload). */
  generatedSecret?: string
}

/**
 * Validate a configuration and fill in every default. Throws one
 * `TETHER_ERR_CONFIG_INVALID` error carrying every issue found.
 *
 * @example
 * ```ts
 * const config = resolveConfig({ upstreams: ['http://127.0.0.1:3001'] })
 * config.upstreams[0].name // '127.0.0.1:3001'
 * ```
 */
export function resolveConfig (input: unknown, options: ResolveOptions = {}): ResolvedConfig {
  const c = new Checker(options.file)
  const root = c.object('', input, [
    'listen', 'upstreams', 'algorithm', 'engine', 'sticky', 'healthCheck', 'timeouts', 'keepAlive',
    'retries', 'trustedProxies', 'admin', 'log'
  ]) ?? {}
  const cfg = root as Partial<Record<keyof BalancerConfig, unknown>>

  const listen = cfg.listen === undefined ? { host: undefined, port: 8080 } : parseListen(cfg.listen, undefined)
  if (listen === undefined) c.fail('listen', cfg.listen, 'must be a port or "host:port"')

  const upstreams = resolveUpstreams(c, cfg.upstreams)
  const sticky = resolveSticky(c, cfg.sticky, options.generatedSecret)
  const healthCheck = resolveHealth(c, cfg.healthCheck)
  const timeouts = resolveTimeouts(c, cfg.timeouts)

  const ka = cfg.keepAlive === undefined ? {} : c.object('keepAlive', cfg.keepAlive, ['maxIdle', 'timeout']) ?? {}
  const keepAlive = {
    maxIdle: c.int('keepAlive.maxIdle', ka.maxIdle, 0, 100_000, 128),
    timeout: c.duration('keepAlive.timeout', ka.timeout, 4000, 1)
  }

  const trustedProxies: string[] = []
  if (cfg.trustedProxies !== undefined) {
    if (!Array.isArray(cfg.trustedProxies)) {
      c.fail('trustedProxies', cfg.trustedProxies, 'must be a list of IP addresses or CIDRs')
    } else {
      cfg.trustedProxies.forEach((entry: unknown, i) => {
        if (typeof entry !== 'string' || parseCidr(entry) === undefined) c.fail(`trustedProxies[${i}]`, entry, 'must be an IP address or CIDR such as 10.0.0.0/8')
        else trustedProxies.push(entry)
      })
    }
  }

  let admin: ResolvedAdmin | null = null
  if (cfg.admin !== undefined && cfg.admin !== false) {
    const a = c.object('admin', cfg.admin, ['listen', 'token', 'allowedHosts'])
    if (a !== undefined) {
      const adminListen = parseListen(a.listen, '127.0.0.1')
      if (adminListen === undefined) c.fail('admin.listen', a.listen, 'must be a port or "host:port"')
      const token = a.token === undefined ? null : c.string('admin.token', a.token, '')
      if (token !== null && token.length > 0 && token.length < MIN_SECRET_LENGTH) c.fail('admin.token', '<hidden>', `must be at least ${MIN_SECRET_LENGTH} characters`)
      const allowedHosts: string[] = []
      if (a.allowedHosts !== undefined) {
        if (!Array.isArray(a.allowedHosts) || !a.allowedHosts.every((h: unknown) => typeof h === 'string' && h !== '')) {
          c.fail('admin.allowedHosts', a.allowedHosts, 'must be a list of host names')
        } else {
          allowedHosts.push(...(a.allowedHosts as string[]).map((h) => h.toLowerCase()))
        }
      }
      admin = { listen: adminListen ?? { host: '127.0.0.1', port: 0 }, token: token === '' ? null : token, allowedHosts }
    }
  }

  const lg = cfg.log === undefined ? {} : c.object('log', cfg.log, ['level', 'accessLog']) ?? {}
  const log = { level: c.oneOf('log.level', lg.level, LEVELS, 'info'), accessLog: c.bool('log.accessLog', lg.accessLog, false) }

  const resolved: ResolvedConfig = {
    listen: listen ?? { host: undefined, port: 8080 },
    upstreams,
    algorithm: c.oneOf('algorithm', cfg.algorithm, ALGORITHMS, 'weighted-round-robin'),
    engine: c.oneOf('engine', cfg.engine, ENGINES, 'h1'),
    sticky,
    healthCheck,
    timeouts,
    keepAlive,
    retries: c.int('retries', cfg.retries, 0, 10, 2),
    trustedProxies,
    admin,
    log
  }
  if (c.issues.length > 0) {
    const lines = c.issues.map(formatIssue)
    throw new TetherBalancerError('TETHER_ERR_CONFIG_INVALID', `invalid configuration:\n  ${lines.join('\n  ')}`, { issues: c.issues })
  }
  return resolved
}

function resolveUpstreams (c: Checker, value: unknown): ResolvedUpstream[] {
  if (!Array.isArray(value) || value.length === 0) {
    c.fail('upstreams', value, 'must be a non-empty list of upstream URLs or objects')
    return []
  }
  const out: ResolvedUpstream[] = []
  const names = new Set<string>()
  value.forEach((entry: unknown, i) => {
    const field = `upstreams[${i}]`
    const raw = typeof entry === 'string' ? { url: entry } : c.object(field, entry, ['url', 'name', 'weight', 'maxFails', 'failTimeout', 'backup', 'state'])
    if (raw === undefined) return
    let url: URL | undefined
    if (typeof raw.url !== 'string') {
      c.fail(`${field}.url`, raw.url, 'must be a URL such as http://127.0.0.1:3001')
    } else {
      try { url = new URL(raw.url) } catch { c.fail(`${field}.url`, raw.url, 'must be a URL such as http://127.0.0.1:3001') }
      if (url !== undefined) {
        if (url.protocol !== 'http:') { c.fail(`${field}.url`, raw.url, 'must use http:// (TLS to upstreams is not supported)'); url = undefined } else if ((url.pathname !== '/' && url.pathname !== '') || url.search !== '' || url.hash !== '' || url.username !== '' || url.password !== '') {
          c.fail(`${field}.url`, raw.url, 'must be just scheme, host and port (no path, query or credentials)')
          url = undefined
        }
      }
    }
    const port = url === undefined ? 0 : Number(url.port === '' ? 80 : url.port)
    const hostname = url?.hostname ?? ''
    const host = hostname.startsWith('[') ? hostname.slice(1, -1) : hostname
    const authority = `${hostname}:${port}`
    let name = authority
    if (raw.name !== undefined) {
      if (typeof raw.name !== 'string' || !NODE_NAME.test(raw.name)) c.fail(`${field}.name`, raw.name, 'must be 1-100 characters of letters, digits and . _ : [ ] @ -, starting with a letter or digit')
      else name = raw.name
    }
    if (url !== undefined && names.has(name)) c.fail(`${field}.name`, raw.name ?? name, 'must be unique (two upstreams have this name; give one a name)')
    names.add(name)
    const upstream: ResolvedUpstream = {
      name,
      url: `http://${authority}`,
      host,
      port,
      authority,
      weight: c.int(`${field}.weight`, raw.weight, 1, 10_000, 1),
      maxFails: c.int(`${field}.maxFails`, raw.maxFails, 0, 1000, 1),
      failTimeout: c.duration(`${field}.failTimeout`, raw.failTimeout, 10_000, 1),
      backup: c.bool(`${field}.backup`, raw.backup, false),
      state: c.oneOf(`${field}.state`, raw.state, STATES, 'active')
    }
    if (url !== undefined) out.push(upstream)
  })
  return out
}

function resolveSticky (c: Checker, value: unknown, generatedSecret: string | undefined): ResolvedSticky {
  const enabled = value === undefined ? true : typeof value === 'boolean' ? value : undefined
  const s = typeof value === 'object' ? c.object('sticky', value, ['enabled', 'cookie', 'secret', 'maxAge', 'secure', 'sameSite', 'domain', 'path']) ?? {} : {}
  if (value !== undefined && typeof value !== 'boolean' && typeof value !== 'object') c.fail('sticky', value, 'must be true, false or an object')
  const cookie = c.string('sticky.cookie', s.cookie, 'tether_node')
  if (!COOKIE_NAME.test(cookie)) c.fail('sticky.cookie', s.cookie, 'must be a cookie name (letters, digits and !#$%&\'*+-.^_`|~)')
  let secrets: string[] = []
  if (s.secret !== undefined) {
    const list: unknown[] = Array.isArray(s.secret) ? s.secret : [s.secret]
    if (list.length === 0 || !list.every((x) => typeof x === 'string' && x.length >= MIN_SECRET_LENGTH)) {
      // The value is a secret: never echo it.
      c.fail('sticky.secret', '<hidden>', `must be a string (or list of strings) of at least ${MIN_SECRET_LENGTH} characters`)
    } else {
      secrets = list as string[]
    }
  }
  const secretGenerated = secrets.length === 0
  if (secretGenerated) secrets = [generatedSecret ?? randomBytes(32).toString('base64url')]
  const sameSite = c.oneOf('sticky.sameSite', s.sameSite, SAME_SITE, 'Lax')
  const secure = c.bool('sticky.secure', s.secure, false)
  if (sameSite === 'None' && !secure) c.fail('sticky.sameSite', s.sameSite, 'can be "None" only with sticky.secure: true (browsers reject it otherwise)')
  const maxAge = s.maxAge === undefined || s.maxAge === null ? null : c.duration('sticky.maxAge', s.maxAge, 0, 1000)
  const domain = s.domain === undefined ? null : c.string('sticky.domain', s.domain, '')
  if (domain !== null && !/^[A-Za-z0-9.-]+$/.test(domain)) c.fail('sticky.domain', s.domain, 'must be a domain name')
  const path = c.string('sticky.path', s.path, '/')
  if (!/^\/[\x21-\x3a\x3c-\x7e]*$/.test(path)) c.fail('sticky.path', s.path, 'must start with / and hold no spaces, controls or semicolons')
  return {
    enabled: c.bool('sticky.enabled', s.enabled, enabled ?? true),
    cookie,
    secrets,
    secretGenerated,
    maxAgeSeconds: maxAge === null ? null : Math.floor(maxAge / 1000),
    secure,
    sameSite,
    domain: domain === '' ? null : domain,
    path
  }
}

function resolveHealth (c: Checker, value: unknown): ResolvedHealthCheck {
  const present = value !== undefined && value !== false
  if (value !== undefined && typeof value !== 'boolean' && typeof value !== 'object') c.fail('healthCheck', value, 'must be true, false or an object')
  const h = typeof value === 'object' ? c.object('healthCheck', value, ['enabled', 'path', 'interval', 'timeout', 'rise', 'fall']) ?? {} : {}
  const path = c.string('healthCheck.path', h.path, '/')
  if (!/^\/[\x21-\x7e]*$/.test(path)) c.fail('healthCheck.path', h.path, 'must start with / and hold no spaces or controls')
  const interval = c.duration('healthCheck.interval', h.interval, 2000, 10)
  const timeout = c.duration('healthCheck.timeout', h.timeout, 1000, 1)
  return {
    enabled: c.bool('healthCheck.enabled', h.enabled, present),
    path,
    interval,
    timeout: Math.min(timeout, interval),
    rise: c.int('healthCheck.rise', h.rise, 1, 100, 2),
    fall: c.int('healthCheck.fall', h.fall, 1, 100, 3)
  }
}

function resolveTimeouts (c: Checker, value: unknown): ResolvedTimeouts {
  const t = value === undefined ? {} : c.object('timeouts', value, ['clientHeaders', 'clientRequest', 'clientKeepAlive', 'connect', 'response', 'shutdown']) ?? {}
  const clientHeaders = c.duration('timeouts.clientHeaders', t.clientHeaders, 10_000, 1)
  return {
    clientHeaders,
    // Node requires requestTimeout >= headersTimeout.
    clientRequest: Math.max(clientHeaders, c.duration('timeouts.clientRequest', t.clientRequest, 300_000, 1)),
    clientKeepAlive: c.duration('timeouts.clientKeepAlive', t.clientKeepAlive, 5000, 1),
    connect: c.duration('timeouts.connect', t.connect, 3000, 1),
    response: c.duration('timeouts.response', t.response, 60_000, 1),
    shutdown: c.duration('timeouts.shutdown', t.shutdown, 10_000, 0)
  }
}
