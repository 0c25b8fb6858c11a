// Connection errors that name their database (src/db/connect.ts): the message says `source: ...` or
// `target NAME: ...`, and the taxonomy (src/failure/errors.ts) treats the named error as its cause.
import fc from 'fast-check';
import pg from 'pg';
import { describe, expect, it } from 'vitest';

import {
  DatabaseConnectionError,
  nameDatabase,
  sourceDatabase,
  targetDatabase,
} from '../../src/db/connect.js';
import { classifyError, sqlState } from '../../src/failure/errors.js';

function databaseError(code: string, message: string): pg.DatabaseError {
  const error = new pg.DatabaseError(message, message.length, 'error');
  error.code = code;
  return error;
}

function socketError(code: string, address = '127.0.0.1:5432'): NodeJS.ErrnoException {
  return Object.assign(new Error(`connect ${code} ${address}`), { code, syscall: 'connect' });
}

describe('DatabaseConnectionError', () => {
  it('names the database and keeps the cause, its kind and its code', () => {
    const refused = socketError('ECONNREFUSED');
    const named = new DatabaseConnectionError(targetDatabase('analytics'), refused);
    expect(named.message).toBe('target analytics: connect ECONNREFUSED 127.0.0.1:5432');
    expect(named.reason).toBe('connect ECONNREFUSED 127.0.0.1:5432');
    expect(named.database).toBe('target analytics');
    expect(named.cause).toBe(refused);
    expect(named.code).toBe('ECONNREFUSED');
    expect(classifyError(named)).toBe('connection');
    expect(sqlState(named)).toBeUndefined();

    const password = databaseError('28P01', 'password authentication failed for user "app"');
    const source = new DatabaseConnectionError(sourceDatabase, password);
    expect(source.message).toBe('source: password authentication failed for user "app"');
    expect(sqlState(source)).toBe('28P01');
    expect(classifyError(source)).toBe('connection');
  });

  it('keeps the kind and SQLSTATE of any cause', () => {
    fc.assert(
      fc.property(
        fc.stringMatching(/^[0-9A-Z]{5}$/),
        fc.string({ minLength: 1, maxLength: 40 }),
        (code, message) => {
          const cause = databaseError(code, message);
          const named = new DatabaseConnectionError(sourceDatabase, cause);
          expect(classifyError(named)).toBe(classifyError(cause));
          expect(sqlState(named)).toBe(sqlState(cause));
          expect(named.message).toBe(`source: ${message}`);
        },
      ),
    );
  });

  it("tells a refused connection to a name of several addresses by its parts' messages", () => {
    const aggregate = Object.assign(
      new AggregateError([socketError('ECONNREFUSED', '::1:5432'), socketError('ECONNREFUSED')], ''),
      { code: 'ECONNREFUSED' },
    );
    const named = new DatabaseConnectionError(sourceDatabase, aggregate);
    expect(named.message).toBe('source: connect ECONNREFUSED ::1:5432; connect ECONNREFUSED 127.0.0.1:5432');
    expect(classifyError(named)).toBe('connection');
  });
});

describe('nameDatabase', () => {
  it('names connection errors only, once, and only when the database is known', () => {
    const reset = socketError('ECONNRESET');
    const named = nameDatabase('source', reset);
    expect(named).toBeInstanceOf(DatabaseConnectionError);
    expect((named as Error).message).toBe('source: connect ECONNRESET 127.0.0.1:5432');
    expect(nameDatabase('target a', named)).toBe(named);
    expect(nameDatabase(undefined, reset)).toBe(reset);
    // An error of the statement itself is the statement's, not the connection's: left as pg raised it.
    const unique = databaseError('23505', 'duplicate key value violates unique constraint');
    expect(nameDatabase('target a', unique)).toBe(unique);
    const terminated = new Error('Connection terminated unexpectedly');
    expect((nameDatabase('target a', terminated) as Error).message).toBe(
      'target a: Connection terminated unexpectedly',
    );
  });
});
