/** Connections to the source and the targets, always under trigsync's application_name. */
import pg from 'pg';

export interface ConnectOptions {
  applicationName: string;
  /** Give up connecting after this long (ms). */
  connectTimeoutMs?: number;
}

// int8 (change ids, counts) as a JS number: exact up to 2^53, which at 100k changes a second
// lasts millennia. Row images never pass through here as json: they are always read as text.
pg.types.setTypeParser(pg.types.builtins.INT8, (value) => Number(value));

export function clientConfig(url: string, options: ConnectOptions): pg.ClientConfig {
  return {
    connectionString: url,
    application_name: options.applicationName,
    connectionTimeoutMillis: options.connectTimeoutMs ?? 10_000,
    // A peer that vanishes without a FIN (a dead host, a dropped route) is noticed in minutes, not hours.
    keepAlive: true,
    keepAliveInitialDelayMillis: 10_000,
  };
}

/** Open one client; the caller ends it. */
export async function connect(url: string, options: ConnectOptions): Promise<pg.Client> {
  const client = new pg.Client(clientConfig(url, options));
  // An idle client whose server goes away emits 'error'; without a listener that would crash the process.
  client.on('error', () => undefined);
  try {
    await client.connect();
  } catch (thrown) {
    await client.end().catch(() => undefined);
    throw thrown;
  }
  return client;
}

/** Run `work` with a fresh client and close it afterwards, whatever happens. */
export async function withClient<T>(
  url: string,
  options: ConnectOptions,
  work: (client: pg.Client) => Promise<T>,
): Promise<T> {
  const client = await connect(url, options);
  try {
    return await work(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}
