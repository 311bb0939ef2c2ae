/**
 * The one registry of every error a user of `@tether/balancer` can see. Codes are API: they
 * appear in logs, in the bodies of error responses, in the admin API and in the CLI's output,
 * and they never change meaning. `test/errors.test.ts` lists them.
 */

/**
 * What the registry knows about one code.
 *
 * @example
 * ```ts
 * const def: ErrorDefinition = errorCodes.TETHER_ERR_UPSTREAM_TIMEOUT // { status: 504, message: …, fix: … }
 * ```
 */
export interface ErrorDefinition {
  /** HTTP status sent to a client or admin caller, when the error answers a request. */
  readonly status: number | undefined
  /** Default message: says what happened. */
  readonly message: string
  /** What to do about it. */
  readonly fix: string
}

/**
 * Every error code, with its HTTP status, default message and fix. `docs/errors.md` lists the
 * same codes and statuses (checked by `test/errors.test.ts`).
 *
 * @example
 * ```ts
 * import { errorCodes } from '@tether/balancer'
 * errorCodes.TETHER_ERR_NO_UPSTREAM.status // 503
 * ```
 */
export const errorCodes = {
  TETHER_ERR_CONFIG_INVALID: {
    status: undefined,
    message: 'the configuration is invalid',
    fix: 'Correct each field named in the message (file, field and value are given); `tether-balancer --check` validates without starting.'
  },
  TETHER_ERR_CONFIG_FILE: {
    status: undefined,
    message: 'the configuration file cannot be read or parsed',
    fix: 'Check the path and permissions, and the YAML or JSON syntax at the line named.'
  },
  TETHER_ERR_CLI_USAGE: {
    status: undefined,
    message: 'bad command-line arguments; run tether-balancer --help',
    fix: 'Run `tether-balancer --help` and correct the flag named in the message.'
  },
  TETHER_ERR_ADMIN_UNREACHABLE: {
    status: undefined,
    message: 'tether-balancer status could not read the admin API (not listening there, refused the token, or answered an error)',
    fix: 'Point `--admin` at the balancer\'s admin address (`admin.listen`) and pass its token with `--admin-token` or `TETHER_ADMIN_TOKEN`.'
  },
  TETHER_ERR_LISTEN: {
    status: undefined,
    message: 'cannot listen on the configured address (in use, or not allowed)',
    fix: 'Stop whatever holds the port, pick another `listen`/`admin.listen`, or grant the right to bind ports below 1024.'
  },
  TETHER_ERR_NOT_LISTENING: {
    status: undefined,
    message: 'the balancer is closed or closing',
    fix: 'Create a new balancer: one that was closed cannot listen or reload again.'
  },
  TETHER_ERR_RELOAD: {
    status: undefined,
    message: 'the new configuration was rejected; the previous one stays in force',
    fix: 'Correct the problems listed with it, then send SIGHUP again.'
  },
  TETHER_ERR_WORKER_EXIT: {
    status: undefined,
    message: 'a worker process exited unexpectedly (or could not start); the supervisor replaces it',
    fix: 'Read the worker\'s own log lines just before it (its pid is given): a crash, an out-of-memory kill, or a SIGKILL. Replacements are delayed 0.1 s, doubling up to 10 s while workers keep dying young.'
  },
  TETHER_ERR_TLS_CERT: {
    status: undefined,
    message: 'a TLS certificate or key cannot be read or is invalid',
    fix: 'Check the file named (path, permissions, PEM format) and that the key belongs to the certificate; on a reload the previous certificates stay in force until this is fixed.'
  },
  TETHER_ERR_NO_UPSTREAM: {
    status: 503,
    message: 'no upstream node is available',
    fix: 'Bring a node up or out of maint; the admin API and the status page show why each node is out.'
  },
  TETHER_ERR_QUEUE_FULL: {
    status: 503,
    message: 'every node that may take the request is at its maxConn, and the queue is full',
    fix: 'Retry after the `Retry-After` delay; operators: add nodes, raise `upstreams[].maxConn` if the nodes can take it, or raise `queue.size`.'
  },
  TETHER_ERR_QUEUE_TIMEOUT: {
    status: 503,
    message: 'no node had a free slot within queue.timeout',
    fix: 'Retry after the `Retry-After` delay; operators: make the app answer sooner, add nodes, or raise `queue.timeout`.'
  },
  TETHER_ERR_UPSTREAM_CONNECT: {
    status: 503,
    message: 'could not connect to any upstream node',
    fix: 'Check that the apps run and listen on the configured addresses; raise `timeouts.connect` if they are slow to accept.'
  },
  TETHER_ERR_UPSTREAM_RESET: {
    status: 502,
    message: 'the upstream node closed the connection before it answered',
    fix: 'Look for a crash or restart in the app\'s logs; keep `keepAlive.timeout` below the app\'s own keep-alive timeout.'
  },
  TETHER_ERR_UPSTREAM_PROTOCOL: {
    status: 502,
    message: 'the upstream node sent an invalid HTTP response',
    fix: 'Fix the app\'s response (the log names the node and what was invalid, such as conflicting Content-Length).'
  },
  TETHER_ERR_UPSTREAM_TLS: {
    status: 502,
    message: 'the TLS handshake with the upstream node failed, or its certificate could not be verified',
    fix: 'Give the node a certificate signed by a CA in `upstreamTls.ca` (or `upstreams[].tls.ca`) that names the host of its URL (or `servername`), and check that it speaks TLS on that port; `verify: false` turns checking off (not advised).'
  },
  TETHER_ERR_UPSTREAM_TIMEOUT: {
    status: 504,
    message: 'the upstream node did not answer in time',
    fix: 'Make the app answer sooner, or raise `timeouts.response`.'
  },
  TETHER_ERR_CLIENT_HEADER_TIMEOUT: {
    status: 408,
    message: 'the request headers did not arrive in time',
    fix: 'Nothing for a slowloris client; for slow legitimate clients raise `timeouts.clientHeaders`.'
  },
  TETHER_ERR_CLIENT_BAD_REQUEST: {
    status: 400,
    message: 'the request is not valid HTTP',
    fix: 'Fix the client: the request was malformed or ambiguous (such as Content-Length with Transfer-Encoding).'
  },
  TETHER_ERR_CLIENT_HEADERS_TOO_LARGE: {
    status: 431,
    message: 'the request headers are too large or too many',
    fix: 'Send smaller or fewer headers (usually too many or too large cookies): Node\'s limit is 16 KiB, and the balancer\'s `limits.headerLines` caps the number of lines.'
  },
  TETHER_ERR_CLIENT_BAD_HOST: {
    status: 400,
    message: 'the request has no Host header (HTTP/1.1), more than one, or an invalid one',
    fix: 'Fix the client: send exactly one Host header holding `host` or `host:port` (RFC 9112 §3.2); Host lines after `limits.headerLines` other lines are not read (431).'
  },
  TETHER_ERR_CLIENT_UPGRADE_BODY: {
    status: 400,
    message: 'an Upgrade request must not carry a body',
    fix: 'Fix the client: send the WebSocket (Upgrade) handshake without Content-Length or Transfer-Encoding.'
  },
  TETHER_ERR_CLIENT_EXPECTATION: {
    status: 417,
    message: 'the request\'s Expect header asks for something other than 100-continue',
    fix: 'Fix the client: send `Expect: 100-continue` or no Expect header (RFC 9110 §10.1.1).'
  },
  TETHER_ERR_CLIENT_ABORTED: {
    status: undefined,
    message: 'the client went away before the response was complete',
    fix: 'Nothing: it is logged at debug level and not held against the node.'
  },
  TETHER_ERR_CLIENT_RAPID_RESET: {
    status: undefined,
    message: 'an HTTP/2 client cancelled streams faster than allowed; its connection was closed',
    fix: 'Nothing for an attacker (the rapid-reset pattern, CVE-2023-44487); for a legitimate client that cancels many requests raise `listen.tls.http2.maxResetsPerSecond`.'
  },
  TETHER_ERR_ADMIN_UNAUTHORIZED: {
    status: 401,
    message: 'the admin API needs a valid bearer token',
    fix: 'Send `Authorization: Bearer <admin.token>` (or Basic auth with the token as the password).'
  },
  TETHER_ERR_ADMIN_FORBIDDEN_HOST: {
    status: 403,
    message: 'the Host header is not allowed on the admin API (set admin.allowedHosts or a token)',
    fix: 'Call it by IP address or localhost, add the host name to `admin.allowedHosts`, or set `admin.token`.'
  },
  TETHER_ERR_ADMIN_NOT_FOUND: {
    status: 404,
    message: 'no such admin route',
    fix: 'Use one of the routes in docs/balancer.md (`/`, `/api/nodes`, `/api/nodes/:name`, `/api/health`, `/metrics`).'
  },
  TETHER_ERR_ADMIN_METHOD: {
    status: 405,
    message: 'method not allowed on this admin route',
    fix: 'Use a method from the `Allow` header of the answer.'
  },
  TETHER_ERR_ADMIN_BAD_REQUEST: {
    status: 400,
    message: 'the admin request is invalid: send JSON such as {"state":"drain"} with content-type application/json',
    fix: 'Send a JSON object of at most 16 KiB with `content-type: application/json`.'
  },
  TETHER_ERR_UNKNOWN_NODE: {
    status: 404,
    message: 'no upstream node has this name',
    fix: 'Use a name from `GET /api/nodes` (or `balancer.nodes()`).'
  },
  TETHER_ERR_INVALID_NODE_UPDATE: {
    status: 400,
    message: 'the node update is invalid: send state and/or weight',
    fix: 'Send only `state` and/or `weight`, with values as the message asks (the same rules as `upstreams[].state` and `.weight` in the configuration).'
  }
} as const satisfies Record<string, ErrorDefinition>

