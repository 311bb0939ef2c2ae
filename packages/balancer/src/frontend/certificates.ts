/**
 * Certificates for a TLS listener: read from PEM files, checked (the key belongs to the
 * certificate, the PEM parses), and indexed by the DNS names of each certificate's
 * subjectAltName for SNI. Loading is all-or-nothing: a reload that fails anywhere keeps every
 * certificate of the previous set, so a half-renewed directory never serves a broken mix.
 */
import { readFileSync } from 'node:fs'
import { X509Certificate, createPrivateKey } from 'node:crypto'
import { createSecureContext, type SecureContext, type SecureContextOptions } from 'node:tls'
import type { ResolvedTls } from '../config/types.js'
import { TetherBalancerError } from '../errors.js'

/**
 * TLS 1.3 suites, then Mozilla's "intermediate" TLS 1.2 list without the DHE suites (no
 * dhparam is configured): forward secrecy and AEAD only, no CBC, no RSA key exchange.
 */
export const CIPHERS = [
  'TLS_AES_128_GCM_SHA256', 'TLS_AES_256_GCM_SHA384', 'TLS_CHACHA20_POLY1305_SHA256',
  'ECDHE-ECDSA-AES128-GCM-SHA256', 'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384', 'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305', 'ECDHE-RSA-CHACHA20-POLY1305'
].join(':')

/** One certificate and key, read and checked. */
export interface LoadedCertificate {
  readonly certFile: string
  readonly cert: Buffer
  readonly key: Buffer
  /** DNS names from the subjectAltName (lower case; `*.example.com` kept as written). */
  readonly names: readonly string[]
  readonly validTo: Date
}

/**
 * A listener's certificates: the default one's options (for the server itself) and a lookup
 * by server name for the others.
 *
 * @example
 * ```ts
 * const set = loadCertificates(config.listen.tls)
 * server.setSecureContext(set.defaultOptions)
 * set.lookup('shop.example') // a SecureContext, or undefined for the default
 * ```
 */
export interface CertificateSet {
  readonly defaultOptions: SecureContextOptions
  readonly certificates: readonly LoadedCertificate[]
  /** The context for a server name (SNI), or undefined: use the default certificate. */
  lookup (servername: string): SecureContext | undefined
}

function certError (file: string, problem: string, cause?: unknown): TetherBalancerError {
  return new TetherBalancerError('TETHER_ERR_TLS_CERT', `${file}: ${problem}`, cause === undefined ? {} : { cause })
}

function read (file: string): Buffer {
  try {
    return readFileSync(file)
  } catch (err) {
    throw certError(file, `cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, err)
  }
}

/** The DNS names a certificate serves: its subjectAltName, as RFC 6125 says clients match. */
function namesOf (x509: X509Certificate): string[] {
  const names: string[] = []
  for (const part of (x509.subjectAltName ?? '').split(', ')) {
    if (part.startsWith('DNS:')) names.push(part.slice(4).toLowerCase())
  }
  return names
}

/**
 * Read and check one certificate chain and its key.
 *
 * @example
 * ```ts
 * const loaded = loadCertificate('/etc/letsencrypt/live/shop.example/fullchain.pem', '/etc/letsencrypt/live/shop.example/privkey.pem')
 * loaded.names // ['shop.example', 'www.shop.example']
 * ```
 */
export function loadCertificate (certFile: string, keyFile: string): LoadedCertificate {
  const cert = read(certFile)
  const key = read(keyFile)
  let x509: X509Certificate
  try {
    // The first PEM block is the leaf; the rest of a fullchain.pem are intermediates.
    x509 = new X509Certificate(cert)
  } catch (err) {
    throw certError(certFile, `is not a PEM certificate (${(err as Error).message})`, err)
  }
  let matches: boolean
  try {
    matches = x509.checkPrivateKey(createPrivateKey(key))
  } catch (err) {
    throw certError(keyFile, `is not a PEM private key (${(err as Error).message})`, err)
  }
  if (!matches) throw certError(keyFile, `is not the private key of ${certFile}`)
  return { certFile, cert, key, names: namesOf(x509), validTo: new Date(x509.validTo) }
}

/** The TLS settings every context of a listener shares. */
export function contextOptions (tls: ResolvedTls, cert: LoadedCertificate): SecureContextOptions {
  return {
    cert: cert.cert,
    key: cert.key,
    minVersion: tls.minVersion,
    ciphers: CIPHERS,
    // Mozilla intermediate: let the client pick among strong suites (it knows if it has AES-NI).
    honorCipherOrder: false,
    ecdhCurve: 'X25519:prime256v1:secp384r1'
  }
}

/**
 * Load every certificate of `tls` (the default, then `sni`), or throw `TETHER_ERR_TLS_CERT`
 * naming the first file that is unreadable or invalid.
 *
 * @example
 * ```ts
 * try { frontend.setCertificates(loadCertificates(tls)) } catch (err) { log.error({ code: err.code }, err.message) }
 * ```
 */
export function loadCertificates (tls: ResolvedTls): CertificateSet {
  const main = loadCertificate(tls.cert, tls.key)
  const exact = new Map<string, SecureContext>()
  const wildcard = new Map<string, SecureContext>()
  const others = tls.sni.map((c) => loadCertificate(c.cert, c.key))
  for (const loaded of others) {
    let context: SecureContext
    try {
      context = createSecureContext(contextOptions(tls, loaded))
    } catch (err) {
      throw certError(loaded.certFile, `cannot be used (${(err as Error).message})`, err)
    }
    for (const name of loaded.names) {
      // The first certificate that names a host wins, as in nginx's server_name order.
      const [map, key] = name.startsWith('*.') ? [wildcard, name.slice(2)] : [exact, name]
      if (!map.has(key)) map.set(key, context)
    }
  }
  const defaultOptions = contextOptions(tls, main)
  try {
    createSecureContext(defaultOptions)
  } catch (err) {
    throw certError(main.certFile, `cannot be used (${(err as Error).message})`, err)
  }
  return {
    defaultOptions,
    certificates: [main, ...others],
    lookup (servername: string): SecureContext | undefined {
      const name = servername.toLowerCase()
      const hit = exact.get(name)
      if (hit !== undefined) return hit
      // A wildcard covers exactly one label (RFC 6125 §6.4.3).
      const dot = name.indexOf('.')
      return dot === -1 ? undefined : wildcard.get(name.slice(dot + 1))
    }
  }
}
