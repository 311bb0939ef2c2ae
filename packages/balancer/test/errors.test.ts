// The error registry is API: this test lists every code with its HTTP status, so that adding,
// removing or re-numbering one is a visible, reviewed change.
import t from 'tap'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { errorCodes, formatIssue, TetherBalancerError } from '../src/index.js'

t.test('every code, with its status', async (t) => {
  const listed = Object.fromEntries(Object.entries(errorCodes).map(([code, def]) => [code, def.status ?? null]))
  t.same(listed, {
    TETHER_ERR_CONFIG_INVALID: null,
    TETHER_ERR_CONFIG_FILE: null,
    TETHER_ERR_CLI_USAGE: null,
    TETHER_ERR_ADMIN_UNREACHABLE: null,
    TETHER_ERR_LISTEN: null,
    TETHER_ERR_NOT_LISTENING: null,
    TETHER_ERR_RELOAD: null,
    TETHER_ERR_WORKER_EXIT: null,
    TETHER_ERR_TLS_CERT: null,
    TETHER_ERR_NO_UPSTREAM: 503,
    TETHER_ERR_QUEUE_FULL: 503,
    TETHER_ERR_QUEUE_TIMEOUT: 503,
    TETHER_ERR_UPSTREAM_CONNECT: 503,
    TETHER_ERR_UPSTREAM_RESET: 502,
    TETHER_ERR_UPSTREAM_PROTOCOL: 502,
    TETHER_ERR_UPSTREAM_TLS: 502,
    TETHER_ERR_UPSTREAM_TIMEOUT: 504,
    TETHER_ERR_CLIENT_HEADER_TIMEOUT: 408,
    TETHER_ERR_CLIENT_BAD_REQUEST: 400,
    TETHER_ERR_CLIENT_HEADERS_TOO_LARGE: 431,
    TETHER_ERR_CLIENT_BAD_HOST: 400,
    TETHER_ERR_CLIENT_UPGRADE_BODY: 400,
    TETHER_ERR_CLIENT_EXPECTATION: 417,
    TETHER_ERR_CLIENT_ABORTED: null,
    TETHER_ERR_CLIENT_RAPID_RESET: null,
    TETHER_ERR_ADMIN_UNAUTHORIZED: 401,
    TETHER_ERR_ADMIN_FORBIDDEN_HOST: 403,
    TETHER_ERR_ADMIN_NOT_FOUND: 404,
    TETHER_ERR_ADMIN_METHOD: 405,
    TETHER_ERR_ADMIN_BAD_REQUEST: 400,
    TETHER_ERR_UNKNOWN_NODE: 404,
    TETHER_ERR_INVALID_NODE_UPDATE: 400
  })
})

t.test('codes are prefixed; messages and fixes say something', async (t) => {
  for (const [code, def] of Object.entries(errorCodes)) {
    t.match(code, /^TETHER_ERR_[A-Z_]+$/)
    t.ok(def.message.length > 10, `${code} has a message`)
    t.ok(def.fix.length > 10, `${code} has a fix`)
  }
})

t.test('docs/errors.md lists every code with its status, and no other', async (t) => {
  const page = readFileSync(fileURLToPath(new URL('../../../docs/errors.md', import.meta.url)), 'utf8')
  const start = page.indexOf('\n## @tether/balancer\n')
  t.not(start, -1, 'the page has a @tether/balancer section')
  const next = page.indexOf('\n## ', start + 1)
  const section = page.slice(start, next === -1 ? undefined : next)
  t.match(section, /\| code \| status \| message \| fix \|/, 'the table has the registry\'s columns')
  const documented = new Map<string, number | null>()
  for (const m of section.matchAll(/^\| `(TETHER_ERR_[A-Z_]+)` \| ([^|]*) \|/gm)) {
    const status = /^\d{3}\b/.exec((m[2] ?? '').trim())
    documented.set(m[1] ?? '', status === null ? null : Number(status[0]))
  }
  const registry = new Map(Object.entries(errorCodes).map(([code, def]) => [code, def.status ?? null]))
  t.same([...documented.keys()].sort(), [...registry.keys()].sort(), 'the same codes: none missing, none stale')
  for (const [code, status] of registry) t.equal(documented.get(code), status, `${code}: the same status`)
})

t.test('the error class', async (t) => {
  const err = new TetherBalancerError('TETHER_ERR_NO_UPSTREAM')
  t.equal(err.code, 'TETHER_ERR_NO_UPSTREAM')
  t.equal(err.status, 503)
  t.equal(err.message, errorCodes.TETHER_ERR_NO_UPSTREAM.message)
  t.ok(err instanceof Error)
  t.ok(err instanceof TetherBalancerError)
  // A copy of the class from a second install still recognises it (Symbol.for marker).
  const lookalike = Object.assign(new Error('x'), { [Symbol.for('tether.balancer.error')]: true })
  t.ok(lookalike instanceof TetherBalancerError)
  t.notOk(new Error('plain') instanceof TetherBalancerError)
  const cause = new Error('root')
  t.equal(new TetherBalancerError('TETHER_ERR_LISTEN', 'port busy', { cause }).cause, cause)
})

t.test('formatIssue: file, field, value', async (t) => {
  t.equal(formatIssue({ file: 'lb.yaml', field: 'retries', value: 'x', problem: 'must be an integer' }), 'lb.yaml: retries: must be an integer (got "x")')
  t.equal(formatIssue({ file: undefined, field: 'upstreams', value: undefined, problem: 'must be a list' }), 'upstreams: must be a list (missing)')
  t.match(formatIssue({ file: undefined, field: 'f', value: 'y'.repeat(200), problem: 'p' }), /\.\.\.\)$/, 'long values are cut')
})
