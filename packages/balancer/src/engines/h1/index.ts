/**
 * The h1 engine: HTTP/1.1 to upstreams over plain `node:net` sockets, a LIFO pool of idle
 * keep-alive connections per node, and the strict incremental parser in `parser.ts`.
 *
 * Why not undici or `http.request`: on the benchmark machine both spent more time in generic
 * client machinery (request objects, header validation, per-header callbacks across the wasm
 * boundary, stream plumbing) than in the proxying itself. Here a request costs one string and
 * one socket write, and a response one latin1 decode of the head; bodies pass as subarrays.
 * Measured in docs/benchmarks.md.
 *
 * Connection lifecycle: a connection serves one exchange at a time (no pipelining). It goes
 * back to the idle stack only when the response completed cleanly, the request body was fully
 * sent, and both sides allow keep-alive; anything unusual destroys it.
 *
 * Timers: a socket's timeout is set once, to the response timeout, and Node refreshes it on
 * every read and write, so it bounds both the wait for a response and the gaps in its body.
 * Re-arming it per request would allocate a Timeout and a bound function each time. Idle
 * expiry is done instead by one sweep per engine, and checked again when a connection is
 * taken from the stack.
 */
import { performance } from 'node:perf_hooks'
import { connect, type Socket } from 'node:net'
import {
  UpstreamError,
  type Engine, type EngineOptions, type ForwardRequest, type ResponseSink, type UpgradeSink,
  type UpstreamExchange, type UpstreamTarget, type FailurePhase
} from '../engine.js'
import { ResponseParser, type ParserHandler } from './parser.js'

const MAX_DECLINED_BODY = 64 * 1024

/** Serialise the request line and headers. */
function serializeHead (request: ForwardRequest, framing: string): string {
  let head = `${request.method} ${request.path} HTTP/1.1\r\n`
  const h = request.headers
  for (let i = 0; i < h.length; i += 2) head += `${h[i] as string}: ${h[i + 1] as string}\r\n`
  return head + framing + '\r\n'
}

/** Idle connections of one node. */
class NodePool {
  readonly idle: Connection[] = []
  readonly all = new Set<Connection>()
  released = false
  constructor (readonly target: UpstreamTarget, readonly engine: H1Engine) {}
}

/** One exchange: a request and its response on one connection. */
class Exchange implements UpstreamExchange, ParserHandler {
  conn: Connection | null = null
  finished = false
  bodyDone: boolean
  paused = false
  headDelivered = false
  // Request body plumbing, only for requests that have one.
  onBodyData: ((chunk: Buffer) => void) | null = null
  onBodyEnd: (() => void) | null = null
  onBodyAbort: (() => void) | null = null

  constructor (readonly pool: NodePool, readonly request: ForwardRequest, readonly sink: ResponseSink) {
    this.bodyDone = request.bodyKind === 'none'
  }

  abort (): void {
    if (this.finished) return
    this.finished = true
    this.#unhookBody()
    const conn = this.conn
    this.conn = null
    if (conn !== null) conn.destroy()
  }

  resume (): void {
    if (!this.paused) return
    this.paused = false
    this.conn?.socket.resume()
  }

  onHead (status: number, reason: string, headers: string[]): void {
    this.headDelivered = true
    this.sink.onHead(status, reason, headers)
  }

  onBody (chunk: Buffer): void {
    if (this.finished) return
    if (!this.sink.onData(chunk) && !this.finished) {
      this.paused = true
      this.conn?.socket.pause()
    }
  }

