/**
 * The admin API: the balancer's runtime interface, like HAProxy's stats socket. Bound to
 * 127.0.0.1 unless told otherwise, with an optional bearer token.
 *
 *   GET   /                    HTML status page
 *   GET   /api/nodes           every node (state, weight, health, connections, counters, last check)
 *   GET   /api/nodes/:name     one node
 *   PATCH /api/nodes/:name     {"state": …, "weight": …}, checked by the node fields' own rules
 *   GET   /metrics             Prometheus text format
 *   GET   /api/health          the balancer's own liveness, and how many nodes are up
 *   GET   /api/stats?since=T   per-node rates, latency percentiles, answers by class and the
 *                              last 15 minutes as one point per second (after Unix second T)
 *   GET   /api/workers         the worker processes (`workers`), [] in one process
 *
 * Without a token, requests whose Host is not an IP literal, `localhost` or an allowed host are
 * refused: a web page cannot then reach the API through DNS rebinding. Changes require
 * PATCH with a JSON body, which a cross-site form cannot send.
 */
import { createHash, timingSafeEqual } from 'node:crypto'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { isIP } from 'node:net'
import type { Logger } from 'pino'
import type { ResolvedAdmin, ResolvedListen } from '../config/types.js'
import type { NodeUpdate } from '../config/types.js'
import { TetherBalancerError, errorCodes, type ErrorCode } from '../errors.js'
import type { NodeSnapshot } from '../pool/snapshot.js'
import { STATUS_PAGE_HEADERS, renderStatusPage, type StatusPageInfo } from './status-page.js'
import type { StatsReport } from './timeline.js'

const MAX_BODY = 16 * 1024

/** What the admin API needs from the balancer. */
export interface AdminBackend {
  /** (A promise with several workers: the supervisor asks them for their counters.) */
  nodes (): NodeSnapshot[] | Promise<NodeSnapshot[]>
  /** Validates `update` (throws `TETHER_ERR_UNKNOWN_NODE`, `TETHER_ERR_INVALID_NODE_UPDATE`). */
  setNode (name: string, update: NodeUpdate): NodeSnapshot | Promise<NodeSnapshot>
  metrics (): Promise<{ contentType: string, body: string }>
  settings (): ResolvedAdmin
  pageInfo (): StatusPageInfo
  /** The timeline's report: series after Unix second `since` (null: all of it). */
  stats (since: number | null): StatsReport | Promise<StatsReport>
  /** The worker processes, with several (`workers`); absent in one process. */
  workers? (): Promise<WorkerInfo[]>
  readonly log: Logger
}

/**
 * One worker process, as `GET /api/workers` shows it.
 *
 * @example
 * ```ts
 * const w: WorkerInfo = { id: 1, pid: 4242, startedAt: '2026-01-01T00:00:00.000Z', requests: 120, activeConnections: 3 }
 * ```
 */
export interface WorkerInfo {
  /** The cluster's worker id (a replacement gets a new one). */
  readonly id: number
  readonly pid: number
  readonly startedAt: string
  /** Requests (attempts) this worker sent to nodes, and those in flight now. */
  readonly requests: number
  readonly activeConnections: number
}

function digest (text: string): Buffer {
  return createHash('sha256').update(text).digest()
}

/**
 * Check an Authorization header against the token: `Bearer <token>`, or Basic with the token as
 * password (so that a browser can open the status page). Both sides are hashed first, so the
 * comparison takes the same time whatever the guess, including its length.
 */
export function checkToken (header: string | undefined, token: string): boolean {
  if (header === undefined) return false
  let presented: string | undefined
  if (/^bearer /i.test(header)) presented = header.slice(7).trim()
  else if (/^basic /i.test(header)) {
    const decoded = Buffer.from(header.slice(6).trim(), 'base64').toString('utf8')
    const colon = decoded.indexOf(':')
    presented = colon === -1 ? decoded : decoded.slice(colon + 1)
  }
  if (presented === undefined) return false
  return timingSafeEqual(digest(presented), digest(token))
}

