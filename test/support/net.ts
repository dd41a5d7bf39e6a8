import { connect, createServer, type Server, type Socket } from 'node:net';

/** A port nothing listens on right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export interface PartitionProxy {
  /** The proxy's URL: point a client here instead of at the engine. */
  endpoint: string;
  /** From now on nothing gets through either way; connections stay open and silent (a partition). */
  hang(): void;
  heal(): void;
  close(): Promise<void>;
}

/**
 * A TCP proxy in front of an engine that can go silent: requests are accepted and never answered,
 * the way a network partition or a stuck dependency looks to a client (no error, just nothing).
 */
export async function startPartitionProxy(target: string): Promise<PartitionProxy> {
  const { hostname, port } = new URL(target);
  let hung = false;
  const sockets = new Set<Socket>();
  const track = (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
  };
  const server: Server = createServer((client) => {
    track(client);
    if (hung) return; // accepted, never answered
    const upstream = connect(Number(port), hostname);
    track(upstream);
    client.on('data', (chunk) => {
      if (!hung) upstream.write(chunk);
    });
    upstream.on('data', (chunk) => {
      if (!hung) client.write(chunk);
    });
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  const listenPort = await freePort();
  await new Promise<void>((resolve) => server.listen(listenPort, '127.0.0.1', resolve));
  return {
    endpoint: `http://127.0.0.1:${listenPort}`,
    hang: () => {
      hung = true;
    },
    heal: () => {
      hung = false;
      // Connections that swallowed bytes while hung are out of step: drop them.
      for (const socket of sockets) socket.destroy();
    },
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
