/**
 * Reading a configuration file. YAML is a superset of JSON, so one parser reads both; `.json`
 * files still go through `JSON.parse` so that JSON-only mistakes (comments, trailing commas)
 * are reported as such.
 */
import { readFile } from 'node:fs/promises'
import { parse as parseYaml, YAMLParseError } from 'yaml'
import { TetherBalancerError } from '../errors.js'

/**
 * Read and parse a YAML or JSON configuration file. Does not validate it: pass the result to
 * `resolveConfig` (or `createBalancer`) with the same file name.
 *
 * @example
 * ```ts
 * const raw = await loadConfigFile('balancer.yaml')
 * // createBalancer validates every field and names the file in its errors.
 * const balancer = createBalancer(raw as BalancerConfig, { configFile: 'balancer.yaml' })
 * ```
 */
export async function loadConfigFile (file: string): Promise<unknown> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message
    throw new TetherBalancerError('TETHER_ERR_CONFIG_FILE', `${file}: cannot read the configuration file: ${reason}`, { cause: err })
  }
  try {
    if (file.endsWith('.json')) return JSON.parse(text) as unknown
    return parseYaml(text, { prettyErrors: true }) as unknown
  } catch (err) {
    const where = err instanceof YAMLParseError && err.linePos !== undefined ? `line ${err.linePos[0].line}: ` : ''
    const first = ((err as Error).message.split('\n')[0] ?? '').trim()
    throw new TetherBalancerError('TETHER_ERR_CONFIG_FILE', `${file}: ${where}cannot parse the configuration: ${first}`, { cause: err })
  }
}
