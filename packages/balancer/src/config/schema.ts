/**
 * The configuration, declared once. Each field's type, check, error message, default, unit,
 * description and command-line flag are here, and everything else derives from this file: the
 * TypeScript types (`types.ts`), validation with defaults (`resolve.ts`), the CLI flags
 * (`cli/flags.ts`), the admin API's node updates, and the configuration table in
 * docs/balancer.md (`docs.ts`, checked by a test). Defaults are given resolved (milliseconds);
 * the docs show them with units.
 */
import * as v from 'valibot'
import { parseCidr } from '../net/address.js'
import { bool, choice, duration, fields, int, list, listen, parseListen, section, secrets, text } from './fields.js'

/** Node names end up in a header, metric labels and URLs: keep them to a safe alphabet. */
export const NODE_NAME = /^[A-Za-z0-9][A-Za-z0-9._:[\]@-]{0,99}$/
// RFC 6265 cookie-name is an RFC 7230 token.
const COOKIE_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,64}$/
const MIN_SECRET_LENGTH = 16

/**
 * Every algorithm name, in the order the docs list them; the first is the default.
 *
 * @example
 * ```ts
 * ALGORITHMS.includes('ip-hash') // true
 * ```
 */
export const ALGORITHMS = ['weighted-round-robin', 'least-connections', 'ip-hash'] as const
/**
 * Every engine name; the first is the default (the fastest measured by `npm run bench -- balancer`).
 *
 * @example
 * ```ts
 * ENGINES[0] // 'h1'
 * ```
 */
export const ENGINES = ['h1', 'undici', 'http-proxy'] as const
const LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const

// ---- nodes ------------------------------------------------------------------------------

/**
 * A node's administrative states.
 *
 * @example
 * ```ts
 * NODE_STATES.includes('drain') // true
 * ```
 */
export const NODE_STATES = ['active', 'drain', 'maint'] as const

/** A node's administrative state: in a node's configuration and in the admin API. */
export const nodeState = choice(NODE_STATES, {
  doc: 'administrative state (`drain` keeps its sticky clients and takes no new ones, `maint` takes no traffic)'
})
/** A node's weight: in a node's configuration and in the admin API. */
export const nodeWeight = int(1, 10_000, { doc: 'relative share of new clients' })

const URL_PROBLEM = 'must be a URL such as http://127.0.0.1:3001'
// SNI carries DNS names only (RFC 6066 §3): an IP literal is verified against the certificate's
// IP addresses instead.
const IP_LITERAL = /^[\d.]+$|:/

/** An upstream URL, resolved to what connecting and the Host header need. */
const upstreamUrl = v.pipe(
  v.string(URL_PROBLEM),
  v.rawTransform(({ dataset, addIssue, NEVER }) => {
    let url: URL
    try { url = new URL(dataset.value) } catch { addIssue({ message: URL_PROBLEM }); return NEVER }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') { addIssue({ message: 'must use http:// or https://' }); return NEVER }
    if ((url.pathname !== '/' && url.pathname !== '') || url.search !== '' || url.hash !== '' || url.username !== '' || url.password !== '') {
      addIssue({ message: 'must be just scheme, host and port (no path, query or credentials)' })
      return NEVER
    }
    const https = url.protocol === 'https:'
    const port = Number(url.port === '' ? (https ? 443 : 80) : url.port)
    const authority = `${url.hostname}:${port}`
    // IPv6 without brackets for net.connect, with them in the authority.
    return { https, host: url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname, port, authority }
  }),
  v.metadata({ kind: 'text', doc: '`http://host:port`, or `https://host:port` for TLS to the node (see `upstreamTls`); no path' })
)

/** TLS to https:// upstreams: globally (`upstreamTls`) and per upstream (`upstreams[].tls`, field by field over the global one). */
function upstreamTlsFields (scope: 'global' | 'node') {
  const global = scope === 'global'
  return fields({
    ca: v.optional(text({
      doc: 'PEM file of the certificate authorities that sign the nodes\' certificates (a private CA); read at start and on each reload',
      shown: global ? 'the system\'s CAs' : '`upstreamTls.ca`',
      ...(global ? { flag: { name: 'upstream-ca', arg: 'FILE', help: 'verify https:// upstreams against the CAs in this PEM file' } } : {})
    })),
    servername: v.optional(text({ doc: 'the name sent by SNI and checked against the node\'s certificate', shown: global ? 'the URL\'s host (an IP address is checked against the certificate\'s IP addresses, without SNI)' : '`upstreamTls.servername`' }, /^[A-Za-z0-9.-]+$/, 'must be a DNS name')),
    verify: v.optional(bool({ doc: 'verify the node\'s certificate and name: an unverifiable node is a failed connection (`TETHER_ERR_UPSTREAM_TLS`). `false` accepts any certificate (logged as a warning at start)', shown: global ? '`true`' : '`upstreamTls.verify`' }))
  })
}

