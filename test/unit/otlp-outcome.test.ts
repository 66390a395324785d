// What a collector's answer means for a batch: success, a failure worth a retry, or one that is
// final, from gRPC's status (in trailers, or in the headers of a trailers-only response) and
// from OTLP/HTTP's status code and Retry-After.
import { grpcOutcome, httpOutcome } from '../../src/runtime/agent/tracing/otlp-transport';

const ok = { ':status': 200, 'content-type': 'application/grpc' };

describe('grpcOutcome', () => {
  it('succeeds on grpc-status 0 in the trailers', () => {
    expect(grpcOutcome(ok, { 'grpc-status': '0' })).toEqual({ ok: true });
  });

  it('reads a trailers-only response from its headers', () => {
    expect(grpcOutcome({ ...ok, 'grpc-status': '14' }, undefined)).toEqual({
      ok: false,
      retryable: true,
      error: 'grpc-status 14',
    });
  });

  it.each([
    [1, true],
    [2, false],
    [3, false],
    [4, true],
    [7, false],
    [8, true],
    [10, true],
    [11, true],
    [12, false],
    [13, false],
    [14, true],
    [15, true],
    [16, false],
  ])('treats grpc-status %i as retryable: %s', (code, retryable) => {
    expect(grpcOutcome(ok, { 'grpc-status': String(code) })).toMatchObject({
      ok: false,
      retryable,
    });
  });

  it('decodes a percent-encoded grpc-message, and keeps one that does not decode', () => {
    expect(
      grpcOutcome(ok, { 'grpc-status': '3', 'grpc-message': 'bad%20span%3A%20%E2%9C%97' }),
    ).toMatchObject({ error: 'grpc-status 3: bad span: ✗' });
    expect(grpcOutcome(ok, { 'grpc-status': '3', 'grpc-message': '100%' })).toMatchObject({
      error: 'grpc-status 3: 100%',
    });
  });

  it('retries a proxy’s 503 without grpc-status, not its 404', () => {
    expect(grpcOutcome({ ':status': 503 }, undefined)).toMatchObject({
      retryable: true,
      error: 'HTTP 503',
    });
    expect(grpcOutcome({ ':status': 404 }, undefined)).toMatchObject({
      retryable: false,
      error: 'HTTP 404',
    });
  });

  it('retries a stream that closed without an answer or without a status', () => {
    expect(grpcOutcome(undefined, undefined)).toMatchObject({ ok: false, retryable: true });
    expect(grpcOutcome(ok, {})).toMatchObject({ ok: false, retryable: true });
  });
});

describe('httpOutcome', () => {
  it.each([200, 202, 299])('succeeds on %i', (status) => {
    expect(httpOutcome(status, {})).toEqual({ ok: true });
  });

  it.each([
    [429, true],
    [502, true],
    [503, true],
    [504, true],
    [400, false],
    [401, false],
    [404, false],
    [413, false],
    [500, false],
  ])('treats %i as retryable: %s', (status, retryable) => {
    expect(httpOutcome(status, {})).toEqual({ ok: false, retryable, error: `HTTP ${status}` });
  });

  it('takes Retry-After in seconds from a retryable answer only', () => {
    expect(httpOutcome(429, { 'retry-after': '7' })).toMatchObject({ retryAfterMs: 7_000 });
    expect(httpOutcome(503, { 'retry-after': 'Wed, 21 Oct 2015 07:28:00 GMT' })).not.toHaveProperty(
      'retryAfterMs',
    );
    expect(httpOutcome(400, { 'retry-after': '7' })).not.toHaveProperty('retryAfterMs');
  });
});
