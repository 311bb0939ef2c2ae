// WebSocket clients (the ws package) through the balancer, against the upstream fixture's echo.
import WebSocket from 'ws'

/** Open a WebSocket; resolves with the fixture's hello and the 101's Set-Cookie headers. */
export function wsOpen (url: string, headers: Record<string, string> = {}): Promise<{ ws: WebSocket, hello: { hello: string, headers: Record<string, string> }, setCookie: string[] }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers })
    let setCookie: string[] = []
    ws.on('upgrade', (res) => { setCookie = res.headers['set-cookie'] ?? [] })
    ws.once('message', (data) => resolve({ ws, hello: JSON.parse(String(data)) as { hello: string, headers: Record<string, string> }, setCookie }))
    ws.once('error', reject)
    ws.once('unexpected-response', (_req, res) => reject(new Error(`unexpected ${String(res.statusCode)}`)))
  })
}

/** Send `text`; resolves with the echo. */
export function wsEcho (ws: WebSocket, text: string): Promise<string> {
  return new Promise((resolve) => {
    ws.once('message', (data) => resolve(String(data)))
    ws.send(text)
  })
}
