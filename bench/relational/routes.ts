// The network between each replication and the server across from it, per delay: trigsync's daemon
// reaches the target through a delay proxy, native's subscriber reaches the source through another. Each
// route's delay is checked by timing `select 1` through it, for the report's header.
import { DelayProxy, selectOneMs } from '../support/delay-proxy.js';
import { fmt } from '../support/report.js';
import type { Rig } from './setup.js';
import type { Route } from './sides.js';

export interface MeasuredRoute extends Route {
  /** Median `select 1` through the route, in ms: about twice the delay more than without it. */
  targetSelectOneMs: number;
  sourceSelectOneMs: number;
}

export interface Routes {
  routes: MeasuredRoute[];
  close(): Promise<void>;
}

/** A route per delay (0: the servers' own URLs), its proxies started and its round trip measured. */
export async function openRoutes(rig: Rig, delays: readonly number[]): Promise<Routes> {
  const proxies: DelayProxy[] = [];
  const close = async (): Promise<void> => {
    await Promise.allSettled(proxies.map((proxy) => proxy.close()));
  };
  try {
    const routes: MeasuredRoute[] = [];
    for (const delayMs of delays) {
      const through = async (url: string): Promise<string> => {
        if (delayMs === 0) return url;
        const proxy = await DelayProxy.start(url, delayMs);
        proxies.push(proxy);
        return proxy.url(url);
      };
      const targetUrl = await through(rig.targetUrl);
      const sourceUrl = await through(rig.sourceUrl);
      routes.push({
        delayMs,
        targetUrl,
        sourceUrl,
        targetSelectOneMs: await selectOneMs(targetUrl),
        sourceSelectOneMs: await selectOneMs(sourceUrl),
      });
    }
    return { routes, close };
  } catch (thrown) {
    await close();
    throw thrown;
  }
}

/** For the header: each delay and what `select 1` takes through it. */
export function routeLines(routes: readonly MeasuredRoute[]): string[] {
  return routes.map(
    (route, i) =>
      `${i === 0 ? 'network ' : '        '} ${route.delayMs === 0 ? 'direct' : `${route.delayMs} ms one way`}: ` +
      `select 1 takes ${fmt(route.targetSelectOneMs)} ms to the target (trigsync's route), ` +
      `${fmt(route.sourceSelectOneMs)} ms to the source (native's)`,
  );
}
