import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PavedClient, PavedError } from './paved';

let server: Server;
let base = '';
let answers: { status: number; body: string }[] = [];
const seen: { key: string | undefined; auth: string | undefined }[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    seen.push({ key: req.headers['idempotency-key'] as string | undefined, auth: req.headers.authorization });
    const a = answers.shift() ?? { status: 500, body: '{"error":"no answer left"}' };
    res.writeHead(a.status, { 'Content-Type': 'application/json' }).end(a.body);
  });
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>(resolve => server.close(() => resolve())));
beforeEach(() => {
  answers = [];
  seen.length = 0;
});

const req = { portal: 'backstage' as const, action: 'add-s3-bucket', user: { email: 'dana@acme.example' }, inputs: {} };

describe('PavedClient', () => {
  it('repeats a submission paved could not take (503) under the same key', async () => {
    answers = [
      { status: 503, body: '{"error":"not ready"}' },
      { status: 201, body: '{"runId":"r_1","state":"queued"}' },
    ];
    const c = new PavedClient({ baseUrl: `${base}/`, token: 'tok', retryDelayMs: 1 });
    await expect(c.submit(req, 'backstage:t:s')).resolves.toEqual({ runId: 'r_1', state: 'queued' });
    expect(seen).toEqual([
      { key: 'backstage:t:s', auth: 'Bearer tok' },
      { key: 'backstage:t:s', auth: 'Bearer tok' },
    ]);
  });

  it('takes a rejected run (422) as an answer', async () => {
    answers = [{ status: 422, body: '{"runId":"r_2","state":"rejected","reasons":["no"]}' }];
    const c = new PavedClient({ baseUrl: base, token: 'tok' });
    await expect(c.submit(req, 'k')).resolves.toEqual({ runId: 'r_2', state: 'rejected', reasons: ['no'] });
  });

  it("gives paved's message and reasons for a refusal, and never the token", async () => {
    answers = [{ status: 409, body: '{"error":"idempotency key \\"k\\" was already used for a different request (run r_3)","reasons":["a","b"]}' }];
    const c = new PavedClient({ baseUrl: base, token: 'secret-token' });
    const err = (await c.submit(req, 'k').catch((e: unknown) => e)) as PavedError;
    expect(err).toBeInstanceOf(PavedError);
    expect(err.status).toBe(409);
    expect(err.message).toBe(
      'paved refused submitting action add-s3-bucket (409 Conflict): idempotency key "k" was already used for a different request (run r_3)\na\nb',
    );
    expect(err.message).not.toContain('secret-token');
  });

  it('says where paved could not be reached after its attempts', async () => {
    const c = new PavedClient({ baseUrl: 'http://127.0.0.1:9', token: 'tok', attempts: 2, retryDelayMs: 1 });
    await expect(c.getRun('r_4')).rejects.toThrow(/^paved could not be reached at http:\/\/127\.0\.0\.1:9 \(GET \/api\/v1\/runs\/r_4, 2 attempts\): fetch failed/);
  });
});