/** An upstream's fields (its object form). */
export const upstreamFields = fields({
  url: upstreamUrl,
  name: v.optional(text({ doc: 'shown to the app in `x-tether-node`, in logs, metrics and the admin API', shown: '`host:port`' }, NODE_NAME, 'must be 1-100 characters of letters, digits and . _ : [ ] @ -, starting with a letter or digit')),
  weight: v.optional(nodeWeight, 1),
  maxFails: v.optional(int(0, 1000, { doc: 'failed attempts within `failTimeout` that take the node out for `failTimeout` (passive checks, as nginx); `0` disables' }), 1),
  failTimeout: v.optional(duration(1, { doc: 'the window for `maxFails`, and how long the node then stays out; an ejection soon after the last one lasts longer: × 2, × 3, … up to × 10' }), 10_000),
  backup: v.optional(bool({ doc: 'serves only while no primary node is up' }), false),
  state: v.optional(nodeState, 'active'),
  maxConn: v.optional(int(0, 1_000_000, { doc: 'requests (and tunnels) in flight to this node at most, as HAProxy\'s `maxconn`; more wait in the queue (see `queue`). `0`: no limit' }), 0),
  tls: v.optional(v.pipe(upstreamTlsFields('node'), section({ doc: 'this node\'s TLS settings (https:// only), each over `upstreamTls`:', shown: '`upstreamTls`' })))
})

/** One upstream: a URL string, or an object. */
const upstream = v.pipe(
  v.union([v.pipe(v.string(), v.transform((url) => ({ url })), upstreamFields), upstreamFields], 'must be a URL or an object'),
  v.transform((u) => ({
    name: u.name ?? u.url.authority,
    url: `${u.url.https ? 'https' : 'http'}://${u.url.authority}`,
    https: u.url.https,
    host: u.url.host,
    port: u.url.port,
    authority: u.url.authority,
    weight: u.weight,
    maxFails: u.maxFails,
    failTimeout: u.failTimeout,
    backup: u.backup,
    state: u.state,
    maxConn: u.maxConn,
    /** This node's own TLS fields; merged over `upstreamTls` once the whole configuration is known. */
    tlsOwn: u.tls ?? {}
  }))
)

const UPSTREAMS_PROBLEM = 'must be a non-empty list of upstream URLs or objects'
const upstreams = v.pipe(
  v.array(upstream, UPSTREAMS_PROBLEM),
  v.minLength(1, UPSTREAMS_PROBLEM),
  v.rawCheck(({ dataset, addIssue }) => {
    if (!dataset.typed) return
    const seen = new Set<string>()
    dataset.value.forEach((u, i) => {
      if (seen.has(u.name)) {
        addIssue({
          message: 'must be unique (two upstreams have this name; give one a name)',
          input: u.name,
          path: [{ type: 'array', origin: 'value', input: dataset.value, key: i, value: u }, { type: 'object', origin: 'value', input: u, key: 'name', value: u.name }]
        })
      }
      seen.add(u.name)
    })
  }),
  v.metadata({
    kind: 'upstreams',
    doc: 'the nodes; each a URL string, or an object:',
    shown: 'required',
    flag: { name: 'upstream', short: 'u', arg: 'URL[,OPTS]', repeat: true, help: 'an upstream node; repeat for more' }
  })
)

// ---- sticky sessions --------------------------------------------------------------------