/**
 * A stable error code, such as `TETHER_ERR_NO_UPSTREAM`.
 *
 * @example
 * ```ts
 * const code: ErrorCode = 'TETHER_ERR_NO_UPSTREAM'
 * ```
 */
export type ErrorCode = keyof typeof errorCodes

/**
 * One problem found in a configuration: where it is, what it held, what is wrong.
 *
 * @example
 * ```ts
 * try { resolveConfig(raw) } catch (err) { for (const issue of (err as TetherBalancerError).issues) console.error(formatIssue(issue)) }
 * ```
 */
export interface ConfigIssue {
  /** Path of the field, such as `upstreams[1].weight`. */
  readonly field: string
  /** The value found there (`undefined` when the field is missing). */
  readonly value: unknown
  /** What the field must be. */
  readonly problem: string
  /** The file the value came from, or `undefined` for programmatic configs and flags. */
  readonly file: string | undefined
}

// Symbol.for so that `instanceof` holds when two copies of the package are installed.
const kTetherError = Symbol.for('tether.balancer.error')

/**
 * The error class behind every code in {@link errorCodes}.
 *
 * @example
 * ```ts
 * import { createBalancer, TetherBalancerError } from '@tether/balancer'
 * try {
 *   createBalancer({ upstreams: [] })
 * } catch (err) {
 *   if (err instanceof TetherBalancerError) console.error(err.code, err.issues)
 * }
 * ```
 */
