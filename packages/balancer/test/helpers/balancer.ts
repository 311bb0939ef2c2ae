// A balancer in the test's own process, on a free loopback port, with its log captured.
import { Writable } from 'node:stream'
import { pino } from 'pino'
import { createBalancer, type Balancer, type BalancerConfig } from '../../src/index.js'
import type { TestLike } from './upstreams.js'

/** The sticky secret the tests' balancers share. */
export const SECRET = 'test-secret-0123456789abcdef'

/** A balancer on a free loopback port whose pino log lines are captured in `logs`. */
export interface TestBalancer {
  readonly balancer: Balancer
  readonly port: number
  readonly adminPort: number | undefined
  readonly url: string
  readonly adminUrl: string
  readonly logs: Array<Record<string, unknown>>
}

export async function startBalancer (t: TestLike, config: Omit<BalancerConfig, 'listen'> & { listen?: BalancerConfig['listen'] }): Promise<TestBalancer> {
  const logs: Array<Record<string, unknown>> = []
  const sink = new Writable({
    write (chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split('\n')) if (line !== '') logs.push(JSON.parse(line) as Record<string, unknown>)
      done()
    }
  })
  const logger = pino({ level: 'debug' }, sink)
  const balancer = createBalancer({ listen: '127.0.0.1:0', sticky: { secret: SECRET }, ...config }, { logger })
  t.teardown(() => balancer.close())
  const { port, adminPort } = await balancer.listen()
  return { balancer, port, adminPort, url: `http://127.0.0.1:${port}`, adminUrl: `http://127.0.0.1:${adminPort ?? 0}`, logs }
}
