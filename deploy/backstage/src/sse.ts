/**
 * A small reader of server-sent events over fetch, for paved's run log
 * stream (GET /api/v1/runs/{id}/logs): it parses text/event-stream as the
 * HTML standard's "event stream interpretation" does, and reconnects a
 * dropped stream with Last-Event-ID, so the stream goes on after the last
 * event it had.
 */

/** One dispatched event. */
export interface SseEvent {
  /** The event type: "message" unless an `event:` field named another. */
  type: string;
  /** The event's data lines, joined by "\n". */
  data: string;
  /** The stream's last event id when the event was dispatched. */
  lastEventId: string;
}

/** Parses an event stream chunk by chunk; chunks may split lines anywhere. */
export class SseParser {
  /** The last event id (the `id:` field), carried across events. */
  lastEventId = '';
  /** The reconnection time the server asked for (`retry:`), in ms. */
  retry: number | undefined;

  private buf = '';
  private started = false;
  private type = '';
  private data: string[] = [];
  private idBuffer: string;

  /** lastEventId is the id a resumed stream starts after. */
  constructor(lastEventId = '') {
    this.lastEventId = lastEventId;
    this.idBuffer = lastEventId;
  }

  /** Feeds a chunk of the stream and returns the events it completed. */
  push(chunk: string): SseEvent[] {
    this.buf += chunk;
    if (!this.started) {
      if (this.buf.length === 0) {
        return [];
      }
      this.started = true;
      if (this.buf.charCodeAt(0) === 0xfeff) {
        this.buf = this.buf.slice(1);
      }
    }
    const out: SseEvent[] = [];
    const eol = /[\r\n]/g;
    let start = 0;
    for (;;) {
      eol.lastIndex = start;
      const m = eol.exec(this.buf);
      if (!m) {
        break;
      }
      const i = m.index;
      if (this.buf[i] === '\r' && i + 1 === this.buf.length) {
        break; // a CR at the end of a chunk may be the first half of CRLF
      }
      const line = this.buf.slice(start, i);
      start = i + (this.buf[i] === '\r' && this.buf[i + 1] === '\n' ? 2 : 1);
      this.line(line, out);
    }
    this.buf = this.buf.slice(start);
    return out;
  }

  private line(line: string, out: SseEvent[]): void {
    if (line === '') {
      this.lastEventId = this.idBuffer;
      if (this.data.length > 0) {
        out.push({ type: this.type || 'message', data: this.data.join('\n'), lastEventId: this.lastEventId });
      }
      this.type = '';
      this.data = [];
      return;
    }
    if (line.startsWith(':')) {
      return; // a comment: paved's heartbeat
    }
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) {
      value = value.slice(1);
    }
    switch (field) {
      case 'event':
        this.type = value;
        break;
      case 'data':
        this.data.push(value);
        break;
      case 'id':
        if (!value.includes('\0')) {
          this.idBuffer = value;
        }
        break;
      case 'retry':
        if (/^\d+$/.test(value)) {
          this.retry = Number(value);
        }
        break;
      default:
        break; // unknown fields are ignored
    }
  }
}

/** An answer that reconnecting cannot change (401, 403, 404, ...). */
export class SseHttpError extends Error {
  constructor(
    readonly status: number,
    readonly body: string,
    message?: string,
  ) {
    super(message ?? `the event stream answered HTTP ${status}`);
    this.name = 'SseHttpError';
  }
}

/** Why and when the stream reconnects. */
export interface RetryInfo {
  /** Consecutive attempts that ended without an event. */
  failures: number;
  delayMs: number;
  /** The id the next connection resumes after ("" for the start). */
  lastEventId: string;
  reason: string;
}

export interface FollowOptions {
  url: string | URL;
  /** More request headers (Authorization). */
  headers?: Record<string, string>;
  /** Resume after this event id. */
  lastEventId?: string;
  signal?: AbortSignal;
  fetch?: typeof fetch;
  /** The first reconnection's delay, unless the server set `retry:` (default 1 s). */
  minDelayMs?: number;
  /** The longest delay between attempts (default 30 s). */
  maxDelayMs?: number;
  /** Consecutive attempts without an event before giving up (default 20). */
  maxFailures?: number;
  /** A connection silent this long is dropped and reopened (default 60 s; paved sends a heartbeat every 15 s). */
  idleTimeoutMs?: number;
  /** Told before each reconnection. */
  onRetry?: (info: RetryInfo) => void;
}

const retryable = new Set([408, 425, 429, 500, 502, 503, 504]);

/**
 * Follows an event stream, reconnecting as needed, and yields its events
 * until the caller stops (break) or the signal aborts. It throws an
 * SseHttpError for an answer a reconnection cannot change, and an Error
 * after maxFailures attempts in a row without an event.
 */
