import { type AddressInfo, createServer } from 'node:net';

/** A port the kernel hands out now on `host` (listen on 0, read, close): for servers started on a known free port. */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, host, () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}