const stickyFields = fields({
  enabled: v.optional(bool({ doc: 'whether to insert and follow the sticky cookie', flag: { name: 'no-sticky', sets: false, help: 'no sticky cookie' } }), true),
  cookie: v.optional(text({ doc: 'the cookie\'s name', flag: { name: 'cookie', arg: 'NAME', help: 'sticky cookie name' } }, COOKIE_NAME, 'must be a cookie name (letters, digits and !#$%&\'*+-.^_`|~)'), 'tether_node'),
  secret: v.optional(secrets(MIN_SECRET_LENGTH, `must be a string (or list of strings) of at least ${MIN_SECRET_LENGTH} characters`, {
    doc: `HMAC key, or a list of keys (≥ ${MIN_SECRET_LENGTH} characters): the first signs, every one verifies (key rotation). Set one: otherwise cookies die with the process`,
    shown: 'random per process',
    flag: { name: 'sticky-secret', arg: 'SECRET', env: 'TETHER_STICKY_SECRET', help: 'HMAC key for the sticky cookie' }
  })),
  maxAge: v.optional(v.nullable(duration(1000, { doc: 'cookie lifetime', shown: 'none (a session cookie)' })), null),
  secure: v.optional(bool({ doc: 'adds `Secure`', shown: '`true` on a TLS listener, else `false`' })),
  sameSite: v.optional(choice(['Strict', 'Lax', 'None'], { doc: '`SameSite` attribute; `None` needs `secure`' }), 'Lax'),
  domain: v.optional(text({ doc: '`Domain` attribute', shown: 'none' }, /^[A-Za-z0-9.-]+$/, 'must be a domain name')),
  path: v.optional(text({ doc: '`Path` attribute (the cookie is always `HttpOnly`)' }, /^\/[\x21-\x3a\x3c-\x7e]*$/, 'must start with / and hold no spaces, controls or semicolons'), '/')
})
const STICKY_DEFAULTS = v.parse(stickyFields, {})

const sticky = v.pipe(
  v.optional(v.union([v.boolean(), stickyFields], 'must be true, false or an object'), true),
  v.transform((s) => typeof s === 'boolean' ? { ...STICKY_DEFAULTS, enabled: s } : s),
  v.transform((s) => ({
    enabled: s.enabled,
    cookie: s.cookie,
    /** First signs, all verify. Empty when none is configured: `resolveConfig` makes one up. */
    secrets: s.secret ?? [],
    /** True when no secret was configured and one was made up for this process. */
    secretGenerated: s.secret === undefined,
    maxAgeSeconds: s.maxAge === null ? null : Math.floor(s.maxAge / 1000),
    /** Undefined until the whole configuration is known: then `true` on a TLS listener. */
    secure: s.secure,
    sameSite: s.sameSite,
    domain: s.domain ?? null,
    path: s.path
  })),
  section({ doc: 'sticky sessions by the balancer\'s own signed cookie; `false` turns them off, or an object:', shown: 'on' })
)

// ---- health checks ----------------------------------------------------------------------

const healthFields = fields({
  enabled: v.optional(bool({ doc: 'whether to run active checks (passive checks are always on)' }), true),
  path: v.optional(text({ doc: 'GET this path; a 2xx or 3xx answer is a success', flag: { name: 'health-check', arg: 'PATH', help: 'active health checks: GET PATH on every node', alsoSets: { enabled: true } } }, /^\/[\x21-\x7e]*$/, 'must start with / and hold no spaces or controls'), '/'),
  interval: v.optional(duration(10, { doc: 'time between the starts of two checks of a node (fixed rate: a slow check does not delay the next)', flag: { name: 'health-interval', arg: 'DUR', help: 'time between checks' } }), 2000),
  timeout: v.optional(duration(1, { doc: 'one check\'s deadline (at most `interval`)' }), 1000),
  rise: v.optional(int(1, 100, { doc: 'consecutive successes that bring a down node back' }), 2),
  fall: v.optional(int(1, 100, { doc: 'consecutive failures that take a node down' }), 3)
})
const HEALTH_DEFAULTS = v.parse(healthFields, {})

const healthCheck = v.pipe(
  v.optional(v.union([v.boolean(), healthFields], 'must be true, false or an object'), false),
  v.transform((h) => typeof h === 'boolean' ? { ...HEALTH_DEFAULTS, enabled: h } : h),
  v.transform((h) => ({ ...h, timeout: Math.min(h.timeout, h.interval) })),
  section({ doc: 'active HTTP health checks; `true`, or an object:', shown: 'off' })
)

// ---- timeouts, keep-alive ---------------------------------------------------------------