  onComplete (): void {
    if (this.finished) return
    this.finished = true
    const conn = this.conn
    this.conn = null
    if (conn !== null) {
      // An upstream that answers before reading the whole body (413, 401 …) leaves the
      // connection in an unknown state: do not reuse it.
      if (this.bodyDone) conn.release()
      else { this.#unhookBody(); conn.destroy() }
    }
    this.sink.onEnd()
  }

  fail (error: UpstreamError): void {
    if (this.finished) return
    this.finished = true
    this.#unhookBody()
    this.conn = null
    this.sink.onError(error, error.phase)
  }

  /** Write the request on a connected socket and stream the body, if any. */
  send (conn: Connection): void {
    this.conn = conn
    const request = this.request
    const socket = conn.socket
    conn.parser.begin(request.isHead, false)
    if (request.bodyKind === 'none') {
      socket.write(serializeHead(request, ''), 'latin1')
      return
    }
    const chunked = request.bodyKind === 'chunked'
    socket.write(serializeHead(request, chunked ? 'transfer-encoding: chunked\r\n' : ''), 'latin1')
    const body = request.body
    this.onBodyData = (chunk: Buffer) => {
      if (this.conn === null) return
      let ok: boolean
      if (chunked) {
        socket.cork()
        socket.write(`${chunk.length.toString(16)}\r\n`, 'latin1')
        socket.write(chunk)
        ok = socket.write('\r\n', 'latin1')
        socket.uncork()
      } else {
        ok = socket.write(chunk)
      }
      if (!ok) {
        body.pause()
        socket.once('drain', () => body.resume())
      }
    }
    this.onBodyEnd = () => {
      this.#unhookBody()
      if (chunked && this.conn !== null) socket.write('0\r\n\r\n', 'latin1')
      this.bodyDone = true
    }
    // The client went away mid-body: the upstream got a truncated request, so the
    // connection cannot be reused and the exchange is over.
    this.onBodyAbort = () => {
      if (this.bodyDone) return
      this.fail(new UpstreamError('client aborted the request body', 'CLIENT_ABORTED', 'response'))
      conn.destroy()
    }
    body.on('data', this.onBodyData)
    body.on('end', this.onBodyEnd)
    body.on('aborted', this.onBodyAbort)
    body.on('error', this.onBodyAbort)
  }

  #unhookBody (): void {
    const body = this.request.body
    if (this.onBodyData !== null) body.off('data', this.onBodyData)
    if (this.onBodyEnd !== null) body.off('end', this.onBodyEnd)
    if (this.onBodyAbort !== null) {
      body.off('aborted', this.onBodyAbort)
      body.off('error', this.onBodyAbort)
    }
    this.onBodyData = this.onBodyEnd = this.onBodyAbort = null
  }
}

/** One upstream TCP connection. Listeners are attached once, for its whole life. */
class Connection {
  readonly socket: Socket
  readonly parser: ResponseParser
  exchange: Exchange | null = null
  connected = false
  reused = false
  idle = false
  destroyed = false
  /** When it went idle (performance.now()), and how long it may stay so. */
  idleSince = 0
  idleTimeout = 0

  constructor (readonly pool: NodePool, first: Exchange) {
    this.exchange = first
    this.parser = new ResponseParser(first)
    const { target, engine } = pool
    this.socket = connect({ host: target.host, port: target.port, noDelay: true })
    this.socket.setTimeout(engine.options.connectTimeout)
    pool.all.add(this)
    this.socket.on('connect', () => {
      this.connected = true
      this.socket.setTimeout(engine.options.responseTimeout)
      const ex = this.exchange
      if (ex !== null && !ex.finished) ex.send(this)
    })
    this.socket.on('data', (chunk: Buffer) => this.#onData(chunk))
    this.socket.on('end', () => this.#onEnd())
    this.socket.on('timeout', () => this.#onTimeout())
    this.socket.on('error', (err: NodeJS.ErrnoException) => this.#onError(err))
    this.socket.on('close', () => this.#onClose())
  }

  /** Reuse for a new exchange (taken from the idle stack). */
  attach (ex: Exchange): void {
    this.idle = false
    this.reused = true
    this.exchange = ex
    this.parser.handler = ex
    ex.send(this)
  }

  /** The exchange completed cleanly: keep the connection if both sides allow it. */
  release (): void {
    const ex = this.exchange
    this.exchange = null
    const pool = this.pool
    const engine = pool.engine
    if (ex?.paused === true) this.socket.resume()
    if (!this.parser.keepAlive || pool.released || engine.closed || pool.idle.length >= engine.options.maxIdle) {
      this.destroy()
      return
    }
    this.idle = true
    const hint = this.parser.keepAliveHint
    // Give back the connection a second before the server's own timeout, as undici does, so
    // that we do not send a request on a connection the server is closing.
    this.idleTimeout = hint > 1000 ? Math.min(engine.options.keepAliveTimeout, hint - 1000) : engine.options.keepAliveTimeout
    this.idleSince = performance.now()
    pool.idle.push(this)
    engine.sweepSoon()
  }

  destroy (): void {
    if (this.destroyed) return
    this.destroyed = true
    this.#leaveIdle()
    this.pool.all.delete(this)
    this.socket.destroy()
  }

  #leaveIdle (): void {
    if (!this.idle) return
    this.idle = false
    const list = this.pool.idle
    const at = list.lastIndexOf(this)
    if (at !== -1) list.splice(at, 1)
  }

  #onData (chunk: Buffer): void {
    const ex = this.exchange
    if (ex === null || ex.finished) {
      // Bytes on an idle connection: the server is not speaking HTTP/1.1 as we expect.
      this.destroy()
      return
    }
    const parser = this.parser
    const used = parser.execute(chunk)
    if (parser.failed) {
      this.#fail(new UpstreamError(`invalid response from ${this.pool.target.name}: ${parser.error}`, 'UPSTREAM_PROTOCOL', 'response'))
      return
    }
    // Bytes after a complete response, with no request pipelined: not reusable.
    if (used < chunk.length && !this.destroyed && this.exchange === null) this.destroy()
  }

  #onEnd (): void {
    const ex = this.exchange
    if (ex !== null && !ex.finished) {
      if (this.parser.finish()) return
      this.#fail(this.#interrupted('closed the connection'))
      return
    }
    this.destroy()
  }

  #onTimeout (): void {
    const ex = this.exchange
    if (ex === null || ex.finished) { this.destroy(); return }
    if (!this.connected) {
      this.#fail(new UpstreamError(`connect to ${this.pool.target.name} timed out`, 'UPSTREAM_CONNECT_TIMEOUT', 'connect'))
    } else if (!ex.headDelivered) {
      this.#fail(new UpstreamError(`${this.pool.target.name} did not answer in time`, 'UPSTREAM_TIMEOUT', 'timeout'))
    } else {
      this.#fail(new UpstreamError(`${this.pool.target.name} stalled mid-response`, 'UPSTREAM_TIMEOUT', 'response'))
    }
  }

  #onError (err: NodeJS.ErrnoException): void {
    const ex = this.exchange
    if (ex === null || ex.finished) { this.destroy(); return }
    if (!this.connected) {
      this.#fail(new UpstreamError(`connect to ${this.pool.target.name} failed: ${err.code ?? err.message}`, err.code ?? 'ECONNECT', 'connect'))
      return
    }
    this.#fail(this.#interrupted(`failed: ${err.code ?? err.message}`))
  }

