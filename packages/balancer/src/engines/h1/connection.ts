/**
 * One upstream TCP connection of the h1 engine, and the idle stack of each node.
 *
 * A connection serves one exchange at a time (no pipelining). It goes back to the idle stack
 * only when the response completed cleanly, the request body was fully sent, and both sides
 * allow keep-alive; anything unusual destroys it.
 *
 * Timers: a socket's timeout is set once, to the response timeout, and Node refreshes it on
 * every read and write, so it bounds both the wait for a response and the gaps in its body.
 * Re-arming it per request would allocate a Timeout and a bound function each time. Idle
 * expiry is done instead by one sweep per engine (`H1Engine.sweepSoon`), and checked again
 * when a connection is taken from the stack.
 */
import { performance } from 'node:perf_hooks'
import { connect, type Socket } from 'node:net'
import { connect as tlsConnect, type TLSSocket } from 'node:tls'
import type { EngineOptions, UpstreamTarget } from '../engine.js'
import { UpstreamError, type FailurePhase } from '../failure.js'
import { ResponseParser, type ParserHandler } from './parser.js'
import { isTlsFailure, tlsFailure, tlsOptions } from '../tls.js'

/** What a connection needs from the engine that owns it. */
export interface ConnectionOwner {
  readonly options: EngineOptions
  readonly closed: boolean
  /** Make sure the idle sweep runs. */
  sweepSoon (): void
}

/** What a connection needs from the exchange it serves. */
export interface ConnectionJob extends ParserHandler {
  readonly finished: boolean
  /** The response head reached the sink (a timeout after it is a stall, not a late answer). */
  readonly headDelivered: boolean
  /** The sink asked for a pause; released connections resume reading. */
  readonly paused: boolean
  /** Write the request on this (connected) connection. */
  send (conn: Connection): void
  fail (error: UpstreamError): void
}

/** Idle and busy connections of one node. */
export class NodeConnections {
  readonly idle: Connection[] = []
  readonly all = new Set<Connection>()
  released = false
  /** The last TLS session of an https:// node, offered again so that new connections resume. */
  session: Buffer | undefined = undefined
  constructor (readonly target: UpstreamTarget, readonly owner: ConnectionOwner) {}

  /** The most recently idle connection still within its idle timeout; expired ones are closed. */
  takeIdle (): Connection | undefined {
    const list = this.idle
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

  /** Close the connections idle for longer than their timeout; returns how many stay idle. */
  sweep (now: number): number {
    // The stack is LIFO: the oldest idle connections are at the bottom.
    const list = this.idle
    while (list.length > 0 && now - (list[0] as Connection).idleSince > (list[0] as Connection).idleTimeout) (list[0] as Connection).destroy()
    return list.length
  }
}

/** One upstream TCP connection. Listeners are attached once, for its whole life. */
export class Connection {
  readonly socket: Socket
  readonly parser: ResponseParser
  job: ConnectionJob | null
  connected = false
  reused = false
  idle = false
  destroyed = false
  /** When it went idle (performance.now()), and how long it may stay so. */
  idleSince = 0
  idleTimeout = 0

