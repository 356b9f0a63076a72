/**
 * paved's HTTP API as the paved:run action uses it: submit a run, read a
 * run, and the address of a run's log stream. Errors carry paved's own
 * message and reasons; the token is sent, never written anywhere.
 */
import { errorText, sleep } from './sse';

/** A run's states; see paved's README, "Run states". */
export type RunState =
  | 'received'
  | 'rejected'
  | 'awaiting_approval'
  | 'queued'
  | 'dispatching'
  | 'running'
  | 'succeeded'
  | 'failed'
  | 'canceled'
  | 'timed_out';

const terminal: ReadonlySet<string> = new Set(['rejected', 'succeeded', 'failed', 'canceled', 'timed_out']);

/** Whether no state follows s. */
export function isTerminal(s: string): boolean {
  return terminal.has(s);
}

/** A run as GET /api/v1/runs/{id} shows it (the fields paved:run reads). */
export interface PavedRun {
  id: string;
  state: RunState;
  reasons?: string[];
  request?: { portal?: string; portalRunId?: string; action?: string; caller?: string };
  stack?: { tenant?: string; environment?: string; service?: string };
  pipelineUrl?: string;
  outputs?: Record<string, unknown>;
  queueAhead?: number;
  events?: { at?: string; message?: string }[];
}

/** The answer to POST /api/v1/runs. */
export interface SubmitAnswer {
  runId: string;
  state: RunState;
  reasons?: string[];
  /** True when paved already had the run (an identical repeat of the key). */
  duplicate?: boolean;
}

/** What POST /api/v1/runs takes (the idempotency key goes in a header). */
export interface RunRequest {
  portal: 'backstage';
  action: string;
  user: { email: string; name?: string; teams?: string[] };
  entity?: { identifier?: string; blueprint?: string; title?: string; team?: string[]; properties?: Record<string, unknown> };
  inputs: Record<string, unknown>;
}

/** paved refused or failed a request; message says what to do. */
export class PavedError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly reasons: string[] = [],
  ) {
    super(message);
    this.name = 'PavedError';
  }
}

export interface PavedClientOptions {
  baseUrl: string;
  token: string;
  fetch?: typeof fetch;
  /** Ends every request (the task's cancel signal). */
  signal?: AbortSignal;
  /** Attempts of a request that failed on the way or with 502/503/504 (default 4). */
  attempts?: number;
  /** The delay before the second attempt, doubled for each further one (default 500 ms). */
  retryDelayMs?: number;
  /** One request's time limit (default 30 s). */
  timeoutMs?: number;
}

/** paved's error body: {"error": "...", "reasons": [...]}. */
interface ErrorBody {
  error?: string;
  reasons?: string[];
}

const transient = new Set([502, 503, 504]);

export class PavedClient {
  private readonly base: string;
  private readonly fetchImpl: typeof fetch;

  constructor(private readonly opts: PavedClientOptions) {
    this.base = opts.baseUrl.replace(/\/+$/, '');
    this.fetchImpl = opts.fetch ?? fetch;
  }

  /** The headers that authenticate a request (for the log stream). */
  authHeaders(): Record<string, string> {
    return { Authorization: `Bearer ${this.opts.token}` };
  }

  /** The address of a run's log as server-sent events. */
  logsUrl(runId: string): string {
    return `${this.base}/api/v1/runs/${encodeURIComponent(runId)}/logs`;
  }

  /**
   * Submits a run under an idempotency key. A run paved refused (422) is
   * an answer, not an error: it is recorded, with its reasons. Retrying is
   * safe: paved answers a repeat of the key with the first run.
   */
  async submit(req: RunRequest, idempotencyKey: string): Promise<SubmitAnswer> {
    const res = await this.request('POST', '/api/v1/runs', {
      body: JSON.stringify(req),
      headers: { 'Content-Type': 'application/json', 'Idempotency-Key': idempotencyKey },
    });
    const text = await res.text();
    if (res.status === 200 || res.status === 201 || res.status === 422) {
      const answer = parse<Partial<SubmitAnswer>>(text);
      if (answer && typeof answer.runId === 'string' && answer.runId !== '' && typeof answer.state === 'string') {
        return answer as SubmitAnswer;
      }
    }
    throw refusal(res.status, text, `submitting action ${req.action}`);
  }

  /** Reads a run with its audit trail. */
  async getRun(runId: string, signal?: AbortSignal): Promise<PavedRun> {
    const res = await this.request('GET', `/api/v1/runs/${encodeURIComponent(runId)}`, { signal });
    const text = await res.text();
    if (res.status === 200) {
      const run = parse<PavedRun>(text);
      if (run && typeof run.state === 'string') {
        return run;
      }
    }
    throw refusal(res.status, text, `reading run ${runId}`);
  }

  private async request(
    method: string,
    path: string,
    init: { body?: string; headers?: Record<string, string>; signal?: AbortSignal | undefined },
  ): Promise<Response> {
    const attempts = this.opts.attempts ?? 4;
    const delay = this.opts.retryDelayMs ?? 500;
    const outer = [this.opts.signal, init.signal].filter((s): s is AbortSignal => s !== undefined);
    const stop = outer.length > 0 ? AbortSignal.any(outer) : undefined;
    for (let attempt = 1; ; attempt++) {
      stop?.throwIfAborted();
      const signals = [AbortSignal.timeout(this.opts.timeoutMs ?? 30000), ...outer];
      try {
        const res = await this.fetchImpl(this.base + path, {
          method,
          body: init.body,
          headers: { Accept: 'application/json', ...init.headers, ...this.authHeaders() },
          signal: AbortSignal.any(signals),
        });
        if (!transient.has(res.status) || attempt >= attempts) {
          return res;
        }
        await res.body?.cancel();
      } catch (err) {
        if (stop?.aborted) {
          throw err;
        }
        if (attempt >= attempts) {
          throw new PavedError(`paved could not be reached at ${this.base} (${method} ${path}, ${attempts} attempts): ${errorText(err)}`, 0);
        }
      }
      await sleep(delay * 2 ** (attempt - 1), stop);
    }
  }
}

function parse<T>(text: string): T | undefined {
  try {
    return JSON.parse(text) as T;
  } catch {
    return undefined;
  }
}

/** The error for paved's refusal, with paved's message and what to check. */
export function refusal(status: number, text: string, doing: string): PavedError {
  const body = parse<ErrorBody>(text) ?? {};
  const said = body.error ?? (text.trim().slice(0, 300) || '(no message)');
  const reasons = Array.isArray(body.reasons) ? body.reasons : [];
  const more = reasons.length > 0 ? `\n${reasons.join('\n')}` : '';
  switch (status) {
    case 401:
      return new PavedError(
        `paved refused the API token (401 Unauthorized) ${doing}: ${said}. ` +
          `The token in Backstage's app-config (paved.token) must be one of paved's api.clients tokens; it may have been revoked.${more}`,
        status,
        reasons,
      );
    case 403:
      return new PavedError(`paved refused ${doing} (403 Forbidden): ${said}${more}`, status, reasons);
    case 404:
      return new PavedError(`paved answered 404 ${doing}: ${said}${more}`, status, reasons);
    case 409:
      return new PavedError(`paved refused ${doing} (409 Conflict): ${said}${more}`, status, reasons);
    default:
      return new PavedError(`paved answered ${status} ${doing}: ${said}${more}`, status, reasons);
  }
}
