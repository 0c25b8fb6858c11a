// The error taxonomy (src/failure/errors.ts): which failures are retried as connection errors, which park
// a target as data errors, which need an operator. Errors shaped as pg and Node raise them; no database.
import fc from 'fast-check';
import pg from 'pg';
import { describe, expect, it } from 'vitest';

import {
  classifyError,
  coerceError,
  ConfigError,
  ConflictError,
  CopyFailed,
  sqlState,
  TrigsyncError,
  UsageError,
} from '../../src/failure/errors.js';

/** An error as pg raises it for an ErrorResponse from the server. */
function databaseError(code: string, message = 'error from the server'): pg.DatabaseError {
  const error = new pg.DatabaseError(message, message.length, 'error');
  error.code = code;
  return error;
}

/** A socket error as Node raises it. */
function socketError(code: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`connect ${code} 127.0.0.1:5432`), { code, syscall: 'connect' });
}

describe('classifyError', () => {
  it('retries the connection when the server is going away, busy or out of reach', () => {
    for (const code of [
      '08006', // connection_failure
      '08P01', // protocol_violation
      '57P01', // admin_shutdown
      '57P03', // cannot_connect_now: starting up
      '57014', // query_canceled
      '53300', // too_many_connections
      '53100', // disk_full
      '28P01', // invalid_password: until an operator fixes it
      '3D000', // invalid_catalog_name: no such database yet
      '40001', // serialization_failure
      '40P01', // deadlock_detected
      '55P03', // lock_not_available: a lock_timeout expired, not a change refused
      '58030', // io_error
      'XX000', // internal_error
    ]) {
      expect(classifyError(databaseError(code)), code).toBe('connection');
    }
  });

  it('parks on what the server refuses in the change itself', () => {
    for (const code of [
      '23505', // unique_violation
      '23503', // foreign_key_violation
      '23502', // not_null_violation
      '22P02', // invalid_text_representation
      '22001', // string_data_right_truncation
      '42703', // undefined_column
      '42P01', // undefined_table
      '42501', // insufficient_privilege
      'P0001', // raise_exception, from a trigger
      'TS001', // trigsync's own apply_conflicts_found
    ]) {
      expect(classifyError(databaseError(code)), code).toBe('data');
    }
  });

  it('retries the connection on the socket errors of an unreachable peer', () => {
    for (const code of [
      'ECONNREFUSED',
      'ECONNRESET',
      'ETIMEDOUT',
      'EPIPE',
      'EHOSTUNREACH',
      'ENETUNREACH',
      'ENOTFOUND',
      'EAI_AGAIN',
    ]) {
      expect(classifyError(socketError(code)), code).toBe('connection');
    }
    expect(classifyError(socketError('ENOENT'))).toBe('data');
  });

  it('retries the connection when pg loses its socket without a code', () => {
    for (const message of [
      'Connection terminated unexpectedly',
      'Connection terminated due to connection timeout',
      'Client has encountered a connection error and is not queryable',
      'timeout expired',
    ]) {
      expect(classifyError(new Error(message)), message).toBe('connection');
    }
    expect(classifyError('Connection terminated unexpectedly')).toBe('connection');
    expect(classifyError(new Error('value too long for type character varying(3)'))).toBe('data');
  });

  it('keeps the kind of its own errors, whatever their message says', () => {
    expect(classifyError(new ConfigError('sources.main.url: missing'))).toBe('config');
    expect(classifyError(new UsageError('unknown command: frobnicate'))).toBe('config');
    expect(classifyError(new ConflictError('key (id)=(1) is not as expected'))).toBe('data');
    expect(classifyError(new TrigsyncError('Connection terminated: by design', 'data'))).toBe('data');
    expect(classifyError(new CopyFailed('copy of public.t failed', databaseError('57P01')))).toBe(
      'connection',
    );
    expect(classifyError(new CopyFailed('copy of public.t failed', databaseError('23505')))).toBe('data');
  });

  it('gives a kind for anything thrown, and never throws itself', () => {
    fc.assert(
      fc.property(
        fc.anything({ withMap: true, withSet: true, withNullPrototype: true, withBigInt: true }),
        (thrown) => {
          expect(['connection', 'data', 'config']).toContain(classifyError(thrown));
          expect(coerceError(thrown)).toBeInstanceOf(Error);
        },
      ),
    );
  });
});

describe('sqlState', () => {
  it('gives the SQLSTATE of a pg error and nothing for other errors', () => {
    expect(sqlState(databaseError('23503'))).toBe('23503');
    expect(sqlState(databaseError('XX000'))).toBe('XX000');
    expect(sqlState(socketError('ECONNREFUSED'))).toBeUndefined();
    // Node's five-letter codes are not SQLSTATEs, which all hold a digit.
    for (const code of ['EPIPE', 'EPERM', 'EBUSY']) expect(sqlState(socketError(code))).toBeUndefined();
    expect(sqlState(new Error('23503'))).toBeUndefined();
    expect(sqlState({ code: 23503 })).toBeUndefined();
    expect(sqlState({ code: '2350' })).toBeUndefined();
    expect(sqlState(null)).toBeUndefined();
    expect(sqlState(undefined)).toBeUndefined();
  });
});

describe('coerceError', () => {
  it('keeps an Error, and makes one of anything else thrown', () => {
    const error = new RangeError('out of range');
    expect(coerceError(error)).toBe(error);
    expect(coerceError('plain text').message).toBe('plain text');
    expect(coerceError({ a: 1 }).message).toBe('non-error thrown: {"a":1}');
    expect(coerceError(12n).message).toBe('non-error thrown: 12');
    const circular: { self?: unknown } = {};
    circular.self = circular;
    expect(coerceError(circular).message).toBe('non-error thrown: [object Object]');
    // Neither JSON nor String can show it.
    const unprintable = Object.assign(Object.create(null) as object, { n: 1n });
    expect(coerceError(unprintable).message).toBe('non-error thrown, which cannot be shown');
  });
});

describe('trigsync errors', () => {
  it('names each error by its class', () => {
    expect(new ConfigError('x').name).toBe('ConfigError');
    expect(new UsageError('x').name).toBe('UsageError');
    expect(new CopyFailed('x', null).name).toBe('CopyFailed');
  });

  it('lists every configuration problem', () => {
    expect(new ConfigError('a: missing').message).toBe('a: missing');
    const many = new ConfigError(['a: missing', 'b: not a number']);
    expect(many.problems).toEqual(['a: missing', 'b: not a number']);
    expect(many.message).toBe('invalid configuration:\n  a: missing\n  b: not a number');
  });

  it('keeps the cause of a failed copy, its kind and its SQLSTATE', () => {
    const cause = databaseError('23503', 'insert or update violates foreign key constraint');
    const failed = new CopyFailed('copy of public.child failed', cause);
    expect(failed.cause).toBe(cause);
    expect(failed.kind).toBe('data');
    expect(failed.code).toBe('23503');
    const cut = new CopyFailed('copy of public.child failed', socketError('ECONNRESET'));
    expect([cut.kind, cut.code]).toEqual(['connection', undefined]);
  });
});