export class TetherBalancerError extends Error {
  /** The stable code. */
  readonly code: ErrorCode
  /** HTTP status, when this error answers a request. */
  readonly status: number | undefined
  /** For configuration errors: every problem found, in order. */
  readonly issues: readonly ConfigIssue[]

  constructor (code: ErrorCode, message?: string, options?: { cause?: unknown, issues?: readonly ConfigIssue[] }) {
    super(message ?? errorCodes[code].message, options?.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'TetherBalancerError'
    this.code = code
    this.status = errorCodes[code].status
    this.issues = options?.issues ?? []
  }

  get [kTetherError] (): true { return true }

  static override [Symbol.hasInstance] (value: unknown): boolean {
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[kTetherError] === true
  }
}

/**
 * Render one configuration issue as the one line the CLI prints: file, field, value, problem.
 *
 * @example
 * ```ts
 * formatIssue({ file: 'lb.yaml', field: 'upstreams[0].weight', value: 0, problem: 'must be an integer from 1 to 10000' })
 * // "lb.yaml: upstreams[0].weight: must be an integer from 1 to 10000 (got 0)"
 * ```
 */
export function formatIssue (issue: ConfigIssue): string {
  const where = issue.file === undefined ? '' : `${issue.file}: `
  const got = issue.value === undefined ? 'missing' : `got ${safeJson(issue.value)}`
  return `${where}${issue.field}: ${issue.problem} (${got})`
}

function safeJson (value: unknown): string {
  try {
    const text = JSON.stringify(value) ?? String(value)
    return text.length > 80 ? `${text.slice(0, 77)}...` : text
  } catch {
    return String(value)
  }
}