  constructor (readonly node: NodeConnections, first: ConnectionJob) {
    this.job = first
    this.parser = new ResponseParser(first)
    const { target, owner } = node
    const tls = target.tls ?? null
    if (tls === null) {
      this.socket = connect({ host: target.host, port: target.port, noDelay: true })
    } else {
      const socket: TLSSocket = tlsConnect({ host: target.host, port: target.port, ...tlsOptions(tls), ...(node.session === undefined ? {} : { session: node.session }) })
      socket.setNoDelay(true)
      socket.on('session', (session: Buffer) => { node.session = session })
      this.socket = socket
    }
    this.socket.setTimeout(owner.options.connectTimeout)
    node.all.add(this)
    // Over TLS the connection is usable once the handshake (and verification) is done.
    this.socket.on(tls === null ? 'connect' : 'secureConnect', () => {
      this.connected = true
      this.socket.setTimeout(owner.options.responseTimeout)
      const job = this.job
      if (job !== null && !job.finished) job.send(this)
    })
    this.socket.on('data', (chunk: Buffer) => this.#onData(chunk))
    this.socket.on('end', () => this.#onEnd())
    this.socket.on('timeout', () => this.#onTimeout())
    this.socket.on('error', (err: NodeJS.ErrnoException) => this.#onError(err))
    this.socket.on('close', () => this.#onClose())
  }

  /** Reuse for a new exchange (taken from the idle stack). */
  attach (job: ConnectionJob): void {
    this.idle = false
    this.reused = true
    this.job = job
    this.parser.handler = job
    job.send(this)
  }

  /** The exchange completed cleanly: keep the connection if both sides allow it. */
  release (): void {
    const job = this.job
    this.job = null
    const node = this.node
    const owner = node.owner
    if (job?.paused === true) this.socket.resume()
    if (!this.parser.keepAlive || node.released || owner.closed || node.idle.length >= owner.options.maxIdle) {
      this.destroy()
      return
    }
    this.idle = true
    const hint = this.parser.keepAliveHint
    // Give back the connection a second before the server's own timeout, as undici does, so
    // that we do not send a request on a connection the server is closing.
    this.idleTimeout = hint > 1000 ? Math.min(owner.options.keepAliveTimeout, hint - 1000) : owner.options.keepAliveTimeout
    this.idleSince = performance.now()
    node.idle.push(this)
    owner.sweepSoon()
  }

  destroy (): void {
    if (this.destroyed) return
    this.destroyed = true
    this.#leaveIdle()
    this.node.all.delete(this)
    this.socket.destroy()
  }

  #leaveIdle (): void {
    if (!this.idle) return
    this.idle = false
    const list = this.node.idle
    const at = list.lastIndexOf(this)
    if (at !== -1) list.splice(at, 1)
  }

  #onData (chunk: Buffer): void {
    const job = this.job
    if (job === null || job.finished) {
      // Bytes on an idle connection: the server is not speaking HTTP/1.1 as we expect.
      this.destroy()
      return
    }
    const parser = this.parser
    const used = parser.execute(chunk)
    if (parser.failed) {
      this.#fail(new UpstreamError(`invalid response from ${this.node.target.name}: ${parser.error}`, 'protocol', 'response'))
      return
    }
    // Bytes after a complete response, with no request pipelined: not reusable.
    if (used < chunk.length && !this.destroyed && this.job === null) this.destroy()
  }

  #onEnd (): void {
    const job = this.job
    if (job !== null && !job.finished) {
      if (this.parser.finish()) return
      this.#fail(this.#interrupted('closed the connection'))
      return
    }
    this.destroy()
  }

  #onTimeout (): void {
    const job = this.job
    if (job === null || job.finished) { this.destroy(); return }
    const name = this.node.target.name
    if (!this.connected) {
      this.#fail(new UpstreamError(`connect to ${name} timed out`, 'connect', 'connect', 'connect timeout'))
    } else if (!job.headDelivered) {
      this.#fail(new UpstreamError(`${name} did not answer in time`, 'timeout', 'timeout'))
    } else {
      this.#fail(new UpstreamError(`${name} stalled mid-response`, 'timeout', 'response'))
    }
  }

  #onError (err: NodeJS.ErrnoException): void {
    const job = this.job
    if (job === null || job.finished) { this.destroy(); return }
    if (!this.connected) {
      if (isTlsFailure(err.code)) { this.#fail(tlsFailure(this.node.target.name, err)); return }
      this.#fail(new UpstreamError(`connect to ${this.node.target.name} failed: ${err.code ?? err.message}`, 'connect', 'connect', err.code))
      return
    }
    this.#fail(this.#interrupted(`failed: ${err.code ?? err.message}`, err.code))
  }

  #onClose (): void {
    this.destroyed = true
    this.#leaveIdle()
    this.node.all.delete(this)
    const job = this.job
    if (job !== null && !job.finished) {
      this.#fail(this.connected ? this.#interrupted('closed the connection') : new UpstreamError(`connect to ${this.node.target.name} failed`, 'connect', 'connect'))
    }
  }

  /** The connection broke mid-exchange: `request` phase if no response byte had arrived. */
  #interrupted (what: string, code?: string): UpstreamError {
    const phase: FailurePhase = this.parser.started ? 'response' : 'request'
    return new UpstreamError(`${this.node.target.name} ${what}${this.reused ? ' (reused connection)' : ''}`, 'reset', phase, code)
  }

  #fail (error: UpstreamError): void {
    const job = this.job
    this.job = null
    this.destroy()
    job?.fail(error)
  }
}
