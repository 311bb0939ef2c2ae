/**
 * A private redis-server that speaks only TLS, with a throwaway CA made by openssl in a temp
 * directory. Resolves undefined when openssl is not installed (the test then skips, saying so).
 */
import { execFileSync, spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePort, waitFor } from './net.js'
import { kill, reap } from './reaper.js'
import net from 'node:net'

interface Teardownable { teardown (fn: () => unknown): void }

export interface TlsRedis {
  readonly port: number
  /** The CA certificate (PEM) that signed the server's certificate for 127.0.0.1. */
  readonly ca: string
}

export async function startRedisTls (t: Teardownable): Promise<TlsRedis | undefined> {
  try { execFileSync('openssl', ['version'], { stdio: 'ignore' }) } catch { return undefined }
  const dir = mkdtempSync(join(tmpdir(), 'tether-tls-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const ssl = (...args: string[]): void => { execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' }) }
  ssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '1', '-subj', '/CN=Tether test CA')
  ssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=127.0.0.1')
  writeFileSync(join(dir, 'ext.cnf'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n')
  ssl('x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.crt', '-days', '1', '-extfile', 'ext.cnf')
  const port = await freePort()
  const child = reap(spawn('redis-server', [
    '--port', '0', '--tls-port', String(port), '--bind', '127.0.0.1',
    '--tls-cert-file', join(dir, 'server.crt'), '--tls-key-file', join(dir, 'server.key'),
    '--tls-ca-cert-file', join(dir, 'ca.crt'), '--tls-auth-clients', 'no', '--save', '', '--appendonly', 'no'
  ], { stdio: 'ignore' }))
  t.teardown(() => kill(child))
  await waitFor(() => new Promise<boolean>((resolve) => {
    const s = net.connect(port, '127.0.0.1')
    s.once('connect', () => { s.destroy(); resolve(true) })
    s.once('error', () => resolve(false))
  }), 10_000, `TLS redis-server on ${port}`)
  return { port, ca: readFileSync(join(dir, 'ca.crt'), 'utf8') }
}
