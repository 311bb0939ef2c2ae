// docker-compose.yml and the Dockerfile, checked without a Docker engine: docker-compose itself
// validates the file, and the resolved configuration is checked for what the demo needs.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { parse } from 'yaml'
import { loadConfigFile, resolveConfig } from '@tether/balancer'
import { childEnv } from './helpers/net.js'

const root = fileURLToPath(new URL('..', import.meta.url))
const compose = spawnSync('docker-compose', ['version', '--short'], { encoding: 'utf8' })
const missing = compose.error !== undefined ? 'docker-compose is not installed (.ci/run installs Debian\'s docker-compose)' : false

interface Service {
  build?: { context: string, target?: string }
  image?: string
  environment?: Record<string, string>
  depends_on?: Record<string, { condition: string }>
  healthcheck?: { test: string[] }
  ports?: Array<string | { published: number | string, target: number, host_ip?: string }>
  volumes?: Array<string | { source: string, target: string, read_only?: boolean }>
  command?: string[]
}

t.test('docker-compose config -q accepts the file', { skip: missing }, async (t) => {
  const r = spawnSync('docker-compose', ['config', '-q'], { cwd: root, encoding: 'utf8', timeout: 60_000 })
  t.equal(r.status, 0, `exit 0${r.stderr ? `; stderr: ${r.stderr}` : ''}`)
  t.equal(r.stderr, '', 'no warnings')
})

t.test('the resolved services: Redis, three nodes on it, the balancer, health checks and ordering', { skip: missing }, async (t) => {
  const r = spawnSync('docker-compose', ['config'], { cwd: root, encoding: 'utf8', timeout: 60_000 })
  const services = (parse(r.stdout) as { services: Record<string, Service> }).services
  t.same(Object.keys(services).sort(), ['balancer', 'node1', 'node2', 'node3', 'redis'])
  for (const [name, service] of Object.entries(services)) t.ok(service.healthcheck?.test.length, `${name} has a health check`)
  const dockerfile = readFileSync(`${root}/Dockerfile`, 'utf8')
  const targets = [...dockerfile.matchAll(/^FROM\s+\S+\s+AS\s+(\S+)/gim)].map((m) => m[1])
  for (const node of ['node1', 'node2', 'node3']) {
    const s = services[node]!
    t.equal(s.environment?.STORE_URL, 'redis://redis:6379', `${node} uses the redis service`)
    t.equal(s.environment?.NODE_NAME, node, `${node} knows its name`)
    t.equal(s.environment?.SESSION_SECRET, services.node1!.environment?.SESSION_SECRET, `${node} shares the session secret`)
    t.same(s.depends_on, { redis: { condition: 'service_healthy' } }, `${node} waits for a healthy Redis`)
    t.ok(targets.includes(s.build?.target), `${node} builds a Dockerfile target (${s.build?.target})`)
    t.notOk(s.ports, `${node} is reachable only through the balancer`)
  }
  const balancer = services.balancer!
  t.same(balancer.depends_on, { node1: { condition: 'service_healthy' }, node2: { condition: 'service_healthy' }, node3: { condition: 'service_healthy' } })
  t.ok(targets.includes(balancer.build?.target), 'the balancer builds a Dockerfile target')
  const admin = balancer.ports?.find((p) => (typeof p === 'string' ? p.includes('9090') : p.target === 9090))
  t.match(typeof admin === 'string' ? admin : admin?.host_ip, /^127\.0\.0\.1/, 'the admin API is published on loopback only')

  // The balancer's configuration file is mounted from the repository and names every node.
  const mount = balancer.volumes?.map((v) => (typeof v === 'string' ? v.split(':') : [v.source, v.target])).find(([, target]) => target === '/etc/tether/balancer.yaml')
  t.ok(mount, 'the config file is mounted where the image\'s command reads it')
  t.match(dockerfile, /CMD \["tether-balancer", "--config", "\/etc\/tether\/balancer\.yaml"\]/, 'the balancer image runs the tether-balancer binary on it')
  const file = parse(readFileSync(mount![0]!, 'utf8')) as { upstreams: Array<{ url: string, name: string }>, healthCheck: { path: string } }
  t.same(file.upstreams.map((u) => [u.name, u.url]), [['node1', 'http://node1:3000'], ['node2', 'http://node2:3000'], ['node3', 'http://node3:3000']])
  t.equal(file.healthCheck.path, '/health', 'the balancer checks the route the nodes serve')
  // The balancer's own validator, as `tether-balancer --config` runs it.
  const resolved = resolveConfig(await loadConfigFile(mount![0]!), { file: mount![0]! })
  t.same(resolved.upstreams.map((u) => u.name), ['node1', 'node2', 'node3'], 'tether-balancer accepts the file')
  t.equal(resolved.sticky.secretGenerated, false, 'with a fixed sticky secret, so cookies survive a balancer restart')
  const check = spawnSync(process.execPath, [`${root}/packages/balancer/dist/cli.js`, '--config', mount![0]!, '--check'], { encoding: 'utf8', timeout: 30_000, env: childEnv() })
  t.equal(check.status, 0, `tether-balancer --config … --check exits 0${check.stderr ? `; stderr: ${check.stderr}` : ''}`)
  t.match(check.stdout, /configuration OK/)
})

t.test('the Dockerfile builds from a clean context', async (t) => {
  const ignore = readFileSync(`${root}/.dockerignore`, 'utf8').split('\n')
  for (const entry of ['**/node_modules', '**/dist', '.git']) t.ok(ignore.includes(entry), `.dockerignore leaves out ${entry}`)
  const dockerfile = readFileSync(`${root}/Dockerfile`, 'utf8')
  for (const m of dockerfile.matchAll(/^COPY (?!--from)(.+) \S+$/gm)) {
    for (const source of m[1]!.split(/\s+/)) t.ok(existsSync(`${root}/${source}`), `COPY source ${source} exists`)
  }
  t.match(dockerfile, /npm ci\b/, 'installs from the lock file')
  const built = dockerfile.indexOf('tsc -b')
  t.ok(built > 0 && dockerfile.indexOf('npm rebuild --ignore-scripts', built) > built, 'links the bins after they are built (npm skips bins whose files are missing)')
})
