/** The engine registry: a name from the config to a new engine. */
import type { EngineName } from '../config/types.js'
import type { Engine, EngineOptions } from './engine.js'
import { H1Engine } from './h1/index.js'
import { HttpProxyEngine } from './http-proxy.js'
import { UndiciEngine } from './undici.js'

export type { Engine, EngineOptions } from './engine.js'

/**
 * A new engine of the named kind.
 *
 * @example
 * ```ts
 * const engine = createEngine('undici', { connectTimeout: 3000, responseTimeout: 60000, maxIdle: 128, keepAliveTimeout: 4000 })
 * ```
 */
export function createEngine (name: EngineName, options: EngineOptions): Engine {
  switch (name) {
    case 'h1': return new H1Engine(options)
    case 'undici': return new UndiciEngine(options)
    case 'http-proxy': return new HttpProxyEngine(options)
  }
}
