/**
 * One h1 exchange: a request written on a connection, its body streamed, its response parsed
 * and handed to the sink. The request line and headers go out as one latin1 string in one
 * socket write; body chunks pass through as they come, framed when the client sent chunked.
 */
import type { ForwardRequest, ResponseSink, UpstreamExchange } from '../engine.js'
import type { UpstreamError } from '../failure.js'
import { clientAborted, serializeHead } from '../wire.js'
import type { Connection, ConnectionJob } from './connection.js'

const CHUNKED = 'transfer-encoding: chunked\r\n'

/** A request and its response on one connection. */
export class Exchange implements UpstreamExchange, ConnectionJob {
  conn: Connection | null = null
  finished = false
  bodyDone: boolean
  paused = false
  headDelivered = false
  // Request body plumbing, only for requests that have one.
  onBodyData: ((chunk: Buffer) => void) | null = null
  onBodyEnd: (() => void) | null = null
  onBodyAbort: (() => void) | null = null

  constructor (readonly request: ForwardRequest, readonly sink: ResponseSink) {
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
    this.sink.onError(error)
  }

  /** Write the request on a connected socket and stream the body, if any. */
  send (conn: Connection): void {
    this.conn = conn
    const request = this.request
    const socket = conn.socket
    conn.parser.begin(request.isHead, false)
    const startLine = `${request.method} ${request.path} HTTP/1.1`
    if (request.bodyKind === 'none') {
      socket.write(serializeHead(startLine, request.headers), 'latin1')
      return
    }
    const chunked = request.bodyKind === 'chunked'
    socket.write(serializeHead(startLine, request.headers, chunked ? CHUNKED : ''), 'latin1')
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
      this.fail(clientAborted('client aborted the request body'))
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
