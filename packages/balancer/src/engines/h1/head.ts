/**
 * The response head for the h1 parser: the status line and the header fields the framing
 * depends on (Content-Length, Transfer-Encoding, Connection, Keep-Alive), read strictly as a
 * proxy must (RFC 9112): obsolete line folding, bare LF and malformed or conflicting
 * Content-Length are errors. Other header names and values are not re-validated here: Node's
 * `writeHead` rejects invalid ones before anything reaches the client.
 */
import { lowerEquals } from '../wire.js'

/** One head's facts. The parser keeps one and refills it for every head, so parsing allocates only the header list. */
export class ResponseHead {
  status = 0
  reason = ''
  /** Flat `[name, value, …]` as received, values trimmed. */
  headers: string[] = []
  /** -1 when absent. */
  contentLength = -1
  /** The Transfer-Encoding codings, joined, or undefined. */
  transferEncoding: string | undefined = undefined
  /** What the head says about reuse (HTTP/1.1 defaults to keep-alive, 1.0 to close). */
  keepAlive = true
  /** The server's Keep-Alive timeout hint (ms), or -1. */
  keepAliveHint = -1
}

/** Parse a Content-Length value ("5", or "5, 5" as some servers fold duplicates); -1 when invalid. */
function parseContentLength (value: string): number {
  let result = -1
  for (const part of value.split(',')) {
    const text = part.trim()
    if (text.length === 0 || text.length > 15) return -1
    let n = 0
    for (let i = 0; i < text.length; i++) {
      const d = text.charCodeAt(i) - 48
      if (d < 0 || d > 9) return -1
      n = n * 10 + d
    }
    if (result !== -1 && result !== n) return -1
    result = n
  }
  return result
}

/**
 * Parse a head (status line and fields, each ending in CRLF, without the blank line) into
 * `out`. Returns '' when it is valid, or why it is not.
 *
 * @example
 * ```ts
 * const head = new ResponseHead()
 * parseHead('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n', head) // ''
 * head.contentLength // 2
 * ```
 */
export function parseHead (head: string, out: ResponseHead): string {
  if (!head.startsWith('HTTP/1.') || head.length < 14) return 'invalid status line'
  const minor = head.charCodeAt(7)
  const d0 = head.charCodeAt(9) - 48
  const d1 = head.charCodeAt(10) - 48
  const d2 = head.charCodeAt(11) - 48
  const after = head.charCodeAt(12)
  if ((minor !== 48 && minor !== 49) || head.charCodeAt(8) !== 32 || d0 < 1 || d0 > 5 || d1 < 0 || d1 > 9 || d2 < 0 || d2 > 9 || (after !== 32 && after !== 13)) {
    return 'invalid status line'
  }
  const lineEnd = head.indexOf('\r\n')
  if (head.indexOf('\n') !== lineEnd + 1) return 'bare LF in status line'
  out.status = d0 * 100 + d1 * 10 + d2
  out.reason = after === 32 ? head.slice(13, lineEnd) : ''
  out.contentLength = -1
  out.transferEncoding = undefined
  out.keepAlive = minor === 49
  out.keepAliveHint = -1
  const headers: string[] = []
  out.headers = headers

  let pos = lineEnd + 2
  while (pos < head.length) {
    const eol = head.indexOf('\r\n', pos)
    const first = head.charCodeAt(pos)
    if (first === 32 || first === 9) return 'obsolete line folding'
    if (head.indexOf('\n', pos) !== eol + 1) return 'bare LF in header'
    const colon = head.indexOf(':', pos)
    if (colon <= pos || colon > eol) return 'invalid header line'
    const name = head.slice(pos, colon)
    let vs = colon + 1
    let ve = eol
    while (vs < ve && (head.charCodeAt(vs) === 32 || head.charCodeAt(vs) === 9)) vs++
    while (ve > vs && (head.charCodeAt(ve - 1) === 32 || head.charCodeAt(ve - 1) === 9)) ve--
    const value = head.slice(vs, ve)
    switch (name.length) {
      case 10:
        if (lowerEquals(name, 'connection')) {
          const v = value.toLowerCase()
          if (v.includes('close')) out.keepAlive = false
          else if (v.includes('keep-alive')) out.keepAlive = true
        } else if (lowerEquals(name, 'keep-alive')) {
          const at = value.indexOf('timeout=')
          if (at !== -1) {
            const seconds = parseInt(value.slice(at + 8), 10)
            if (seconds > 0) out.keepAliveHint = seconds * 1000
          }
        }
        break
      case 14:
        if (lowerEquals(name, 'content-length')) {
          const n = parseContentLength(value)
          if (n === -1 || (out.contentLength !== -1 && out.contentLength !== n)) return 'invalid Content-Length'
          out.contentLength = n
        }
        break
      case 17:
        if (lowerEquals(name, 'transfer-encoding')) out.transferEncoding = out.transferEncoding === undefined ? value : `${out.transferEncoding}, ${value}`
        break
    }
    headers.push(name, value)
    pos = eol + 2
  }
  return ''
}
