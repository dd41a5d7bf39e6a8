import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { createServer as createHttp2Server, type Http2Session } from 'node:http2';
import { createServer as createNetServer, type Socket } from 'node:net';
import kinesalite from 'kinesalite';

/**
 * kinesalite, reachable over HTTP/1.1 and cleartext HTTP/2 on one port.
 *
 * The v3 SDK's KinesisClient defaults to an HTTP/2 handler (for SubscribeToShard), which against
 * an `http://` endpoint speaks HTTP/2 with prior knowledge; kinesalite only speaks HTTP/1.1 and
 * the client fails with "Protocol error". Rather than have every handler swap its request handler
 * when running locally, each connection is routed by its first bytes: the HTTP/2 preface goes to
 * an HTTP/2 server running kinesalite's request handler through Node's compatibility API,
 * anything else to kinesalite's own HTTP/1.1 server.
 */

export interface KinesisOptions {
  readonly port: number;
  /** LevelDB directory (must exist). */
  readonly path: string;
}

export interface KinesisServer {
  /** Listening socket, for errors like EADDRINUSE. */
  readonly server: ReturnType<typeof createNetServer>;
  close(): Promise<void>;
}

const HTTP2_PREFACE = 'PRI * HTTP/2.0';

type RequestListener = (req: IncomingMessage, res: ServerResponse) => void;

export function createKinesisServer(options: KinesisOptions): KinesisServer {
  const http1: Server = kinesalite({
    path: options.path,
    // Streams become ACTIVE at once: nothing local needs to wait for provisioning.
    createStreamMs: 0,
    deleteStreamMs: 0,
    updateStreamMs: 0,
    // kinesalite's default is 10 shards per account; AWS accounts start at 200 or more (500 in the
    // largest regions). The test suite's scenarios each make a stream of their own on one stack.
    shardLimit: 200,
  });
  const handler = http1.listeners('request')[0] as RequestListener | undefined;
  if (!handler) throw new Error('kinesalite exposes no request handler');
  const http2 = createHttp2Server();
  // kinesalite uses only the request/response API that Node's HTTP/2 compatibility layer provides.
  http2.on('request', (req, res) =>
    handler(req as unknown as IncomingMessage, res as unknown as ServerResponse),
  );

  const sockets = new Set<Socket>();
  const sessions = new Set<Http2Session>();
  http2.on('session', (session) => {
    sessions.add(session);
    session.once('close', () => sessions.delete(session));
  });

  const front = createNetServer((socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    socket.once('data', (first: Buffer) => {
      socket.pause();
      socket.unshift(first);
      const target = first.toString('latin1', 0, HTTP2_PREFACE.length) === HTTP2_PREFACE ? http2 : http1;
      target.emit('connection', socket);
      process.nextTick(() => socket.resume());
    });
  });

  return {
    server: front,
    close: () =>
      new Promise<void>((resolve) => {
        front.close(() => {
          // kinesalite's close() closes its LevelDB before its (never listening) HTTP server,
          // which then reports "not running": that error is expected here.
          http1.close(() => resolve());
        });
        for (const session of sessions) session.destroy();
        for (const socket of sockets) socket.destroy();
      }),
  };
}
