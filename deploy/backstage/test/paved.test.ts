/**
 * paved:run against a real paved server: test/backstage (Go) starts paved
 * between the Port and GitLab simulators and runs this suite with
 * PAVED_URL and the tokens of paved's API clients. Without PAVED_URL the
 * suite is skipped (the Go test fails a run that skipped anything).
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mockServices } from '@backstage/backend-test-utils';
import { createPavedRunAction, idempotencyKey, type PavedRunActionOptions } from '../src/actions/run';
import type { PavedRun } from '../src/paved';
import type { JsonObject } from '@backstage/types';
import { stepContext, TaskLog, TaskState, userEntity, type StepRun } from './helpers';

const env = {
  url: process.env.PAVED_URL ?? '',
  token: process.env.PAVED_TOKEN ?? '',
  limitedToken: process.env.PAVED_LIMITED_TOKEN ?? '',
  adminToken: process.env.PAVED_ADMIN_TOKEN ?? '',
};
const publicUrl = 'https://paved.example.test';

const dana = userEntity('dana', 'dana@acme.example', ['payments']);
const sam = userEntity('sam', 'sam@acme.example', ['web']);
const checkout = { identifier: 'checkout', blueprint: 'service', team: 'group:default/payments' };

type Input = {
  action: string;
  key?: string;
  inputs?: JsonObject;
  entity?: { identifier?: string; blueprint?: string; team?: string | string[] };
  timeoutMinutes?: number;
};

function action(token = env.token, more: Partial<PavedRunActionOptions> = {}) {
  return createPavedRunAction({
    config: mockServices.rootConfig({ data: { paved: { baseUrl: env.url, token, publicUrl } } }),
    statePollIntervalMs: 50,
    stream: { minDelayMs: 10, maxDelayMs: 200 },
    retryDelayMs: 10,
    ...more,
  });
}

// The steps' workspace (paved:run writes nothing to it).
let workspacePath = '';
beforeAll(() => {
  workspacePath = mkdtempSync(join(tmpdir(), 'paved-step-'));
});
afterAll(() => rmSync(workspacePath, { recursive: true, force: true }));

/** Runs the action's handler as the scaffolder would run one step. */
async function runStep(run: StepRun<Input>, token?: string) {
  const { ctx, log, outputs } = stepContext({ workspacePath, ...run });
  const a = action(token);
  const error = await a.handler(ctx as unknown as Parameters<typeof a.handler>[0]).then(
    () => undefined,
    (e: unknown) => e as Error,
  );
  return { error, log, outputs, key: idempotencyKey(ctx) };
}

