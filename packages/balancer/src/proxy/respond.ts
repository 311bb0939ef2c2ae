/**
 * Short, clear error answers for clients: status from the error registry, a one-line body that
 * names the code, and no internal detail (no node names or addresses).
 */
import { STATUS_CODES, type ServerResponse } from 'node:http'
import type { Duplex } from 'node:stream'
import { errorCodes, type ErrorCode } from '../errors.js'

/** Retry-After on every 503 the balancer sends (no node, or overloaded nodes). */
const RETRY_AFTER_SECONDS = '1'

function body (code: ErrorCode): { status: number, text: string } {
  const def = errorCodes[code]
  const status = def.status ?? 500
  return { status, text: `${status} ${STATUS_CODES[status] ?? ''}: ${def.message} (${code})\n` }
}

/**
 * Answer an HTTP request with the error `code`.
 *
 * @example
 * ```ts
 * respondError(res, 'TETHER_ERR_NO_UPSTREAM') // 503 with a one-line text body
 * ```
 */
export function respondError (res: ServerResponse, code: ErrorCode, closeConnection = false): void {
  if (res.headersSent) { res.destroy(); return }
  const { status, text } = body(code)
  const headers: string[] = [
    'content-type', 'text/plain; charset=utf-8',
    'content-length', String(Buffer.byteLength(text)),
    'cache-control', 'no-store',
    'x-tether-error', code
  ]
  // Overloaded or no node: tell clients and crawlers when to come back rather than hammer.
  if (status === 503) headers.push('retry-after', RETRY_AFTER_SECONDS)
  if (closeConnection) res.shouldKeepAlive = false
  res.writeHead(status, headers)
  res.end(text)
}

/**
 * How long a connection answered on the raw socket may stay half-closed while the client reads
 * the answer (nginx's lingering close). `end()` alone waits for the client's FIN, which a
 * slowloris never sends: it would hold the connection, with no timeout left, for ever.
 */
const LINGER_MS = 2000

function destroySocket (this: Duplex): void {
  this.destroy()
}

/** Answer on a raw socket (upgrade requests, client errors), then close it within {@link LINGER_MS}. */
export function respondErrorRaw (socket: Duplex, code: ErrorCode): void {
  if (!socket.writable) { socket.destroy(); return }
  const { status, text } = body(code)
  const timer = setTimeout(destroySocket.bind(socket), LINGER_MS)
  timer.unref()
  socket.once('close', () => clearTimeout(timer))
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\n` +
    'content-type: text/plain; charset=utf-8\r\n' +
    `content-length: ${Buffer.byteLength(text)}\r\n` +
    (status === 503 ? `retry-after: ${RETRY_AFTER_SECONDS}\r\n` : '') +
    `x-tether-error: ${code}\r\nconnection: close\r\n\r\n${text}`
  )
}
