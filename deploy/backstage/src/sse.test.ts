import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { followEvents, SseHttpError, SseParser, type RetryInfo, type SseEvent } from './sse';

describe('SseParser', () => {
  it('parses fields, comments and multi-line data split anywhere, with any line ending', () => {
    const stream =
      '\uFEFFretry: 2000\r\n\r\n: still here\n\nid: 1\ndata: {"seq":1}\n\nid: 2\r\nevent: note\r\ndata: a\r\ndata:b\r\n\r\n' +
      'data\n\nid: 3\rdata: c\r\rid: 4\n\nevent: end\ndata: succeeded\n\n';
    // Every split point at once, one character a chunk.
    const p = new SseParser();
    const got: SseEvent[] = [];
    for (const ch of stream) {
      got.push(...p.push(ch));
    }
    expect(got).toEqual([
      { type: 'message', data: '{"seq":1}', lastEventId: '1' },
      { type: 'note', data: 'a\nb', lastEventId: '2' },
      { type: 'message', data: '', lastEventId: '2' },
      { type: 'message', data: 'c', lastEventId: '3' },
      { type: 'end', data: 'succeeded', lastEventId: '4' },
    ]);
    expect(p.retry).toBe(2000);
    expect(p.lastEventId).toBe('4');
  });

  it('keeps the id it resumed after until the stream names another', () => {
    const p = new SseParser('7');
    expect(p.push('data: x\n\n')).toEqual([{ type: 'message', data: 'x', lastEventId: '7' }]);
  });

  it('dispatches nothing for an unfinished event', () => {
    const p = new SseParser();
    expect(p.push('id: 1\ndata: half')).toEqual([]);
    expect(p.lastEventId).toBe('');
  });
});

/** A tiny event-stream server whose handler changes per connection. */
class StreamServer {
  readonly connections: { lastEventId: string | undefined; auth: string | undefined }[] = [];
  private server: Server;
  url = '';

  constructor(private handle: (n: number, req: IncomingMessage, res: ServerResponse) => void) {
    this.server = createServer((req, res) => {
      this.connections.push({
        lastEventId: req.headers['last-event-id'] as string | undefined,
        auth: req.headers.authorization,
      });
      this.handle(this.connections.length, req, res);
    });
  }

  async start(): Promise<this> {
    await new Promise<void>(resolve => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/logs`;
    return this;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>(resolve => this.server.close(() => resolve()));
  }
}

function open(res: ServerResponse): void {
  res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-store' });
  res.write('retry: 2000\n\n');
}

function line(seq: number): string {
  return `id: ${seq}\ndata: ${JSON.stringify({ seq, at: '2025-01-01T00:00:00Z', line: `line ${seq}` })}\n\n`;
}

/** Reads the stream until its end event. */
async function collect(opts: Parameters<typeof followEvents>[0]): Promise<SseEvent[]> {
  const got: SseEvent[] = [];
  for await (const ev of followEvents(opts)) {
    got.push(ev);
    if (ev.type === 'end') {
      break;
    }
  }
  return got;
}

const fast = { minDelayMs: 1, maxDelayMs: 5 };

describe('followEvents', () => {
  let srv: StreamServer | undefined;
  afterEach(async () => {
    await srv?.stop();
    srv = undefined;
  });

  it('resumes with Last-Event-ID after a dropped connection', async () => {
    srv = await new StreamServer((n, req, res) => {
      open(res);
      if (n === 1) {
        // Two lines, then the connection drops in the middle of the third.
        res.write(line(1) + line(2) + 'id: 3\ndata: {"se', () => res.socket?.destroy());
        return;
      }
      const after = Number(req.headers['last-event-id'] ?? 0);
      for (let seq = after + 1; seq <= 4; seq++) {
        res.write(line(seq));
      }
      res.end('event: end\ndata: succeeded\n\n');
    }).start();

    const retries: RetryInfo[] = [];
    const got = await collect({ url: srv.url, headers: { Authorization: 'Bearer t0k' }, ...fast, onRetry: r => retries.push(r) });

    expect(got.map(e => (e.type === 'end' ? `end ${e.data}` : JSON.parse(e.data).line))).toEqual([
      'line 1',
      'line 2',
      'line 3',
      'line 4',
      'end succeeded',
    ]);
    expect(srv.connections.map(c => c.lastEventId)).toEqual([undefined, '2']);
    expect(srv.connections.every(c => c.auth === 'Bearer t0k')).toBe(true);
    expect(retries).toHaveLength(1);
    expect(retries[0]).toMatchObject({ failures: 1, lastEventId: '2' });
  });

  it('reconnects after a stream that ended without its end event, and after 503', async () => {
    srv = await new StreamServer((n, _req, res) => {
      if (n === 1) {
        open(res);
        res.end(line(1)); // paved shutting down closes streams cleanly
        return;
      }
      if (n === 2) {
        res.writeHead(503, { 'Content-Type': 'application/json' }).end('{"error":"restarting"}');
        return;
      }
      open(res);
      res.end(line(2) + 'event: end\ndata: failed\n\n');
    }).start();

    const got = await collect({ url: srv.url, ...fast });

    expect(got.map(e => e.type)).toEqual(['message', 'message', 'end']);
    expect(got[2]?.data).toBe('failed');
    expect(srv.connections.map(c => c.lastEventId)).toEqual([undefined, '1', '1']);
  });

  it('drops a silent connection and reopens it', async () => {
    srv = await new StreamServer((n, _req, res) => {
      open(res);
      if (n === 1) {
        res.write(line(1)); // then nothing, not even a heartbeat
        return;
      }
      res.end('event: end\ndata: succeeded\n\n');
    }).start();

    const got = await collect({ url: srv.url, ...fast, idleTimeoutMs: 100 });

    expect(got.map(e => e.type)).toEqual(['message', 'end']);
    expect(srv.connections.map(c => c.lastEventId)).toEqual([undefined, '1']);
  });

  it('gives up at once on an answer reconnecting cannot change', async () => {
    srv = await new StreamServer((_n, _req, res) => {
      res.writeHead(401, { 'Content-Type': 'application/json' }).end('{"error":"a valid API bearer token is required"}');
    }).start();

    const err = await collect({ url: srv.url, ...fast }).catch((e: unknown) => e);

    expect(err).toBeInstanceOf(SseHttpError);
    expect((err as SseHttpError).status).toBe(401);
    expect((err as SseHttpError).body).toContain('bearer token');
    expect(srv.connections).toHaveLength(1);
  });

  it('gives up after maxFailures attempts in a row', async () => {
    srv = await new StreamServer((_n, _req, res) => {
      res.writeHead(502).end();
    }).start();

    await expect(collect({ url: srv.url, ...fast, maxFailures: 3 })).rejects.toThrow(/after 3 attempts in a row: HTTP 502/);
    expect(srv.connections).toHaveLength(4);
  });

  it('stops when its signal aborts, and closes the connection', async () => {
    let closed!: () => void;
    const connectionClosed = new Promise<void>(resolve => (closed = resolve));
    srv = await new StreamServer((_n, req, res) => {
      open(res);
      res.write(line(1));
      req.socket.on('close', () => closed());
    }).start();

    const ac = new AbortController();
    const got: SseEvent[] = [];
    const err = await (async () => {
      for await (const ev of followEvents({ url: srv!.url, signal: ac.signal, ...fast })) {
        got.push(ev);
        ac.abort(new Error('task cancelled'));
      }
    })().catch((e: unknown) => e);

    expect(got).toHaveLength(1);
    expect((err as Error).message).toBe('task cancelled');
    await connectionClosed;
  });
});
