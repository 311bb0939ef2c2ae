/**
 * An upgrade (WebSocket handshake) over h1: a fresh connection, never pooled, that either
 * becomes the tunnel's upstream socket on 101 or carries an ordinary answer, read whole (up to
 * `MAX_DECLINED_BODY`) and passed on.
 */
import { connect, type Socket } from 'node:net'
import { connect as tlsConnect } from 'node:tls'
import type { EngineOptions, ForwardRequest, UpgradeSink, UpstreamTarget } from '../engine.js'
import { UpstreamError, type FailurePhase } from '../failure.js'
import { DeclinedBody, declinedTooLarge, serializeHead, upgradeLines } from '../wire.js'
import { ResponseParser } from './parser.js'
import { isTlsFailure, tlsFailure, tlsOptions } from '../tls.js'

/**
 * Send one upgrade request to `target` and report its outcome to `sink`.
 *
 * @example
 * ```ts
 * upgradeOverH1(options, target, request, 'websocket', sink)
 * ```
 */
export function upgradeOverH1 (options: EngineOptions, target: UpstreamTarget, request: ForwardRequest, protocol: string, sink: UpgradeSink): void {
  const tls = target.tls ?? null
  const socket: Socket = tls === null
    ? connect({ host: target.host, port: target.port, noDelay: true })
    : tlsConnect({ host: target.host, port: target.port, ...tlsOptions(tls) })
  const connectEvent = tls === null ? 'connect' : 'secureConnect'
  socket.setTimeout(options.connectTimeout)
  let connected = false
  let done = false
  let status = 0
  let reason = ''
  let headers: string[] = []
  const body = new DeclinedBody()
  const parser = new ResponseParser({
    onHead (s, r, h) { status = s; reason = r; headers = h },
    onBody (chunk) {
      if (!body.add(chunk)) finish(declinedTooLarge(target))
    },
    onComplete () {
      if (done) return
      finish(null)
      socket.destroy()
      sink.onResponse(status, reason, headers, body.bytes())
    }
  })
  parser.begin(request.isHead, true)
  const onConnect = (): void => {
    connected = true
    socket.setTimeout(options.responseTimeout)
    // Upgrade requests carry no body worth streaming (RFC 6455 handshakes have none).
    socket.write(serializeHead(`${request.method} ${request.path} HTTP/1.1`, request.headers, upgradeLines(protocol)), 'latin1')
  }
  const onData = (chunk: Buffer): void => {
    const used = parser.execute(chunk)
    if (done) return
    if (parser.failed) {
      finish(new UpstreamError(`invalid response from ${target.name}: ${parser.error}`, 'protocol', 'response'))
    } else if (parser.upgraded) {
      finish(null)
      socket.setTimeout(0)
      sink.onUpgrade(reason, headers, socket, chunk.subarray(used))
    }
  }
  const onTimeout = (): void => {
    finish(connected
      ? new UpstreamError(`${target.name} did not answer the upgrade in time`, 'timeout', 'timeout')
      : new UpstreamError(`connect to ${target.name} timed out`, 'connect', 'connect', 'connect timeout'))
  }
  const onError = (err: NodeJS.ErrnoException): void => {
    if (!connected && isTlsFailure(err.code)) { finish(tlsFailure(target.name, err)); return }
    const phase: FailurePhase = !connected ? 'connect' : parser.started ? 'response' : 'request'
    finish(new UpstreamError(`${connected ? '' : 'connect to '}${target.name} failed: ${err.code ?? err.message}`, connected ? 'reset' : 'connect', phase, err.code))
  }
  const onEnd = (): void => {
    if (parser.finish()) return
    finish(new UpstreamError(`${target.name} closed the connection during the upgrade`, 'reset', parser.started ? 'response' : 'request'))
  }
  const onClose = (): void => {
    finish(connected
      ? new UpstreamError(`${target.name} closed the connection during the upgrade`, 'reset', 'request')
      : new UpstreamError(`connect to ${target.name} failed`, 'connect', 'connect'))
  }
  // Only our own listeners come off: net.Socket keeps internal ones (half-close handling).
  function finish (error: UpstreamError | null): void {
    if (done) return
    done = true
    socket.off(connectEvent, onConnect)
    socket.off('data', onData)
    socket.off('timeout', onTimeout)
    socket.off('error', onError)
    socket.off('end', onEnd)
    socket.off('close', onClose)
    if (error !== null) {
      socket.destroy()
      sink.onError(error)
    }
  }
  socket.on(connectEvent, onConnect)
  socket.on('data', onData)
  socket.on('timeout', onTimeout)
  socket.on('error', onError)
  socket.on('end', onEnd)
  socket.on('close', onClose)
}