/** Whether a Host header may reach a token-less admin API. */
export function hostAllowed (host: string | undefined, allowed: readonly string[]): boolean {
  if (host === undefined || host === '') return false
  let name = host.toLowerCase()
  if (name.startsWith('[')) name = name.slice(1, name.indexOf(']'))
  else if (name.lastIndexOf(':') !== -1 && isIP(name) !== 6) name = name.slice(0, name.lastIndexOf(':'))
  return isIP(name) !== 0 || name === 'localhost' || allowed.includes(name)
}

function sendJson (res: ServerResponse, status: number, value: unknown, compact = false): void {
  const body = (compact ? JSON.stringify(value) : JSON.stringify(value, null, 2)) + '\n'
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' })
  res.end(body)
}

function sendError (res: ServerResponse, code: ErrorCode, message?: string, extra?: Record<string, string>): void {
  const status = errorCodes[code].status ?? 500
  if (extra !== undefined) for (const [k, v] of Object.entries(extra)) res.setHeader(k, v)
  sendJson(res, status, { error: { code, message: message ?? errorCodes[code].message } })
}

function readBody (req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let size = 0
    const chunks: Buffer[] = []
    const onData = (chunk: Buffer): void => {
      size += chunk.length
      if (size <= MAX_BODY) { chunks.push(chunk); return }
      // Stop buffering but keep reading (and dropping) so that the error answer gets out.
      req.off('data', onData)
      req.resume()
      reject(new TetherBalancerError('TETHER_ERR_ADMIN_BAD_REQUEST', `request body larger than ${MAX_BODY} bytes`))
    }
    req.on('data', onData)
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')))
    req.on('error', reject)
  })
}

/**
 * The admin HTTP server.
 *
 * @example
 * ```ts
 * const admin = new AdminServer(backend)
 * const port = await admin.listen({ host: '127.0.0.1', port: 0 })
 * ```
 */
export class AdminServer {
  readonly #backend: AdminBackend
  readonly #server: Server

