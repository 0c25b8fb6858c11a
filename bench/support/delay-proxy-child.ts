// The process of a DelayProxy (delay-proxy.ts), forked by it with the upstream's host and port and the
// delay as arguments: a TCP proxy on a free local port that holds every chunk, each way, for the delay
// before passing it on, in order. In a process of its own, so that its timers fire on time whatever the
// bench process (and the daemon in it) is doing. It reports its port over IPC and exits with its parent.
import net from 'node:net';

const [host, portText, delayText] = process.argv.slice(2);
const upstreamPort = Number(portText);
const delayMs = Number(delayText);
if (host === undefined || !(upstreamPort > 0) || !(delayMs > 0) || process.send === undefined) {
  throw new Error('usage: fork(delay-proxy-child.ts, [host, port, delayMs]) from a DelayProxy');
}

const listener = net.createServer({ allowHalfOpen: true }, (client) => {
  const server = net.connect({ host, port: upstreamPort, allowHalfOpen: true });
  const drop = (): void => {
    client.destroy();
    server.destroy();
  };
  for (const socket of [client, server]) {
    // Nagle's algorithm would hold small writes back on top of the delay.
    socket.setNoDelay(true);
    socket.on('error', drop);
  }
  forwardLate(client, server);
  forwardLate(server, client);
});

/**
 * Copies `from` to `to`, each chunk at its arrival + delayMs. One queue per direction: chunks leave in
 * the order they came, and a late timer releases every chunk that is due, so the delay never adds up.
 * The end of the stream is passed on the same way, after the chunks before it.
 */
function forwardLate(from: net.Socket, to: net.Socket): void {
  const queue: { due: number; chunk: Buffer | 'end' }[] = [];
  let timer: NodeJS.Timeout | undefined;
  const release = (): void => {
    timer = undefined;
    const now = performance.now();
    while (queue.length > 0 && queue[0]!.due <= now) {
      const { chunk } = queue.shift()!;
      if (to.destroyed) continue;
      if (chunk === 'end') to.end();
      else to.write(chunk);
    }
    if (queue.length > 0) timer = setTimeout(release, queue[0]!.due - now);
  };
  const hold = (chunk: Buffer | 'end'): void => {
    queue.push({ due: performance.now() + delayMs, chunk });
    timer ??= setTimeout(release, delayMs);
  };
  from.on('data', (chunk: Buffer) => hold(chunk));
  from.on('end', () => hold('end'));
}

listener.listen(0, '127.0.0.1', () => {
  process.send!({ port: (listener.address() as net.AddressInfo).port });
});
// The parent closes the IPC channel when it stops us or dies: either way, we are done.
process.on('disconnect', () => process.exit(0));
