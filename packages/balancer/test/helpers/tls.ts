// Throwaway certificates made with openssl at test time (ECDSA P-256, self-signed), and
// clients for the TLS listener: HTTPS over HTTP/1.1 and HTTP/2, both trusting those certificates.
import { execFileSync, spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { request as httpsRequest } from 'node:https'
import { connect as h2connect, type ClientHttp2Session, type IncomingHttpHeaders as H2Headers } from 'node:http2'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { connect as tlsConnect, type PeerCertificate } from 'node:tls'
import type { Response } from './http.js'
import type { TestLike } from './upstreams.js'

export const hasOpenssl = spawnSync('openssl', ['version']).status === 0

/** A certificate and key on disk. */
export interface CertFiles {
  readonly cert: string
  readonly key: string
  /** The PEM text, for clients to trust. */
  readonly pem: string
}

/** A temporary directory removed at the end of the test. */
export function tempDir (t: TestLike, prefix = 'tether-tls-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

/** A self-signed ECDSA P-256 certificate for `names` (the first is the CN), written as `<base>.crt`/`<base>.key`. */
export function makeCert (dir: string, base: string, names: readonly string[]): CertFiles {
  const cert = join(dir, `${base}.crt`)
  const key = join(dir, `${base}.key`)
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', key, '-out', cert, '-days', '2', '-subj', `/CN=${names[0] ?? 'localhost'}`,
    '-addext', `subjectAltName=${names.map((n) => /^[\d.]+$/.test(n) ? `IP:${n}` : `DNS:${n}`).join(',')}`
  ], { stdio: 'ignore' })
  return { cert, key, pem: readFileSync(cert, 'utf8') }
}

/** The certificate a TLS handshake with `servername` gets, and the ALPN protocol chosen. */
export function handshake (port: number, options: { servername?: string, ALPNProtocols?: string[], maxVersion?: 'TLSv1.2' | 'TLSv1.3', minVersion?: 'TLSv1' | 'TLSv1.1' | 'TLSv1.2', maxVersionOld?: boolean } = {}): Promise<{ cert: PeerCertificate, alpn: string | false, protocol: string | null }> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({
      host: '127.0.0.1',
      port,
      rejectUnauthorized: false,
      ...(options.servername === undefined ? {} : { servername: options.servername }),
      ...(options.ALPNProtocols === undefined ? {} : { ALPNProtocols: options.ALPNProtocols }),
      ...(options.maxVersion === undefined ? {} : { maxVersion: options.maxVersion }),
      ...(options.minVersion === undefined ? {} : { minVersion: options.minVersion })
    }, () => {
      const result = { cert: socket.getPeerCertificate(), alpn: socket.alpnProtocol ?? false, protocol: socket.getProtocol() }
      socket.end()
      resolve(result)
    })
    socket.setTimeout(10_000, () => socket.destroy(new Error('handshake timed out')))
    socket.on('error', reject)
  })
}

/** One HTTPS request over HTTP/1.1 on a new connection. */
export function httpsSend (url: string, options: { method?: string, headers?: Record<string, string>, body?: string, ca: string, servername?: string }): Promise<Response> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(url, { method: options.method ?? 'GET', headers: options.headers, ca: options.ca, servername: options.servername ?? 'localhost', agent: false }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, rawHeaders: res.rawHeaders, body: Buffer.concat(chunks).toString('utf8') }))
      res.on('error', reject)
    })
    req.setTimeout(15_000, () => req.destroy(new Error(`request to ${url} timed out`)))
    req.on('error', reject)
    req.end(options.body)
  })
}

/** An HTTP/2 session to the balancer, trusting `ca`. */
export function h2Session (t: TestLike, port: number, ca: string, servername = 'localhost'): ClientHttp2Session {
  const session = h2connect(`https://127.0.0.1:${port}`, { ca, servername })
  session.on('error', () => {})
  t.teardown(() => { session.destroy() })
  return session
}

/** An h2 response, fully read. */
export interface H2Response {
  readonly status: number
  readonly headers: H2Headers
  readonly body: string
}

/** One request on an h2 session. */
export function h2Send (session: ClientHttp2Session, path: string, options: { method?: string, headers?: Record<string, string | string[]>, body?: string, endStream?: boolean } = {}): Promise<H2Response> {
  return new Promise((resolve, reject) => {
    const stream = session.request({ ':method': options.method ?? 'GET', ':path': path, ...options.headers }, { endStream: options.body === undefined })
    let headers: H2Headers = {}
    const chunks: Buffer[] = []
    stream.on('response', (h) => { headers = h })
    stream.on('data', (c: Buffer) => chunks.push(c))
    stream.on('end', () => resolve({ status: Number(headers[':status']), headers, body: Buffer.concat(chunks).toString('utf8') }))
    stream.on('error', reject)
    stream.setTimeout(15_000, () => stream.close())
    if (options.body !== undefined) stream.end(options.body)
  })
}

/** A throwaway certificate authority (ECDSA P-256): its files, to sign leaves and to trust. */
export interface CaFiles extends CertFiles {}

/** A CA certificate and key, written as `<base>.crt`/`<base>.key`. */
export function makeCa (dir: string, base = 'ca'): CaFiles {
  const cert = join(dir, `${base}.crt`)
  const key = join(dir, `${base}.key`)
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', key, '-out', cert, '-days', '2', '-subj', `/CN=Tether test CA ${base}`,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'
  ], { stdio: 'ignore' })
  return { cert, key, pem: readFileSync(cert, 'utf8') }
}

/** A leaf certificate for `names` (DNS names or IPv4 addresses) signed by `ca`. */
export function makeSignedCert (dir: string, ca: CaFiles, base: string, names: readonly string[]): CertFiles {
  const cert = join(dir, `${base}.crt`)
  const key = join(dir, `${base}.key`)
  const csr = join(dir, `${base}.csr`)
  const ext = join(dir, `${base}.ext`)
  execFileSync('openssl', ['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', csr, '-subj', `/CN=${names[0] ?? 'localhost'}`], { stdio: 'ignore' })
  writeFileSync(ext, `subjectAltName=${names.map((n) => /^[\d.]+$/.test(n) ? `IP:${n}` : `DNS:${n}`).join(',')}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n`)
  execFileSync('openssl', ['x509', '-req', '-in', csr, '-CA', ca.cert, '-CAkey', ca.key, '-CAcreateserial', '-out', cert, '-days', '2', '-extfile', ext], { stdio: 'ignore' })
  return { cert, key, pem: readFileSync(cert, 'utf8') }
}
