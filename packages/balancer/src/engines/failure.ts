/**
 * How an upstream attempt fails, in one vocabulary for every engine, and the one table that
 * turns a failure into the error code a client gets, for plain requests and upgrades alike.
 * Engines classify their own errors (socket, parser, undici, http-proxy) into a kind and a
 * phase; the proxy decides retries from the phase and answers from the kind.
 */
import type { ErrorCode } from '../errors.js'

/**
 * Where an attempt failed, which decides whether it may be retried:
 * - `connect`: no connection; nothing was sent. Safe to retry whatever the method.
 * - `request`: connected, maybe sent, no response byte yet. Retry only idempotent requests
 *   whose body was not consumed.
 * - `response`: failed after the response began. Never retried.
 * - `timeout`: the upstream did not answer within `timeouts.response`. Never retried.
 *
 * @example
 * ```ts
 * const nothingSent = (phase: FailurePhase): boolean => phase === 'connect'
 * ```
 */
export type FailurePhase = 'connect' | 'request' | 'response' | 'timeout'

/**
 * What went wrong:
 * - `connect`: refused, unreachable, timed out while connecting, or the engine was closed;
 * - `reset`: the connection closed or broke before the response was complete;
 * - `timeout`: no response head, or no body byte, within `timeouts.response`;
 * - `protocol`: the response is not valid HTTP/1.1 (or a declined upgrade's body is too large);
 * - `tls`: the TLS handshake with an https:// node failed, or its certificate did not verify;
 * - `aborted`: the client went away; not the node's fault.
 *
 * @example
 * ```ts
 * const kind: FailureKind = error.phase === 'connect' ? 'connect' : 'reset'
 * ```
 */
export type FailureKind = 'connect' | 'reset' | 'timeout' | 'protocol' | 'tls' | 'aborted'

/**
 * The error code a client is answered with for each kind of failure.
 *
 * @example
 * ```ts
 * FAILURE_CODES.protocol // 'TETHER_ERR_UPSTREAM_PROTOCOL', whatever the engine or the path
 * ```
 */
export const FAILURE_CODES: Readonly<Record<FailureKind, ErrorCode>> = {
  connect: 'TETHER_ERR_UPSTREAM_CONNECT',
  reset: 'TETHER_ERR_UPSTREAM_RESET',
  timeout: 'TETHER_ERR_UPSTREAM_TIMEOUT',
  protocol: 'TETHER_ERR_UPSTREAM_PROTOCOL',
  tls: 'TETHER_ERR_UPSTREAM_TLS',
  aborted: 'TETHER_ERR_CLIENT_ABORTED'
}

/**
 * A failed attempt, as every engine reports it.
 *
 * @example
 * ```ts
 * sink.onError(new UpstreamError('app-1 did not answer in time', 'timeout', 'timeout'))
 * ```
 */
export class UpstreamError extends Error {
  /** The low-level cause for logs and passive-health reasons (`ECONNREFUSED`), or the kind. */
  readonly code: string

  constructor (message: string, readonly kind: FailureKind, readonly phase: FailurePhase, code?: string) {
    super(message)
    this.name = 'UpstreamError'
    this.code = code ?? kind
  }
}
