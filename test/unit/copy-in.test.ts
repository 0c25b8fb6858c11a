// Row images as COPY text (src/apply/copy-in.ts), and when a step is large enough to go by COPY. No database.
import { describe, expect, it } from 'vitest';

import { copyText, RoundTrip } from '../../src/apply/copy-in.js';
import { tablePlan } from '../support/table-plan.js';

const table = { ...tablePlan(1, 't', 0), columns: ['id', 'v', 'w'] };

describe('copyText', () => {
  it('writes each column in plan order, strings de-escaped and escaped for COPY', () => {
    const images = [
      JSON.stringify({ w: 'last', v: 'tab\there\nnew\rline back\\slash \\N', id: 1 }),
      '{"id": 2, "v": "caf\\u00e9 \\"dq\\" \\/", "w": null}',
      '{"id": 12345678901234567890, "v": ""}',
    ];
    expect(copyText(table, images)).toBe(
      '1\ttab\\there\\nnew\\rline back\\\\slash \\\\N\tlast\n' +
        '2\tcafé "dq" /\t\\N\n' +
        // A number keeps its text, whatever its size; a column the image lacks is NULL.
        '12345678901234567890\t\t\\N\n',
    );
  });

  it('keeps numbers and booleans as written', () => {
    const images = ['{"id": -1.5e-300, "v": true, "w": false}'];
    expect(copyText(table, images)).toBe('-1.5e-300\ttrue\tfalse\n');
  });

  it('refuses a step with a JSON object or array among its values', () => {
    expect(copyText(table, ['{"id": 1, "v": [1, 2], "w": "x"}'])).toBeUndefined();
    expect(copyText(table, ['{"id": 1, "v": "x"}', '{"id": 2, "v": {"a": 1}}'])).toBeUndefined();
  });

  it('gives a column an image lacks the value of a column added since, escaped; a JSON null stays NULL', () => {
    const added = { ...table, missingValues: new Map([['w', 'tab\there']]) };
    expect(copyText(added, ['{"id": 1, "v": "x"}', '{"id": 2, "v": "y", "w": null}'])).toBe(
      '1\tx\ttab\\there\n2\ty\t\\N\n',
    );
  });
});

describe('RoundTrip', () => {
  it('takes no COPY before it has timed the link', () => {
    expect(new RoundTrip().copyFromRows).toBe(Infinity);
  });

  it('takes COPY from 1,000 rows on a short link, and from more the longer the shortest round trip', () => {
    const trip = new RoundTrip();
    trip.observe(0.2);
    expect(trip.copyFromRows).toBe(1000);
    const far = new RoundTrip();
    far.observe(45);
    far.observe(40);
    far.observe(90);
    expect(far.copyFromRows).toBe(40_000);
  });

  it('calls a link short under 5 ms, by its shortest round trip, and none before it is timed', () => {
    const trip = new RoundTrip();
    expect(trip.short).toBe(false);
    trip.observe(6);
    expect(trip.short).toBe(false);
    trip.observe(0.3);
    trip.observe(12);
    expect(trip.short).toBe(true);
  });
});
