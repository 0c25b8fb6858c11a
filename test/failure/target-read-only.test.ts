// Targets that refuse writes. A database read-only by default (default_transaction_read_only, a guard
// for its applications) is written all the same, as native logical replication and pg_dump's output
// write it: trigsync writes only where its config says. A target whose address leads to a standby (a
// read replica's endpoint, a failover under way) is said to be one by `check` and parks with that
// message, writing nothing; promoted, it takes what waited. A source that is a standby is said to be one,
// and a daemon waits for it to be a primary.
import { describe, expect, it } from 'vitest';

import {
  coldStandby,
  freshDatabase,
  ident,
  privateCluster,
  sharedClusters,
  waitFor,
} from '../support/fixtures.js';
import {
  collectingLogger,
  configFile,
  expectSameItems,
  freshPair,
  makeConfig,
  runCli,
  startDaemon,
  waitParked,
  waitCaughtUp,
} from '../support/replication.js';

const table = 'create table items (id int primary key, v text not null)';

async function writeItems(url: string, first: number, count: number): Promise<void> {
  const { source } = sharedClusters();
  const name = new URL(url).pathname.slice(1);
  await source.query(
    `insert into items select g, 'v' || g from generate_series($1::int, $2::int) g`,
    [first, first + count - 1],
    name,
  );
  await source.query(`update items set v = v || '!' where id % 3 = 0`, [], name);
  await source.query(`delete from items where id = $1`, [first], name);
}

describe('a target that refuses writes', () => {
  it('is written where its database is read-only by default, the initial copy too', async () => {
    const { src, dst } = await freshPair(table);
    await dst.cluster.query(`alter database ${ident(dst.name)} set default_transaction_read_only = on`);
    await writeItems(src.url, 1, 200);
    const raw = {
      source: { url: src.url },
      tables: ['items'],
      targets: [{ name: 'ro', url: dst.url, initialSync: 'copy' }],
      apply: { pollIntervalMs: 100 },
      metrics: { enabled: false },
    };
    const config = makeConfig(raw);
    const daemon = await startDaemon(config);
    await writeItems(src.url, 1_000, 300);
    await waitCaughtUp(config);
    await expectSameItems(src.url, dst.url);
    // Applications on that database are still refused: only trigsync's sessions write.
    await expect(dst.cluster.query(`insert into items values (-1, 'app')`, [], dst.name)).rejects.toThrow(
      /read-only transaction/,
    );
    await daemon.stop();
  });

  it('says a standby is one, parks on it writing nothing, and applies once it is promoted', async () => {
    const primary = await privateCluster('target-primary');
    await primary.query('create database app');
    await primary.query(table, [], 'app');
    const standby = await coldStandby(primary, 'target-standby');
    const src = await freshDatabase(sharedClusters().source);
    await src.cluster.query(table, [], src.name);
    const raw = {
      source: { url: src.url },
      tables: ['items'],
      targets: [{ name: 'replica', url: standby.url('app'), initialSync: 'none' }],
      apply: { pollIntervalMs: 100 },
      retry: { initialDelayMs: 50, maxDelayMs: 500, dataErrorDelayMs: 200 },
      metrics: { enabled: false },
    };
    const config = makeConfig(raw);
    const file = await configFile(raw);
    const standbyMessage =
      /target replica: the server is a standby in recovery and takes no writes \(a read replica's address, or a failover under way\); point targets\.replica\.url at its primary/;
    const checked = await runCli(file, 'check');
    expect(checked.out).toMatch(standbyMessage);
    expect(checked.code).toBe(2);

    const daemon = await startDaemon(config);
    await writeItems(src.url, 1, 100);
    const parked = await waitParked(config, 'replica', { what: 'the standby target to park' });
    expect(parked.lastError).toMatch(standbyMessage);
    expect(await standby.query('select count(*)::int as n from items', [], 'app')).toEqual([{ n: 0 }]);

    // A failover promotes it: the target takes what waited, and what comes after.
    await standby.query('select pg_promote()');
    await writeItems(src.url, 500, 50);
    await waitCaughtUp(config);
    await expectSameItems(src.url, standby.url('app'));
    await daemon.stop();
  });
  it('a source that is a standby: check says so, and a daemon waits, saying so, until it is promoted', async () => {
    const primary = await privateCluster('source-primary');
    await primary.query('create database app');
    await primary.query(table, [], 'app');
    const standby = await coldStandby(primary, 'source-standby');
    const dst = await freshDatabase(sharedClusters().target1);
    await dst.cluster.query(table, [], dst.name);
    const raw = {
      source: { url: standby.url('app') },
      tables: ['items'],
      targets: [{ name: 'b', url: dst.url, initialSync: 'none' }],
      apply: { pollIntervalMs: 100 },
      retry: { initialDelayMs: 50, maxDelayMs: 300 },
      metrics: { enabled: false },
    };
    const config = makeConfig(raw);
    const standbyMessage =
      /source: the server is a standby in recovery and takes no writes \(a read replica's address, or a failover under way\); point source\.url at its primary/;
    const checked = await runCli(await configFile(raw), 'check');
    expect(checked.out).toMatch(standbyMessage);
    expect(checked.code).toBe(2);

    const { logger, lines } = collectingLogger();
    const starting = startDaemon(config, logger);
    await waitFor(
      () => lines.some((l) => l.includes('source not ready; retrying') && standbyMessage.test(l)),
      {
        what: 'the daemon to say that its source is a standby',
      },
    );
    // Promoted (a failover): the daemon installs, captures and applies.
    await standby.query('select pg_promote()');
    const daemon = await starting;
    await standby.query(`insert into items select g, 'v' || g from generate_series(1, 50) g`, [], 'app');
    await waitCaughtUp(config);
    await expectSameItems(standby.url('app'), dst.url);
    await daemon.stop();
  });
});