export async function* followEvents(opts: FollowOptions): AsyncGenerator<SseEvent, void, undefined> {
  const fetchImpl = opts.fetch ?? fetch;
  const minDelay = opts.minDelayMs ?? 1000;
  const maxDelay = opts.maxDelayMs ?? 30000;
  const maxFailures = opts.maxFailures ?? 20;
  const idleTimeout = opts.idleTimeoutMs ?? 60000;
  const signal = opts.signal;
  let lastEventId = opts.lastEventId ?? '';
  let serverRetry: number | undefined;
  let failures = 0;

  for (;;) {
    signal?.throwIfAborted();
    const conn = new AbortController();
    const onAbort = () => conn.abort(signal?.reason);
    signal?.addEventListener('abort', onAbort, { once: true });
    let idle: NodeJS.Timeout | undefined;
    let idled = false;
    const resetIdle = () => {
      clearTimeout(idle);
      idle = setTimeout(() => {
        idled = true;
        conn.abort(new Error('idle'));
      }, idleTimeout);
    };
    let reason = '';
    let retryAfterMs: number | undefined;
    try {
      resetIdle();
      const headers: Record<string, string> = { Accept: 'text/event-stream', 'Cache-Control': 'no-cache', ...opts.headers };
      if (lastEventId !== '') {
        headers['Last-Event-ID'] = lastEventId;
      }
      const res = await fetchImpl(opts.url, { headers, signal: conn.signal });
      if (!res.ok) {
        const body = await res.text().catch(() => '');
        if (!retryable.has(res.status)) {
          throw new SseHttpError(res.status, body);
        }
        reason = `HTTP ${res.status}`;
        retryAfterMs = retryAfter(res.headers.get('Retry-After'));
      } else if (!(res.headers.get('Content-Type') ?? '').startsWith('text/event-stream') || !res.body) {
        throw new SseHttpError(res.status, '', `the answer is not an event stream (Content-Type ${res.headers.get('Content-Type') ?? 'none'})`);
      } else {
        const parser = new SseParser(lastEventId);
        const reader = res.body.getReader();
        const decoder = new TextDecoder();
        for (;;) {
          const { done, value } = await reader.read();
          if (done) {
            break;
          }
          resetIdle();
          const events = parser.push(decoder.decode(value, { stream: true }));
          serverRetry = parser.retry ?? serverRetry;
          for (const ev of events) {
            lastEventId = ev.lastEventId;
            failures = 0;
            yield ev;
          }
          lastEventId = parser.lastEventId; // an event without data moves it too
        }
        reason = 'the stream ended';
      }
    } catch (err) {
      if (signal?.aborted) {
        throw abortError(signal);
      }
      if (err instanceof SseHttpError) {
        throw err;
      }
      reason = idled ? `no data for ${idleTimeout} ms` : `the connection failed: ${errorText(err)}`;
    } finally {
      clearTimeout(idle);
      signal?.removeEventListener('abort', onAbort);
      conn.abort(); // releases the connection when the caller stopped early
    }
    failures++;
    if (failures > maxFailures) {
      throw new Error(`gave up on the event stream after ${maxFailures} attempts in a row: ${reason}`);
    }
    const base = retryAfterMs ?? serverRetry ?? minDelay;
    const delayMs = Math.min(maxDelay, base * 2 ** (failures - 1));
    opts.onRetry?.({ failures, delayMs, lastEventId, reason });
    await sleep(delayMs, signal);
  }
}

function retryAfter(v: string | null): number | undefined {
  if (v && /^\d+$/.test(v)) {
    return Number(v) * 1000;
  }
  return undefined;
}

/** An error's message with its cause (fetch's "fetch failed" says little on its own). */
export function errorText(err: unknown): string {
  if (!isErrorLike(err)) {
    return String(err);
  }
  const cause = isErrorLike(err.cause) ? `: ${err.cause.message}` : '';
  return err.message + cause;
}

// Errors of fetch may come from another realm (a test's vm context): instanceof fails.
function isErrorLike(v: unknown): v is { message: string; cause?: unknown } {
  return typeof v === 'object' && v !== null && typeof (v as { message?: unknown }).message === 'string';
}

/** What a signal aborted with, as an error to throw. */
export function abortError(signal: AbortSignal): unknown {
  return isErrorLike(signal.reason) ? signal.reason : new Error('aborted');
}

/** Waits ms, or rejects when the signal aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(abortError(signal));
      return;
    }
    const done = () => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    };
    const t = setTimeout(done, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal ? abortError(signal) : new Error('aborted'));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