  constructor (backend: AdminBackend) {
    this.#backend = backend
    this.#server = createServer({ headersTimeout: 10_000, requestTimeout: 30_000 }, (req, res) => {
      this.#handle(req, res).catch((err: unknown) => {
        const code = err instanceof TetherBalancerError ? err.code : 'TETHER_ERR_ADMIN_BAD_REQUEST'
        this.#backend.log.warn({ admin: true, code, err: (err as Error).message }, 'admin request failed')
        if (res.headersSent) { res.destroy(); return }
        if (!req.complete) res.shouldKeepAlive = false
        sendError(res, code, (err as Error).message)
      })
    })
  }

  listen (address: ResolvedListen): Promise<number> {
    return new Promise((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException): void => {
        reject(new TetherBalancerError('TETHER_ERR_LISTEN', `admin API cannot listen on ${address.host ?? '*'}:${address.port}: ${err.code ?? err.message}`, { cause: err }))
      }
      this.#server.once('error', onError)
      this.#server.listen(address.port, address.host, () => {
        this.#server.off('error', onError)
        const bound = this.#server.address()
        resolve(typeof bound === 'object' && bound !== null ? bound.port : address.port)
      })
    })
  }

  close (): Promise<void> {
    return new Promise((resolve) => {
      this.#server.close(() => resolve())
      this.#server.closeAllConnections()
    })
  }

  async #handle (req: IncomingMessage, res: ServerResponse): Promise<void> {
    const settings = this.#backend.settings()
    const log = this.#backend.log
    if (settings.token !== null) {
      if (!checkToken(req.headers.authorization, settings.token)) {
        log.warn({ admin: true, code: 'TETHER_ERR_ADMIN_UNAUTHORIZED', peer: req.socket.remoteAddress, url: req.url }, 'admin request without a valid token')
        sendError(res, 'TETHER_ERR_ADMIN_UNAUTHORIZED', undefined, { 'www-authenticate': 'Basic realm="tether-balancer", charset="UTF-8"' })
        return
      }
    } else if (!hostAllowed(req.headers.host, settings.allowedHosts)) {
      log.warn({ admin: true, code: 'TETHER_ERR_ADMIN_FORBIDDEN_HOST', host: req.headers.host }, 'admin request with a foreign Host header')
      sendError(res, 'TETHER_ERR_ADMIN_FORBIDDEN_HOST')
      return
    }

    const url = new URL(req.url ?? '/', 'http://admin.invalid')
    const path = url.pathname
    const method = req.method ?? 'GET'
    if (path === '/' || path === '/index.html') {
      if (method !== 'GET' && method !== 'HEAD') { sendError(res, 'TETHER_ERR_ADMIN_METHOD', undefined, { allow: 'GET, HEAD' }); return }
      const report = await this.#backend.stats(Math.floor(Date.now() / 1000))
      const html = renderStatusPage(await this.#backend.nodes(), this.#backend.pageInfo(), report.summary, report.totals)
      res.writeHead(200, { ...STATUS_PAGE_HEADERS, 'content-length': Buffer.byteLength(html) })
      res.end(method === 'HEAD' ? undefined : html)
      return
    }
    if (path === '/metrics') {
      if (method !== 'GET') { sendError(res, 'TETHER_ERR_ADMIN_METHOD', undefined, { allow: 'GET' }); return }
      const { contentType, body } = await this.#backend.metrics()
      res.writeHead(200, { 'content-type': contentType, 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' })
      res.end(body)
      return
    }
    if (path === '/api/health') {
      const nodes = await this.#backend.nodes()
      sendJson(res, 200, { status: 'ok', nodes: nodes.length, nodesUp: nodes.filter((n) => n.health === 'up' && n.state !== 'maint').length })
      return
    }
    if (path === '/api/stats') {
      if (method !== 'GET') { sendError(res, 'TETHER_ERR_ADMIN_METHOD', undefined, { allow: 'GET' }); return }
      const raw = url.searchParams.get('since')
      const since = raw === null || raw === '' ? null : Number(raw)
      if (since !== null && !Number.isSafeInteger(since)) { sendError(res, 'TETHER_ERR_ADMIN_BAD_REQUEST', '`since` must be a Unix time in whole seconds'); return }
      sendJson(res, 200, await this.#backend.stats(since), true)
      return
    }
    if (path === '/api/workers') {
      if (method !== 'GET') { sendError(res, 'TETHER_ERR_ADMIN_METHOD', undefined, { allow: 'GET' }); return }
      sendJson(res, 200, { workers: this.#backend.workers === undefined ? [] : await this.#backend.workers() })
      return
    }
    if (path === '/api/nodes') {
      if (method !== 'GET') { sendError(res, 'TETHER_ERR_ADMIN_METHOD', undefined, { allow: 'GET' }); return }
      sendJson(res, 200, { nodes: await this.#backend.nodes() })
      return
    }
    if (path.startsWith('/api/nodes/')) {
      let name: string
      try { name = decodeURIComponent(path.slice('/api/nodes/'.length)) } catch { sendError(res, 'TETHER_ERR_UNKNOWN_NODE'); return }
      if (method === 'GET') {
        const node = (await this.#backend.nodes()).find((n) => n.name === name)
        if (node === undefined) sendError(res, 'TETHER_ERR_UNKNOWN_NODE', `no upstream node is named ${JSON.stringify(name)}`)
        else sendJson(res, 200, node)
        return
      }
      if (method !== 'PATCH') { sendError(res, 'TETHER_ERR_ADMIN_METHOD', undefined, { allow: 'GET, PATCH' }); return }
      if (!(req.headers['content-type'] ?? '').toLowerCase().startsWith('application/json')) {
        sendError(res, 'TETHER_ERR_ADMIN_BAD_REQUEST')
        return
      }
      const text = await readBody(req)
      let update: unknown
      try { update = JSON.parse(text) } catch { sendError(res, 'TETHER_ERR_ADMIN_BAD_REQUEST', 'the body is not valid JSON'); return }
      if (typeof update !== 'object' || update === null || Array.isArray(update)) { sendError(res, 'TETHER_ERR_ADMIN_BAD_REQUEST'); return }
      // Checked by setNode, with the same rules as the configuration's node fields.
      const snapshot = await this.#backend.setNode(name, update as NodeUpdate)
      log.info({ admin: true, node: name, ...update, peer: req.socket.remoteAddress }, 'node updated through the admin API')
      sendJson(res, 200, snapshot)
      return
    }
    sendError(res, 'TETHER_ERR_ADMIN_NOT_FOUND')
  }
}