/** paved's API as an operator calls it (the unnamed API token). */
async function admin(method: string, path: string, body?: unknown): Promise<{ status: number; json: any }> {
  const res = await fetch(env.url + path, {
    method,
    headers: { Authorization: `Bearer ${env.adminToken}`, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, json: await res.json() };
}

/** The runs paved holds for an idempotency key. */
async function runsWithKey(key: string): Promise<PavedRun[]> {
  const { status, json } = await admin('GET', '/api/v1/runs?limit=1000');
  expect(status).toBe(200);
  return (json.runs as PavedRun[]).filter(r => r.request?.portal === 'backstage' && r.request?.portalRunId === key);
}

function indexOfLine(messages: string[], part: string): number {
  return messages.findIndex(m => m.includes(part));
}

const suite = env.url ? describe : describe.skip;

suite('paved:run against paved', () => {
  beforeAll(() => {
    for (const [k, v] of Object.entries(env)) {
      if (!v) {
        throw new Error(`PAVED_${k.replace(/[A-Z]/g, c => `_${c}`).toUpperCase()} is not set`);
      }
    }
  });

  it('runs an action, streams its log in order into the task log, and outputs the links and resource outputs', async () => {
    // Production: the owning team's member may change it. Dana's group
    // (group:default/payments) reaches policy as the team payments.
    const { error, log, outputs, key } = await runStep({
      taskId: randomUUID(),
      user: dana,
      input: { action: 'add-s3-bucket', entity: checkout, inputs: { tenant: 'acme', environment: 'prod', bucketName: 'receipts' } },
    });
    expect(error).toBeUndefined();

    const lines = log.messages;
    const order = [
      'pulumi preview --json --stack acme-prod-checkout',
      'Preview: +2 ~0 -0',
      'pulumi up --yes --stack acme-prod-checkout',
      '+ aws:s3/bucketV2:BucketV2 acme-prod-checkout-receipts created',
      'succeeded',
    ].map(part => indexOfLine(lines, part));
    expect(order.every(i => i >= 0)).toBe(true);
    expect([...order].sort((a, b) => a - b)).toEqual(order);

    const runId = outputs.runId as string;
    expect(runId).toMatch(/^r_[0-9a-f]{32}$/);
    expect(outputs.runUrl).toBe(`${publicUrl}/ui/runs/${runId}`);
    expect(outputs.pipelineUrl).toMatch(/\/-\/pipelines\/\d+$/);
    expect(outputs.outputs).toMatchObject({
      stack: 'acme-prod-checkout',
      buckets: { receipts: { name: 'acme-prod-checkout-receipts', arn: 'arn:aws:s3:::acme-prod-checkout-receipts' } },
    });

    // What paved recorded: Backstage's client, the key, the user and her team.
    const { json: run } = await admin('GET', `/api/v1/runs/${runId}`);
    expect(run.state).toBe('succeeded');
    expect(run.request).toMatchObject({
      portal: 'backstage',
      portalRunId: key,
      caller: 'backstage',
      user: { email: 'dana@acme.example', teams: ['payments'] },
    });
  });

  it("fails the step with paved's reasons when policy rejects the run", async () => {
    const { error, outputs } = await runStep({
      taskId: randomUUID(),
      user: sam,
      input: { action: 'add-s3-bucket', entity: checkout, inputs: { tenant: 'acme', environment: 'prod', bucketName: 'exports' } },
    });
    expect(error).toBeInstanceOf(Error);
    const msg = error!.message.split('\n');
    expect(msg[0]).toBe(`paved run ${outputs.runId} was rejected:`);
    expect(msg[1]).toBe(
      'production changes to service "checkout" may only be made by members of its owning team "payments"; you (sam@acme.example) are in: web',
    );
    expect(error!.message).toContain(`Run: ${publicUrl}/ui/runs/${outputs.runId}`);
    expect(outputs.pipelineUrl).toBeUndefined();
  });

  it('fails the step when the pipeline fails, naming the failure, with the failing line in the task log', async () => {
    const { error, log, outputs } = await runStep({
      taskId: randomUUID(),
      user: dana,
      input: {
        action: 'add-sqs-queue',
        entity: checkout,
        inputs: { tenant: 'acme', environment: 'staging', queueName: 'payment-events' },
      },
    });
    expect(error).toBeInstanceOf(Error);
    expect(error!.message.split('\n')[0]).toBe(`paved run ${outputs.runId} failed:`);
    expect(error!.message).toMatch(/^Pipeline #\d+ failed in job\(s\) provision; see http.*\/-\/pipelines\/\d+$/m);
    expect(error!.message).toContain(`Pipeline: ${outputs.pipelineUrl}`);
    expect(indexOfLine(log.messages, 'QueueAlreadyExists')).toBeGreaterThanOrEqual(0);
    expect(outputs.outputs).toBeUndefined();
    expect(error!.message).not.toContain('checkpoint');
  });

  it("reports the same failed run when the task is retried (Backstage's Retry keeps the task and its checkpoints)", async () => {
    const taskId = randomUUID();
    const state = new TaskState();
    const input: Input = { action: 'add-sqs-queue', entity: checkout, inputs: { tenant: 'globex', environment: 'staging', queueName: 'payment-events' } };
    const first = await runStep({ taskId, user: dana, input, state });
    expect(first.error?.message).toMatch(/failed:/);
    const retried = await runStep({ taskId, user: dana, input, state });
    expect(retried.outputs.runId).toBe(first.outputs.runId);
    expect(retried.error?.message.split('\n').slice(0, 2)).toEqual(first.error?.message.split('\n').slice(0, 2));
    expect(retried.error?.message).toContain(
      "This step found the run in the task's checkpoint: a retried or recovered task reports the run it started first. Start the template over for a new run.",
    );
    expect((await runsWithKey(first.key)).map(r => r.id)).toEqual([first.outputs.runId]);
  });

  it('submits a recovered task once: the second attempt finds the run in its checkpoint', async () => {
    const taskId = randomUUID();
    const state = new TaskState();
    const input: Input = { action: 'add-s3-bucket', entity: checkout, inputs: { tenant: 'acme', environment: 'dev', bucketName: 'recovered' } };

    // Attempt 1: Backstage goes away right after paved recorded the run.
    const stop = new AbortController();
    const log1 = new TaskLog();
    void log1.waitFor(m => m.includes('recorded run')).then(() => stop.abort(new Error('backstage stopped')));
    const first = await runStep({ taskId, user: dana, input, state, signal: stop.signal, log: log1 });
    expect(first.error?.message).toMatch(/stopped waiting for paved run r_\w+: the task was cancelled. The run goes on in paved/);
    expect(Object.values(state.checkpoints)).toEqual([{ status: 'success', value: first.outputs.runId }]);

    // Attempt 2: the recovered task runs the step again, with the task state.
    const second = await runStep({ taskId, user: dana, input, state });
    expect(second.error).toBeUndefined();
    expect(second.outputs.runId).toBe(first.outputs.runId);
    expect(indexOfLine(second.log.messages, 'recorded run')).toBe(-1); // not submitted again
    expect(indexOfLine(second.log.messages, '+ aws:s3/bucketV2:BucketV2 acme-dev-checkout-recovered created')).toBeGreaterThanOrEqual(0);

    expect(second.key).toBe(first.key);
    const runs = await runsWithKey(first.key);
    expect(runs.map(r => r.id)).toEqual([first.outputs.runId]);
  });

  it('submits a recovered task once even when its checkpoint was lost: the idempotency key repeats', async () => {
    const taskId = randomUUID();
    const state = new TaskState();
    const input: Input = { action: 'add-s3-bucket', entity: checkout, inputs: { tenant: 'acme', environment: 'dev', bucketName: 'lost-checkpoint' } };

    // Attempt 1 dies after paved recorded the run and before the
    // scaffolder stored the checkpoint.
    const stop = new AbortController();
    const log1 = new TaskLog();
    void log1.waitFor(m => m.includes('recorded run')).then(() => stop.abort(new Error('backstage crashed')));
    const first = await runStep({ taskId, user: dana, input, state, signal: stop.signal, log: log1, lose: true });
    expect(first.error).toBeInstanceOf(Error);
    expect(state.checkpoints).toEqual({});

    const second = await runStep({ taskId, user: dana, input, state });
    expect(second.error).toBeUndefined();
    expect(second.outputs.runId).toBe(first.outputs.runId);
    expect(indexOfLine(second.log.messages, `paved already had run ${first.outputs.runId}`)).toBeGreaterThanOrEqual(0);
    const runs = await runsWithKey(first.key);
    expect(runs.map(r => r.id)).toEqual([first.outputs.runId]);
  });

  it('gives each iteration of a step with each its own run, by the key input, also when recovered', async () => {
    const taskId = randomUUID();
    const state = new TaskState();
    const iterations = ['each-a', 'each-b'];
    // One attempt of the step runs both iterations with the task state as
    // it was when the step began (the scaffolder reads it once a step).
    const attempt = async () => {
      const checkpoint = state.checkpointFor('paved');
      const ids: string[] = [];
      for (const name of iterations) {
        const r = await runStep({
          taskId,
          user: dana,
          checkpoint,
          input: { action: 'add-s3-bucket', key: name, entity: checkout, inputs: { tenant: 'globex', environment: 'dev', bucketName: name } },
        });
        expect(r.error).toBeUndefined();
        expect(r.key).toBe(`backstage:${taskId}:paved:key=${name}`);
        expect((await runsWithKey(r.key)).map(run => run.id)).toEqual([r.outputs.runId]);
        ids.push(r.outputs.runId as string);
      }
      return ids;
    };
    const first = await attempt();
    expect(new Set(first).size).toBe(2);
    expect(Object.keys(state.checkpoints).sort()).toEqual(['v1.task.checkpoint.paved.paved-submit.key=each-a', 'v1.task.checkpoint.paved.paved-submit.key=each-b']);
    // Recovered: each iteration finds its own run.
    expect(await attempt()).toEqual(first);
  });

  it('refuses a second iteration of a step with each that has no key (409), naming the fix', async () => {
    const taskId = randomUUID();
    const state = new TaskState();
    const checkpoint = state.checkpointFor('paved');
    const results = [];
    for (const name of ['nokey-a', 'nokey-b']) {
      results.push(
        await runStep({
          taskId,
          user: dana,
          checkpoint,
          input: { action: 'add-s3-bucket', entity: checkout, inputs: { tenant: 'globex', environment: 'staging', bucketName: name } },
        }),
      );
    }
    expect(results[0]?.error).toBeUndefined();
    const err = results[1]?.error;
    expect(err?.message).toContain('paved refused submitting action add-s3-bucket (409 Conflict): idempotency key');
    expect(err?.message).toContain('a step with each needs input key: ${{ each.key }}');
    expect((await runsWithKey(results[0]!.key)).map(r => r.id)).toEqual([results[0]!.outputs.runId]);
  });

  it('tells the wait for an approval in the task log and goes on once approved', async () => {
    const log = new TaskLog();
    const done = runStep({
      taskId: randomUUID(),
      user: dana,
      log,
      input: { action: 'delete-service', entity: checkout, inputs: { tenant: 'globex', environment: 'prod', confirm: true, confirmName: 'checkout' } },
    });
    const waiting = await log.waitFor(m => m.includes('waits for approval'));
    const runId = /paved run (r_\w+) waits for approval/.exec(waiting)?.[1];
    expect(runId).toBeDefined();
    expect(waiting).toContain(`${publicUrl}/ui/runs/${runId}`);

    // The shipped policy names the platform team among a production delete's approvers.
    const approved = await admin('POST', `/api/v1/runs/${runId}/approve`, {
      approver: { email: 'lead@acme.example', teams: ['group:default/platform'] },
      reason: 'change window',
    });
    expect(approved.status).toBe(200);

    const { error, outputs } = await done;
    expect(error).toBeUndefined();
    expect(outputs.runId).toBe(runId);
    expect(outputs.outputs).toMatchObject({ stack: 'globex-prod-checkout' });
  });

  it('stops waiting after timeoutMinutes, saying the run goes on in paved', async () => {
    const { error, outputs } = await runStep({
      taskId: randomUUID(),
      user: dana,
      input: {
        action: 'delete-service',
        entity: checkout,
        inputs: { tenant: 'acme', environment: 'prod', confirm: true, confirmName: 'checkout' },
        timeoutMinutes: 0.002, // 120 ms: the approval never comes
      },
    });
    expect(error?.message).toBe(
      `paved run ${outputs.runId} is still awaiting_approval after 0.002 minute(s) (timeoutMinutes); it goes on in paved: ${publicUrl}/ui/runs/${outputs.runId}`,
    );
    await admin('POST', `/api/v1/runs/${outputs.runId}/cancel`, { by: 'the backstage test' });
  });

  it('fails clearly with a token paved does not know (401), recording nothing', async () => {
    const { error, outputs, key } = await runStep(
      { taskId: randomUUID(), user: dana, input: { action: 'add-s3-bucket', entity: checkout, inputs: { tenant: 'acme', environment: 'dev', bucketName: 'nope' } } },
      'not-a-paved-token',
    );
    expect(error?.message).toMatch(/^paved refused the API token \(401 Unauthorized\) submitting action add-s3-bucket: a valid API bearer token is required\. /);
    expect(error?.message).toContain('paved.token');
    expect(error?.message).not.toContain('not-a-paved-token');
    expect(outputs.runId).toBeUndefined();
    expect(await runsWithKey(key)).toEqual([]);
  });

  it("fails with paved's reason when the client may not run the action (403)", async () => {
    const refused = await runStep(
      { taskId: randomUUID(), user: dana, input: { action: 'add-s3-bucket', entity: checkout, inputs: { tenant: 'acme', environment: 'dev', bucketName: 'limited' } } },
      env.limitedToken,
    );
    expect(refused.error?.message).toBe(
      'paved refused submitting action add-s3-bucket (403 Forbidden): API client "limited" may not run action "add-s3-bucket"; it may run: add-sqs-queue',
    );
    expect(await runsWithKey(refused.key)).toEqual([]);

    // The same client runs the action it is allowed.
    const allowed = await runStep(
      { taskId: randomUUID(), user: dana, input: { action: 'add-sqs-queue', entity: checkout, inputs: { tenant: 'acme', environment: 'dev', queueName: 'orders' } } },
      env.limitedToken,
    );
    expect(allowed.error).toBeUndefined();
    const { json: run } = await admin('GET', `/api/v1/runs/${allowed.outputs.runId}`);
    expect(run.request.caller).toBe('limited');
  });
});