const timeouts = v.pipe(
  fields({
    clientHeaders: v.optional(duration(1, { doc: 'receiving a request\'s headers (slowloris): 408' }), 10_000),
    clientRequest: v.optional(duration(1, { doc: 'receiving a whole request (at least `clientHeaders`)' }), 300_000),
    clientKeepAlive: v.optional(duration(1, { doc: 'an idle client connection' }), 5000),
    connect: v.optional(duration(1, { doc: 'connecting to a node; then the next node is tried' }), 3000),
    response: v.optional(duration(1, { doc: 'a node\'s response headers, and each gap in its body: 504' }), 60_000),
    perTry: v.optional(duration(0, { doc: 'an idempotent request without a body (GET, HEAD, …) that has no response headers within this is abandoned, counted as a failure of its node, and retried on another node (up to `retries`; 504 when none is left); `0` turns it off' }), 0),
    shutdown: v.optional(duration(0, { doc: 'how long `close()` or SIGTERM waits for requests in flight' }), 10_000)
  }),
  // Node requires requestTimeout >= headersTimeout.
  v.transform((t) => ({ ...t, clientRequest: Math.max(t.clientHeaders, t.clientRequest) })),
  section({ doc: 'each bounds one wait; none is a deadline for a whole request' })
)

const keepAlive = v.pipe(
  fields({
    maxIdle: v.optional(int(0, 100_000, { doc: 'idle connections kept per node' }), 128),
    timeout: v.optional(duration(1, { doc: 'how long an idle connection is kept: keep it below the app\'s keep-alive timeout (a `Keep-Alive: timeout=N` hint from the app is honoured)' }), 4000)
  }),
  section({ doc: 'upstream keep-alive, as nginx\'s `keepalive`' })
)

// ---- limits ----------------------------------------------------------------------------

const limits = v.pipe(
  fields({
    headerLines: v.optional(int(1, 999, { doc: 'request header lines accepted; more get a 431 (HAProxy\'s `tune.http.maxhdr` is 101). Below 1000, the lines a Node app keeps, so that nothing the balancer forwards is cut' }), 100),
    connections: v.optional(int(0, 10_000_000, { doc: 'client connections open at once; more are closed as they arrive (Node\'s `server.maxConnections`). `0`: no limit', flag: { name: 'max-connections', arg: 'N', help: 'client connections open at once' } }), 0)
  }),
  section({ doc: 'what one client may send' })
)

const queue = v.pipe(
  fields({
    size: v.optional(int(0, 100_000, { doc: 'requests that may wait for a node at its `maxConn`: per node for clients held there by their sticky cookie, and as many again for the others; beyond it, 503 at once', flag: { name: 'queue-size', arg: 'N', help: 'requests waiting per node at its maxConn' } }), 100),
    timeout: v.optional(duration(1, { doc: 'how long a request waits for a slot, as HAProxy\'s `timeout queue`; then 503 with `Retry-After`', flag: { name: 'queue-timeout', arg: 'DUR', help: 'longest wait for a node at its maxConn' } }), 5000)
  }),
  section({ doc: 'the wait for a node at its `maxConn`' })
)

// ---- latency outlier detection ------------------------------------------------------------

const latencyEjection = v.pipe(
  fields({
    factor: v.optional(int(0, 1000, { doc: 'how many times slower than both its own baseline latency and the other nodes\' (their median) a node must turn to be ejected; `0` turns latency ejection off' }), 0),
    minExtra: v.optional(duration(0, { doc: 'and by at least this much over each, so that 1 ms against 3 ms is no outlier' }), 100),
    minRequests: v.optional(int(1, 1_000_000, { doc: 'requests a node must have answered (and each node it is compared with) before its latency is judged' }), 20),
    ejectionTime: v.optional(duration(1, { doc: 'how long a slow node is out; a repeat soon after it came back lasts 2×, 3×, … up to 10× (as failure ejections)' }), 10_000)
  }),
  section({ doc: 'passive latency outlier detection, in the style of Envoy\'s: a node whose recent latency (time to response headers of requests without a body, a moving average of about the last 5) jumps above its own baseline (about the last 100) and above the other nodes\' is ejected for a while, within `maxEjectedPercent`' })
)

// ---- admin API, logs --------------------------------------------------------------------

