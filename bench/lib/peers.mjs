// Reverse-proxy peers for benchmarks: nginx and HAProxy run as our own foreground processes
// with configs in a temp dir (never the system services), and small Node proxies, all in
// front of the same upstreams. Each `start*` returns { url, pid, stop }.
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { freePort, startProcess, waitForPort } from './proc.mjs'

const here = dirname(fileURLToPath(import.meta.url))

/**
 * CPU seconds (user + system) a process has used so far, from /proc (Linux). A proxy's CPU per
 * request is steadier than its req/s on a shared machine: it does not depend on how much CPU
 * the other processes left it.
 */
export function cpuSeconds (pid) {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')
    return (Number(fields[11]) + Number(fields[12])) / 100 // utime + stime, in clock ticks (USER_HZ = 100)
  } catch {
    return NaN
  }
}

/**
 * CPU seconds of a whole process group (a proxy's master and workers): the sum over the live
 * processes whose group is `pgid` (bench processes run in their own group, see proc.mjs).
 */
export function groupCpuSeconds (pgid) {
  let sum = 0
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const fields = readFileSync(`/proc/${entry}/stat`, 'utf8').split(') ')[1].split(' ')
      if (Number(fields[2]) === pgid) sum += (Number(fields[11]) + Number(fields[12])) / 100
    } catch { /* exited meanwhile */ }
  }
  return sum
}

/** Wait for a started process to listen; on failure, say what it printed. */
async function ready (proc, port, what) {
  try {
    await waitForPort(port, { timeoutMs: 10_000 })
  } catch (err) {
    await proc.stop()
    throw new Error(`${what} did not start: ${proc.stderr.trim() || err.message}`)
  }
}

function have (cmd, args) {
  try { execFileSync(cmd, args, { stdio: 'ignore' }); return true } catch (err) { return err.code !== 'ENOENT' }
}

/** Install a Debian package when its command is missing (apt-get update once if needed). */
export function ensureCommand (cmd, pkg, versionArgs = ['-v']) {
  if (have(cmd, versionArgs)) return
  console.error(`bench: installing ${pkg} (apt-get)`)
  execFileSync('bash', ['-c', `DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ${pkg} >/dev/null 2>&1 || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ${pkg} >/dev/null)`], { stdio: 'inherit' })
}

/**
 * nginx, upstream keep-alive, no access log, in the foreground: one worker and no master
 * process by default; with `workers` > 1, a master and that many workers (nginx runs several
 * workers only under a master). With `tls` ({ cert, key }), it terminates TLS 1.3 and offers h2
 * and http/1.1 by ALPN.
 */
export async function startNginx (upstreams, { workers = 1, tls } = {}) {
  ensureCommand('nginx', 'nginx')
  const dir = mkdtempSync(join(tmpdir(), 'tether-nginx-'))
  const port = await freePort()
  const conf = join(dir, 'nginx.conf')
  // nginx ends a connection (h2: GOAWAY) after 1000 requests by default; h2load does not
  // reconnect, and the other proxies have no such limit.
  const tlsLines = tls
    ? [
        `    ssl_certificate ${tls.cert};`,
        `    ssl_certificate_key ${tls.key};`,
        '    ssl_protocols TLSv1.3;',
        '    ssl_session_cache shared:SSL:10m;',
        '    keepalive_requests 1000000;',
        ''
      ].join('\n')
    : ''
  writeFileSync(conf, `daemon off;
master_process ${workers > 1 ? 'on' : 'off'};
worker_processes ${workers};
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  upstream app {
${upstreams.map((u) => `    server ${u.replace('http://', '')};`).join('\n')}
    keepalive 64;
  }
  server {
    listen 127.0.0.1:${port}${tls ? ' ssl http2' : ''};
${tlsLines}    location / {
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
`)
  const proc = startProcess('nginx', ['-p', dir, '-c', conf])
  await ready(proc, port, 'nginx')
  return { url: `${tls ? 'https' : 'http'}://127.0.0.1:${port}`, pid: proc.child.pid, stop: () => proc.stop() }
}

/**
 * HAProxy, `threads` threads (default 1), keep-alive and connection reuse towards the upstreams;
 * foreground. With `tls` ({ cert, key }), it terminates TLS 1.3 and offers h2 and http/1.1 by ALPN.
 */
export async function startHaproxy (upstreams, { threads = 1, tls } = {}) {
  ensureCommand('haproxy', 'haproxy')
  const dir = mkdtempSync(join(tmpdir(), 'tether-haproxy-'))
  const port = await freePort()
  const conf = join(dir, 'haproxy.cfg')
  // HAProxy reads the certificate and its key from one file.
  const pem = join(dir, 'site.pem')
  if (tls) writeFileSync(pem, readFileSync(tls.cert, 'utf8') + readFileSync(tls.key, 'utf8'))
  writeFileSync(conf, `global
  nbthread ${threads}
  maxconn 4096
defaults
  mode http
  timeout connect 5s
  timeout client 30s
  timeout server 30s
  option http-keep-alive
  http-reuse always
frontend fe
  bind 127.0.0.1:${port}${tls ? ` ssl crt ${pem} alpn h2,http/1.1 ssl-min-ver TLSv1.3` : ''}
  default_backend be
backend be
  balance roundrobin
${upstreams.map((u, i) => `  server s${i} ${u.replace('http://', '')}`).join('\n')}
`)
  const proc = startProcess('haproxy', ['-db', '-f', conf])
  await ready(proc, port, 'haproxy')
  return { url: `${tls ? 'https' : 'http'}://127.0.0.1:${port}`, pid: proc.child.pid, stop: () => proc.stop() }
}

/** One tiny upstream process (bench/lib/tiny-upstream.mjs) with `env` (NAME, DELAY_MS, WORKERS); returns its URL. */
export async function startTinyUpstream (env = {}) {
  const port = await freePort()
  startProcess(process.execPath, [join(here, 'tiny-upstream.mjs')], { env: { PORT: String(port), ...env } })
  await waitForPort(port)
  return `http://127.0.0.1:${port}`
}

/** `count` tiny upstream processes (bench/lib/tiny-upstream.mjs); returns their URLs. */
export async function startTinyUpstreams (count) {
  const urls = []
  for (let i = 0; i < count; i++) urls.push(await startTinyUpstream())
  return urls
}

/**
 * A Node proxy peer from bench/lib/proxy-peers (fastify-reply-from, http-proxy,
 * undici-pool, node-agent), round-robin over `upstreams`.
 */
export async function startNodePeer (name, upstreams, env = {}) {
  const port = await freePort()
  const proc = startProcess(process.execPath, [join(here, 'proxy-peers', `${name}.mjs`)], { env: { PORT: String(port), UPSTREAMS: upstreams.join(','), ...env } })
  await ready(proc, port, name)
  return { url: `http://127.0.0.1:${port}`, pid: proc.child.pid, stop: () => proc.stop() }
}
