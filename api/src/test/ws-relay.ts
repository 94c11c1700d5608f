import net from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';

export interface WsRelay {
  /** `host:port` of the relay, for `createNeonDb(url, { relay })` or `NEON_WS_RELAY`. */
  address: string;
  close(): Promise<void>;
}

// Only the local PostgreSQL may be reached: the relay is a test part, not an open proxy.
const ALLOWED_HOSTS = new Set(['127.0.0.1', 'localhost', '::1']);

function parseTarget(reqUrl: string | undefined): { host: string; port: number } | null {
  const u = new URL(reqUrl ?? '/', 'http://relay');
  if (u.pathname !== '/v2') return null;
  const address = u.searchParams.get('address') ?? '';
  const i = address.lastIndexOf(':');
  if (i <= 0) return null;
  const host = address.slice(0, i).replace(/^\[|\]$/g, '');
  const port = Number(address.slice(i + 1));
  if (!ALLOWED_HOSTS.has(host) || !Number.isInteger(port) || port < 1 || port > 65535) return null;
  return { host, port };
}

function pipe(ws: WebSocket, host: string, port: number) {
  const tcp = net.connect({ host, port });
  tcp.setNoDelay(true);
  // Frames that arrive before the TCP connection is up are queued by the socket itself.
  ws.on('message', (data: Buffer | ArrayBuffer | Buffer[]) => {
    const chunk = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as ArrayBuffer);
    if (!tcp.destroyed) tcp.write(chunk);
  });
  tcp.on('data', (chunk) => {
    if (ws.readyState === ws.OPEN) ws.send(chunk, { binary: true });
  });
  ws.on('close', () => tcp.end());
  ws.on('error', () => tcp.destroy());
  tcp.on('close', () => {
    if (ws.readyState === ws.OPEN || ws.readyState === ws.CONNECTING) ws.close();
  });
  tcp.on('error', () => ws.terminate());
}

/**
 * A WebSocket→TCP relay on loopback, standing in for Neon's proxy in tests: the Neon driver opens
 * `ws://<relay>/v2?address=host:port` and speaks the plain PostgreSQL wire protocol through it.
 */
export async function startWsRelay(): Promise<WsRelay> {
  const wss = new WebSocketServer({
    host: '127.0.0.1',
    port: 0,
    // Refused before the upgrade: anything but /v2?address=<loopback>:<port> gets a 403.
    verifyClient: (info, done) => done(parseTarget(info.req.url) !== null, 403, 'address not allowed'),
  });
  wss.on('connection', (ws, req) => {
    const target = parseTarget(req.url)!;
    pipe(ws, target.host, target.port);
  });
  await new Promise<void>((resolve, reject) => {
    wss.once('listening', resolve);
    wss.once('error', reject);
  });
  const { port } = wss.address() as net.AddressInfo;
  return {
    address: `127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        for (const client of wss.clients) client.terminate();
        wss.close(() => resolve());
      }),
  };
}