const adminFields = fields({
  listen: listen('127.0.0.1', { doc: 'where the admin API listens; a bare port binds to 127.0.0.1', shown: 'required', flag: { name: 'admin', arg: '[HOST:]PORT', help: 'admin API and status page (bare port: 127.0.0.1)' } }),
  token: v.optional(v.pipe(
    text({ doc: `every request then needs \`Authorization: Bearer <token>\` (or Basic with it as the password); ≥ ${MIN_SECRET_LENGTH} characters`, shown: 'none', flag: { name: 'admin-token', arg: 'TOKEN', env: 'TETHER_ADMIN_TOKEN', help: 'require this bearer token' } }),
    v.rawCheck<string>(({ dataset, addIssue }) => {
      if (dataset.typed && dataset.value.length < MIN_SECRET_LENGTH) addIssue({ message: `must be at least ${MIN_SECRET_LENGTH} characters`, input: '<hidden>' })
    })
  )),
  allowedHosts: v.optional(v.pipe(
    list('must be a list of host names', 'must be a list of host names', (h) => h !== '', { doc: 'Host names accepted without a token (IP literals and `localhost` always are): the defence against DNS rebinding', shown: 'none' }),
    v.transform((hosts) => hosts.map((h) => h.toLowerCase()))
  ), [])
})

const admin = v.pipe(
  v.optional(v.union([v.literal(false), adminFields], 'must be an object'), false),
  v.transform((a) => a === false ? null : { listen: a.listen, token: a.token ?? null, allowedHosts: a.allowedHosts }),
  section({ doc: 'the admin API and status page; absent or `false`: off', shown: 'off' })
)

const log = v.pipe(
  fields({
    level: v.optional(choice(LEVELS, { doc: 'pino level', flag: { name: 'log-level', arg: 'LEVEL', help: 'log level' } }), 'info'),
    accessLog: v.optional(bool({ doc: 'one log line per proxied request', flag: { name: 'access-log', sets: true, help: 'one log line per request' } }), false)
  }),
  section({ doc: 'logs: JSON lines on stdout' })
)

// ---- the listener, TLS, HTTP/2 ----------------------------------------------------------

/**
 * The TLS versions a listener may accept at the least; the first is the default.
 *
 * @example
 * ```ts
 * TLS_VERSIONS[0] // 'TLSv1.2'
 * ```
 */
export const TLS_VERSIONS = ['TLSv1.2', 'TLSv1.3'] as const

const sniCertificate = fields({
  cert: text({ doc: 'PEM certificate chain; it serves the DNS names of its subjectAltName' }),
  key: text({ doc: 'its PEM private key' })
})

const http2Fields = fields({
  enabled: v.optional(bool({ doc: 'offer `h2` by ALPN (HTTP/1.1 is always offered)', flag: { name: 'no-http2', sets: false, help: 'offer HTTP/1.1 only on the TLS listener' } }), true),
  maxConcurrentStreams: v.optional(int(1, 1000, { doc: 'streams a client may have open at once on one connection' }), 100),
  maxHeaderListSize: v.optional(int(1024, 1_048_576, { doc: 'bytes of request headers (decompressed) a stream may carry' }), 65_536),
  maxResetsPerSecond: v.optional(int(1, 100_000, { doc: 'streams a client may cancel per second (averaged over 10 s) before its connection is closed: the HTTP/2 rapid-reset defence (CVE-2023-44487)' }), 100)
})
const HTTP2_DEFAULTS = v.parse(http2Fields, {})

const http2 = v.pipe(
  v.optional(v.union([v.boolean(), http2Fields], 'must be true, false or an object'), true),
  v.transform((h) => typeof h === 'boolean' ? { ...HTTP2_DEFAULTS, enabled: h } : h),
  section({ doc: 'HTTP/2 to clients on the TLS listener (streams are forwarded to the nodes over HTTP/1.1); `false`, or an object:', shown: 'on' })
)

const tlsFields = fields({
  cert: text({ doc: 'PEM certificate chain (such as Let\'s Encrypt\'s `fullchain.pem`): the default certificate', shown: 'required', flag: { name: 'tls-cert', arg: 'FILE', help: 'serve HTTPS (and HTTP/2) with this PEM certificate chain' } }),
  key: text({ doc: 'the PEM private key of `cert`', shown: 'required', flag: { name: 'tls-key', arg: 'FILE', help: 'the PEM private key of --tls-cert' } }),
  sni: v.optional(v.pipe(
    v.array(sniCertificate, 'must be a list of { cert, key }'),
    section({ doc: 'further certificates, each chosen when a client asks (SNI) for one of its names; other names get `cert`. A list of:', shown: 'none' })
  ), []),
  minVersion: v.optional(choice(TLS_VERSIONS, { doc: 'the oldest TLS version accepted' }), TLS_VERSIONS[0]),
  hsts: v.optional(v.nullable(duration(0, { doc: '`Strict-Transport-Security: max-age` sent with every response', shown: 'none' })), null),
  redirectHttp: v.optional(listen(undefined, { doc: 'a plain-HTTP listener that answers every request with a 308 to `https://` (port, or `host:port`)', shown: 'none', flag: { name: 'tls-redirect', arg: '[HOST:]PORT', help: 'also listen for plain HTTP here and redirect it to https://' } })),
  ticketRotation: v.optional(duration(60_000, { doc: 'how often the session-ticket key changes (resumption across the change falls back to a full handshake)' }), 43_200_000),
  http2
})