  #onClose (): void {
    this.destroyed = true
    this.#leaveIdle()
    this.pool.all.delete(this)
    const ex = this.exchange
    if (ex !== null && !ex.finished) {
      this.#fail(this.connected ? this.#interrupted('closed the connection') : new UpstreamError(`connect to ${this.pool.target.name} failed`, 'ECONNECT', 'connect'))
    }
  }

  /** The connection broke mid-exchange: `request` phase if no response byte had arrived. */
  #interrupted (what: string): UpstreamError {
    const phase: FailurePhase = this.parser.started ? 'response' : 'request'
    return new UpstreamError(`${this.pool.target.name} ${what}${this.reused ? ' (reused connection)' : ''}`, 'UPSTREAM_RESET', phase)
  }

  #fail (error: UpstreamError): void {
    const ex = this.exchange
    this.exchange = null
    this.destroy()
    ex?.fail(error)
  }
}

/** The most recently idle connection still within its idle timeout; expired ones are closed. */
function takeIdle (pool: NodePool): Connection | undefined {
  const list = pool.idle
  let conn = list.pop()
  if (conn === undefined) return undefined
  const now = performance.now()
  while (conn !== undefined && now - conn.idleSince > conn.idleTimeout) {
    conn.idle = false
    conn.destroy()
    conn = list.pop()
  }
  return conn
}

/**
 * The h1 engine.
 *
 * @example
 * ```ts
 * const engine = new H1Engine({ connectTimeout: 3000, responseTimeout: 60000, maxIdle: 128, keepAliveTimeout: 4000 })
 * ```
 */
export class H1Engine implements Engine {
  readonly name = 'h1' as const
  readonly options: EngineOptions
  closed = false
  readonly #pools = new Map<UpstreamTarget, NodePool>()
  #sweeper: NodeJS.Timeout | null = null

  constructor (options: EngineOptions) {
    this.options = options
  }

  request (target: UpstreamTarget, request: ForwardRequest, sink: ResponseSink): UpstreamExchange {
    let pool = this.#pools.get(target)
    if (pool === undefined) {
      pool = new NodePool(target, this)
      this.#pools.set(target, pool)
    }
    const ex = new Exchange(pool, request, sink)
    if (this.closed) {
      queueMicrotask(() => ex.fail(new UpstreamError('engine closed', 'ENGINE_CLOSED', 'connect')))
      return ex
    }
    const conn = takeIdle(pool)
    if (conn !== undefined) conn.attach(ex)
    else ex.conn = new Connection(pool, ex)
    return ex
  }

