/**
 * TLS to https:// upstreams, one way for every engine and the health checks: the connection
 * options a node's settings give, and which errors mean the handshake or the certificate
 * failed (a `tls` failure, answered with `TETHER_ERR_UPSTREAM_TLS`), rather than the network.
 */
import type { ConnectionOptions } from 'node:tls'
import type { ResolvedUpstreamTls } from '../config/types.js'
import { UpstreamError } from './failure.js'

/**
 * `tls.connect` options for a node: its CA (else the system's), SNI name, verification.
 * HTTP/1.1 is offered by ALPN because that is all the engines speak.
 *
 * @example
 * ```ts
 * tls.connect({ host: target.host, port: target.port, ...tlsOptions(target.tls) })
 * ```
 */
export function tlsOptions (tls: ResolvedUpstreamTls): ConnectionOptions {
  return {
    ...(tls.ca === null ? {} : { ca: tls.ca }),
    ...(tls.servername === null ? {} : { servername: tls.servername }),
    rejectUnauthorized: tls.verify,
    minVersion: 'TLSv1.2',
    ALPNProtocols: ['http/1.1']
  }
}

// OpenSSL's certificate verification results, as Node names them in `err.code`.
const VERIFY_CODES = new Set([
  'UNABLE_TO_GET_ISSUER_CERT', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_DECRYPT_CERT_SIGNATURE', 'UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY', 'CERT_SIGNATURE_FAILURE',
  'CERT_NOT_YET_VALID', 'CERT_HAS_EXPIRED', 'ERROR_IN_CERT_NOT_BEFORE_FIELD', 'ERROR_IN_CERT_NOT_AFTER_FIELD',
  'DEPTH_ZERO_SELF_SIGNED_CERT', 'SELF_SIGNED_CERT_IN_CHAIN', 'CERT_CHAIN_TOO_LONG', 'CERT_REVOKED',
  'INVALID_CA', 'PATH_LENGTH_EXCEEDED', 'INVALID_PURPOSE', 'CERT_UNTRUSTED', 'CERT_REJECTED', 'HOSTNAME_MISMATCH'
])

/**
 * Whether an error code is a TLS failure: a certificate that does not verify or does not name
 * the host (`ERR_TLS_CERT_ALTNAME_INVALID`), or a handshake OpenSSL refused (`ERR_SSL_*`, such
 * as a node that speaks plain HTTP on that port).
 *
 * @example
 * ```ts
 * isTlsFailure('UNABLE_TO_VERIFY_LEAF_SIGNATURE') // true
 * isTlsFailure('ECONNREFUSED') // false
 * ```
 */
export function isTlsFailure (code: string | undefined): boolean {
  if (code === undefined) return false
  return VERIFY_CODES.has(code) || code.startsWith('ERR_TLS_') || code.startsWith('ERR_SSL_')
}

/**
 * The failure every engine reports for a TLS error: in the `connect` phase, because no byte of
 * the request was sent, so another node may be tried.
 *
 * @example
 * ```ts
 * if (isTlsFailure(err.code)) sink.onError(tlsFailure(target.name, err))
 * ```
 */
export function tlsFailure (name: string, err: NodeJS.ErrnoException): UpstreamError {
  return new UpstreamError(`TLS to ${name} failed: ${err.code ?? 'handshake'} (${err.message})`, 'tls', 'connect', err.code)
}