const listenFields = fields({
  port: v.optional(listen(undefined, { doc: 'port, or `host:port`', shown: '`8080` (all interfaces)' }), 8080),
  tls: v.optional(v.pipe(tlsFields, section({ doc: 'terminate TLS here (HTTPS, and HTTP/2 by ALPN):', shown: 'none (plain HTTP)' })))
})

const LISTEN_PROBLEM = 'must be a port, "host:port" or an object { port, tls }'

/**
 * The main listener: a port, `"host:port"`, or `{ port, tls }`. The output is a
 * `ResolvedListen` with `tls` (null: plain HTTP).
 */
const mainListen = v.pipe(
  v.union([v.number(), v.string(), listenFields], LISTEN_PROBLEM),
  v.rawTransform(({ dataset, addIssue, NEVER }) => {
    const value = dataset.value
    if (typeof value === 'object') {
      const tls = value.tls === undefined ? null : { ...value.tls, redirectHttp: value.tls.redirectHttp ?? null }
      return { host: value.port.host, port: value.port.port, tls }
    }
    const parsed = parseListen(value, undefined)
    if (parsed === undefined) { addIssue({ message: LISTEN_PROBLEM }); return NEVER }
    return { host: parsed.host, port: parsed.port, tls: null }
  }),
  v.metadata({ kind: 'listen', doc: 'port, or `host:port`; or an object:', shown: '`8080` (all interfaces)', flag: { name: 'listen', short: 'l', arg: '[HOST:]PORT', help: 'where to listen' } })
)

// ---- processes ---------------------------------------------------------------------------

const MAX_WORKERS = 1024
const WORKERS_PROBLEM = `must be "auto" or an integer from 1 to ${MAX_WORKERS}`

/**
 * `workers`: `auto` (one per core, `os.availableParallelism()`) or a count. A flag gives a
 * string, so digits are read as the count.
 */
const workers = v.pipe(
  v.union([v.number(), v.string()], WORKERS_PROBLEM),
  v.rawTransform(({ dataset, addIssue, NEVER }) => {
    const value = dataset.value
    if (value === 'auto') return 'auto' as const
    const n = typeof value === 'number' ? value : /^\d+$/.test(value) ? Number(value) : NaN
    if (!Number.isInteger(n) || n < 1 || n > MAX_WORKERS) { addIssue({ message: WORKERS_PROBLEM }); return NEVER }
    return n
  }),
  v.metadata({
    kind: 'text',
    doc: 'processes that serve the listener (`node:cluster`), `auto` for one per core, or a count. The `tether-balancer` command only: `createBalancer` is always one process. With more than one, a supervisor process runs the health checks and the admin API for all of them (see Workers)',
    flag: { name: 'workers', short: 'w', arg: 'N', help: 'processes serving the listener: a count, or auto for one per core' }
  })
)

const upstreamTls = v.pipe(
  upstreamTlsFields('global'),
  section({ doc: 'TLS to `https://` upstreams (certificates verified by default):' })
)

/**
 * What a node's TLS connections need, resolved: `ca` is the file name (its PEM is read by
 * `resolveConfig`), `servername` null for an IP literal.
 *
 * @example
 * ```ts
 * const tls: ResolvedUpstreamTls = { caFile: '/etc/tether/ca.pem', ca: '-----BEGIN CERTIFICATE-----…', servername: 'app-1.internal', verify: true }
 * ```
 */
export interface ResolvedUpstreamTls {
  readonly caFile: string | null
  /** The PEM text of `caFile`; null until read, and for the system's CAs. */
  readonly ca: string | null
  readonly servername: string | null
  readonly verify: boolean
}

// ---- the whole configuration ------------------------------------------------------------