  upgrade (target: UpstreamTarget, request: ForwardRequest, protocol: string, sink: UpgradeSink): void {
    const options = this.options
    const socket = connect({ host: target.host, port: target.port, noDelay: true })
    socket.setTimeout(options.connectTimeout)
    let connected = false
    let done = false
    let status = 0
    let reason = ''
    let headers: string[] = []
    const body: Buffer[] = []
    let bodyBytes = 0
    const parser = new ResponseParser({
      onHead (s, r, h) { status = s; reason = r; headers = h },
      onBody (chunk) {
        bodyBytes += chunk.length
        if (bodyBytes > MAX_DECLINED_BODY) finish(new UpstreamError(`${target.name} declined the upgrade with a body too large`, 'UPSTREAM_PROTOCOL', 'response'))
        else body.push(chunk)
      },
      onComplete () {
        if (done) return
        finish(null)
        socket.destroy()
        sink.onResponse(status, reason, headers, Buffer.concat(body))
      }
    })
    parser.begin(request.isHead, true)
    const onConnect = (): void => {
      connected = true
      socket.setTimeout(options.responseTimeout)
      // Upgrade requests carry no body worth streaming (RFC 6455 handshakes have none).
      socket.write(serializeHead(request, `connection: upgrade\r\nupgrade: ${protocol}\r\n`), 'latin1')
    }
    const onData = (chunk: Buffer): void => {
      const used = parser.execute(chunk)
      if (done) return
      if (parser.failed) {
        finish(new UpstreamError(`invalid response from ${target.name}: ${parser.error}`, 'UPSTREAM_PROTOCOL', 'response'))
      } else if (parser.upgraded) {
        finish(null)
        socket.setTimeout(0)
        sink.onUpgrade(reason, headers, socket, chunk.subarray(used))
      }
    }
    const onTimeout = (): void => {
      finish(connected
        ? new UpstreamError(`${target.name} did not answer the upgrade in time`, 'UPSTREAM_TIMEOUT', 'timeout')
        : new UpstreamError(`connect to ${target.name} timed out`, 'UPSTREAM_CONNECT_TIMEOUT', 'connect'))
    }
    const onError = (err: NodeJS.ErrnoException): void => {
      const phase: FailurePhase = !connected ? 'connect' : parser.started ? 'response' : 'request'
      finish(new UpstreamError(`${connected ? '' : 'connect to '}${target.name} failed: ${err.code ?? err.message}`, err.code ?? 'ECONNECT', phase))
    }
    const onEnd = (): void => {
      if (parser.finish()) return
      finish(new UpstreamError(`${target.name} closed the connection during the upgrade`, 'UPSTREAM_RESET', parser.started ? 'response' : 'request'))
    }
    const onClose = (): void => {
      finish(new UpstreamError(`${target.name} closed the connection during the upgrade`, 'UPSTREAM_RESET', connected ? 'request' : 'connect'))
    }
    // Only our own listeners come off: net.Socket keeps internal ones (half-close handling).
    function finish (error: UpstreamError | null): void {
      if (done) return
      done = true
      socket.off('connect', onConnect)
      socket.off('data', onData)
      socket.off('timeout', onTimeout)
      socket.off('error', onError)
      socket.off('end', onEnd)
      socket.off('close', onClose)
      if (error !== null) {
        socket.destroy()
        sink.onError(error, error.phase)
      }
    }
    socket.on('connect', onConnect)
    socket.on('data', onData)
    socket.on('timeout', onTimeout)
    socket.on('error', onError)
    socket.on('end', onEnd)
    socket.on('close', onClose)
  }

  release (target: UpstreamTarget): void {
    const pool = this.#pools.get(target)
    if (pool === undefined) return
    pool.released = true
    for (const conn of [...pool.idle]) conn.destroy()
    this.#pools.delete(target)
  }

  retire (graceMs: number): void {
    for (const target of [...this.#pools.keys()]) this.release(target)
    setTimeout(() => { this.close().catch(() => {}) }, graceMs).unref()
  }

  /** Make sure the idle sweep runs while any connection is idle. */
  sweepSoon (): void {
    if (this.#sweeper !== null || this.closed) return
    const every = Math.max(100, Math.min(1000, Math.floor(this.options.keepAliveTimeout / 4)))
    this.#sweeper = setInterval(() => {
      let idle = 0
      const now = performance.now()
      for (const pool of this.#pools.values()) {
        // The stack is LIFO: the oldest idle connections are at the bottom.
        const list = pool.idle
        while (list.length > 0 && now - (list[0] as Connection).idleSince > (list[0] as Connection).idleTimeout) (list[0] as Connection).destroy()
        idle += list.length
      }
      if (idle === 0 && this.#sweeper !== null) { clearInterval(this.#sweeper); this.#sweeper = null }
    }, every)
    this.#sweeper.unref()
  }

  async close (): Promise<void> {
    this.closed = true
    if (this.#sweeper !== null) clearInterval(this.#sweeper)
    this.#sweeper = null
    for (const pool of this.#pools.values()) {
      for (const conn of [...pool.all]) conn.destroy()
    }
    this.#pools.clear()
  }
}