/** The configuration schema: input is `BalancerConfig`, output is `ResolvedConfig`. */
export const configSchema = v.pipe(fields({
  listen: v.optional(mainListen, 8080),
  upstreams,
  algorithm: v.optional(choice(ALGORITHMS, { doc: 'how new clients are spread (see Algorithms)', flag: { name: 'algorithm', short: 'a', arg: 'NAME', help: 'load-balancing algorithm' } }), ALGORITHMS[0]),
  hashBalanceFactor: v.optional(v.pipe(
    int(0, 10_000, { doc: 'ip-hash with bounded loads, as HAProxy\'s `hash-balance-factor`: a percentage of the average load no node may exceed (150: 1.5 ×); a client whose node is at the bound goes to its next node and comes back when the load falls. Many users behind one NAT address then cannot pile onto one node. `0`: off; otherwise at least 100', flag: { name: 'hash-balance-factor', arg: 'PCT', help: 'ip-hash: bound each node to PCT% of the average load' } }),
    v.check((n) => n === 0 || n >= 100, 'must be 0 (off) or a percentage of at least 100')
  ), 0),
  workers: v.optional(workers, 'auto'),
  engine: v.optional(choice(ENGINES, { doc: 'how requests are forwarded (see Engines)', flag: { name: 'engine', arg: 'NAME', help: 'forwarding engine' } }), ENGINES[0]),
  upstreamTls: v.optional(upstreamTls, {}),
  sticky,
  healthCheck,
  timeouts: v.optional(timeouts, {}),
  keepAlive: v.optional(keepAlive, {}),
  limits: v.optional(limits, {}),
  queue: v.optional(queue, {}),
  retries: v.optional(int(0, 10, { doc: 'further nodes tried after a failure that is safe to retry', flag: { name: 'retries', arg: 'N', help: 'further nodes to try after a safe-to-retry failure' } }), 2),
  maxEjectedPercent: v.optional(int(0, 100, { doc: 'the most nodes (in percent, but always at least one) that passive checks may hold out at once, as Envoy\'s `max_ejection_percent`: past it, failures are counted but eject no one' }), 100),
  latencyEjection: v.optional(latencyEjection, {}),
  trustedProxies: v.optional(list('must be a list of IP addresses or CIDRs', 'must be an IP address or CIDR such as 10.0.0.0/8', (x) => parseCidr(x) !== undefined, {
    doc: 'peers (IPs or CIDRs) whose X-Forwarded-* headers are believed',
    shown: 'none',
    flag: { name: 'trusted-proxy', arg: 'CIDR', repeat: true, help: 'believe X-Forwarded-* from this peer; repeat for more' }
  }), []),
  admin,
  log: v.optional(log, {})
}),
// Fields that depend on another section: the sticky cookie is `Secure` by default on a TLS
// listener, and `SameSite=None` is only valid with `Secure`.
v.rawTransform(({ dataset, addIssue, NEVER }) => {
  const c = dataset.value
  const secure = c.sticky.secure ?? c.listen.tls !== null
  if (c.sticky.sameSite === 'None' && !secure) {
    addIssue({
      message: 'can be "None" only with sticky.secure: true or a TLS listener (browsers reject it otherwise)',
      input: c.sticky.sameSite,
      path: [
        { type: 'object', origin: 'value', input: c, key: 'sticky', value: c.sticky },
        { type: 'object', origin: 'value', input: c.sticky, key: 'sameSite', value: c.sticky.sameSite }
      ]
    })
    return NEVER
  }
  // Each https:// node's TLS settings: its own fields over the global ones.
  const upstreams = c.upstreams.map(({ tlsOwn, ...u }) => {
    if (!u.https) return { ...u, tls: null }
    const merged = { ...c.upstreamTls, ...tlsOwn }
    const servername = merged.servername ?? (IP_LITERAL.test(u.host) ? null : u.host)
    const tls: ResolvedUpstreamTls = { caFile: merged.ca ?? null, ca: null, servername, verify: merged.verify ?? true }
    return { ...u, tls }
  })
  return { ...c, upstreams, sticky: { ...c.sticky, secure } }
}))

/** What the admin API (and `balancer.setNode`) may change on a node, with the node's own rules. */
export const nodeUpdateSchema = v.pipe(
  fields({ state: v.optional(nodeState), weight: v.optional(nodeWeight) }),
  v.check((u) => u.state !== undefined || u.weight !== undefined, 'send state and/or weight')
)
