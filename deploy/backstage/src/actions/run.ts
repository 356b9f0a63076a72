import { createHash } from 'node:crypto';
import type { LoggerService, RootConfigService } from '@backstage/backend-plugin-api';
import { parseEntityRef, RELATION_MEMBER_OF, stringifyEntityRef, type UserEntity } from '@backstage/catalog-model';
import { createTemplateAction } from '@backstage/plugin-scaffolder-node';
import { isTerminal, PavedClient, PavedError, refusal, type PavedRun, type RunRequest } from '../paved';
import { errorText, followEvents, sleep, SseHttpError, type FollowOptions } from '../sse';

/** The id templates use: `action: paved:run`. */
export const ACTION_ID = 'paved:run';

/** The checkpoint that holds the submitted run's id. */
export const SUBMIT_CHECKPOINT = 'paved-submit';

/** paved's settings in app-config (see config.d.ts). */
export interface PavedConfig {
  baseUrl: string;
  token: string;
  publicUrl: string;
}

/** Reads and checks the `paved` block of app-config. */
export function readPavedConfig(config: RootConfigService): PavedConfig {
  const baseUrl = config.getString('paved.baseUrl').replace(/\/+$/, '');
  const token = config.getString('paved.token');
  const publicUrl = (config.getOptionalString('paved.publicUrl') ?? baseUrl).replace(/\/+$/, '');
  for (const [key, value] of [
    ['paved.baseUrl', baseUrl],
    ['paved.publicUrl', publicUrl],
  ] as const) {
    let u: URL;
    try {
      u = new URL(value);
    } catch {
      throw new Error(`${key} must be an http(s) URL, not ${JSON.stringify(value)}`);
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') {
      throw new Error(`${key} must be an http(s) URL, not ${JSON.stringify(value)}`);
    }
  }
  if (token.trim() === '') {
    throw new Error('paved.token is empty: set it to the token of api.clients.backstage in paved (e.g. ${PAVED_BACKSTAGE_TOKEN})');
  }
  return { baseUrl, token, publicUrl };
}

/** Tuning, mostly for tests; the defaults suit production. */
export interface PavedRunActionOptions {
  config: RootConfigService;
  fetch?: typeof fetch;
  /** How often the run's state is read while its log streams, to tell the wait (default 10 s). */
  statePollIntervalMs?: number;
  /** Reconnection of the log stream. */
  stream?: Pick<FollowOptions, 'minDelayMs' | 'maxDelayMs' | 'maxFailures' | 'idleTimeoutMs'>;
  /** Retries of paved API calls (default 4 attempts, from 500 ms apart). */
  attempts?: number;
  retryDelayMs?: number;
}

/** The parts of the scaffolder's action context the key is made of. */
interface KeyContext {
  task: { id: string };
  step?: { id?: string };
  input?: { key?: string };
  each?: { key?: unknown } | Record<string, unknown>;
}

/**
 * The idempotency key of one paved:run invocation: the task, the step and
 * the iteration (input `key`, for a step with `each`: `${{ each.key }}`;
 * else the context's `each.key`, where the scaffolder passes it). A
 * recovered task has the same task id, so the key repeats, and paved
 * answers with the run it already has.
 */
export function idempotencyKey(ctx: KeyContext): string {
  const parts = ['backstage', ctx.task.id, ctx.step?.id ?? 'step'];
  const it = iteration(ctx);
  if (it !== undefined) {
    parts.push(`key=${it}`);
  }
  const key = parts.join(':');
  if (key.length <= 200) {
    return key;
  }
  return `backstage:sha256:${createHash('sha256').update(key).digest('hex')}`;
}

/**
 * The checkpoint key. The scaffolder keys a checkpoint by its step and
 * this key only, so the iterations of a step with `each` need keys of their
 * own, or the second would find the first's run.
 */
export function checkpointKey(ctx: KeyContext): string {
  const it = iteration(ctx);
  return it === undefined ? SUBMIT_CHECKPOINT : `${SUBMIT_CHECKPOINT}.key=${it}`;
}

function iteration(ctx: KeyContext): string | undefined {
  if (ctx.input?.key !== undefined && ctx.input.key !== '') {
    return ctx.input.key;
  }
  if (ctx.each && 'key' in ctx.each && ctx.each.key !== undefined) {
    return String(ctx.each.key);
  }
  return undefined;
}

/**
 * Backstage group refs as paved compares teams: `group:default/payments`
 * and `group:payments` are `payments` (paved does the same for the user's
 * teams); other namespaces stay (`eu/payments`).
 */
export function teamName(ref: string): string {
  let t = ref.trim();
  const colon = t.indexOf(':');
  if (colon >= 0 && t.slice(0, colon).toLowerCase() === 'group') {
    t = t.slice(colon + 1);
  }
  if (t.startsWith('default/')) {
    t = t.slice('default/'.length);
  }
  return t;
}

/** The user paved records and policy judges, from the task's user. */
export function userOf(user: { entity?: UserEntity; ref?: string } | undefined): RunRequest['user'] {
  const entity = user?.entity;
  const ref = user?.ref ?? (entity ? stringifyEntityRef(entity) : undefined);
  if (!ref) {
    throw new Error('paved:run needs the user who started the task (the task has no user): paved records who runs an action and its policy judges them');
  }
  const email = entity?.spec?.profile?.email?.trim() || ref;
  const name = entity?.spec?.profile?.displayName || entity?.metadata?.name;
  const namespace = entity?.metadata?.namespace ?? 'default';
  const teams = new Set<string>();
  for (const rel of entity?.relations ?? []) {
    if (rel.type === RELATION_MEMBER_OF && rel.targetRef) {
      teams.add(rel.targetRef);
    }
  }
  for (const g of entity?.spec?.memberOf ?? []) {
    try {
      teams.add(stringifyEntityRef(parseEntityRef(g, { defaultKind: 'group', defaultNamespace: namespace })));
    } catch {
      teams.add(g);
    }
  }
  return { email, ...(name ? { name } : {}), teams: [...teams].sort() };
}

const stateWords: Record<string, string> = {
  rejected: 'was rejected',
  failed: 'failed',
  canceled: 'was canceled',
  timed_out: 'timed out',
};

/** The step's error for a run that did not succeed: paved's reasons, one a line. */
export function failureMessage(run: PavedRun, runUrl: string): string {
  const lines = [`paved run ${run.id} ${stateWords[run.state] ?? `ended ${run.state}`}:`];
  const reasons = run.reasons ?? [];
  lines.push(...(reasons.length > 0 ? reasons : ['(paved gave no reason)']));
  if (run.pipelineUrl) {
    lines.push(`Pipeline: ${run.pipelineUrl}`);
  }
  lines.push(`Run: ${runUrl}`);
  return lines.join('\n');
}

/** A line for the task log about where the run is. */
function stateLine(run: PavedRun, runUrl: string): string {
  const stack = run.stack ? [run.stack.tenant, run.stack.environment, run.stack.service].filter(Boolean).join('-') : '';
  const why = run.reasons && run.reasons.length > 0 ? `: ${run.reasons.join('; ')}` : '';
  switch (run.state) {
    case 'awaiting_approval':
      return `paved run ${run.id} waits for approval${why}. An approver approves or denies it in paved (${runUrl}); this step waits.`;
    case 'queued':
      return `paved run ${run.id} is queued${stack ? ` on stack ${stack}` : ''}${run.queueAhead ? ` behind ${run.queueAhead} run(s)` : ''}`;
    case 'dispatching':
      return `paved run ${run.id} is starting its pipeline`;
    case 'running':
      return `paved run ${run.id} is running${run.pipelineUrl ? `: ${run.pipelineUrl}` : ''}`;
    default:
      return `paved run ${run.id} is ${run.state}${why}`;
  }
}

/** The paved:run scaffolder action. */
export function createPavedRunAction(options: PavedRunActionOptions) {
  return createTemplateAction({
    id: ACTION_ID,
    description:
      "Runs a paved action: paved validates the inputs against the action's schema and policy, runs its pipeline and reports back. " +
      "The step streams the pipeline's log, waits for the result, fails with paved's reasons, and outputs the run's links and resource outputs.",
    examples: [
      {
        description: 'Add an S3 bucket to a service',
        example: [
          'steps:',
          '  - id: paved',
          '    name: Add the bucket',
          '    action: paved:run',
          '    input:',
          '      action: add-s3-bucket',
          '      entity:',
          '        identifier: checkout',
          '        blueprint: service',
          '        team: group:default/payments',
          '      inputs:',
          '        tenant: acme',
          '        environment: dev',
          '        bucketName: receipts',
        ].join('\n'),
      },
    ],
    schema: {
      input: {
        action: z => z.string().min(1).describe("The paved action's identifier (actions/*.yaml), e.g. add-s3-bucket"),
        inputs: z =>
          z.record(z.string(), z.any()).optional().describe("The action's inputs, checked against its JSON schema by paved"),
        entity: z =>
          z
            .object({
              identifier: z.string().optional().describe('The service the action runs on (DAY-2 and DELETE actions)'),
              blueprint: z.string().optional().describe('Its kind in paved, e.g. service'),
              title: z.string().optional(),
              team: z
                .union([z.string(), z.array(z.string())])
                .optional()
                .describe('Its owning team(s): group refs such as group:default/payments or team identifiers'),
              properties: z.record(z.string(), z.any()).optional(),
            })
            .optional()
            .describe('The entity the action runs on'),
        key: z =>
          z
            .string()
            .optional()
            .describe('Tells the runs of one step apart: in a step with each, set it to ${{ each.key }}'),
        timeoutMinutes: z =>
          z
            .number()
            .positive()
            .optional()
            .describe('Stop waiting after this long (the run goes on in paved); default: until the run ends'),
      },
      output: {
        runId: z => z.string().describe("paved's run id"),
        runUrl: z => z.string().describe("The run's page in paved"),
        pipelineUrl: z => z.string().optional().describe("The run's GitLab pipeline"),
        outputs: z => z.record(z.string(), z.any()).optional().describe("The pipeline's resource outputs (stack outputs)"),
      },
    },
    async handler(ctx) {
      const cfg = readPavedConfig(options.config);
      const user = userOf(ctx.user);
      if (!ctx.user?.entity?.spec?.profile?.email) {
        ctx.logger.warn(`${user.email} has no email in the catalog (spec.profile.email): paved records the user by the entity ref`);
      }
      const key = idempotencyKey(ctx);
      const signal = ctx.signal;
      const client = new PavedClient({
        baseUrl: cfg.baseUrl,
        token: cfg.token,
        fetch: options.fetch,
        signal,
        attempts: options.attempts,
        retryDelayMs: options.retryDelayMs,
      });
      const entity = ctx.input.entity;
      const req: RunRequest = {
        portal: 'backstage',
        action: ctx.input.action,
        user,
        inputs: ctx.input.inputs ?? {},
      };
      if (entity) {
        const teams = entity.team === undefined ? undefined : (Array.isArray(entity.team) ? entity.team : [entity.team]).map(teamName);
        req.entity = {
          ...(entity.identifier !== undefined ? { identifier: entity.identifier } : {}),
          ...(entity.blueprint !== undefined ? { blueprint: entity.blueprint } : {}),
          ...(entity.title !== undefined ? { title: entity.title } : {}),
          ...(teams ? { team: teams } : {}),
          ...(entity.properties ? { properties: entity.properties } : {}),
        };
      }

      // Submitted once per task step: a recovered task finds the run id in
      // its checkpoint; were the checkpoint lost, the same key makes paved
      // answer with the run it already has.
      let runId: string | undefined;
      let submitted = false; // by this attempt, not found in the task's checkpoint
      try {
        runId = await ctx.checkpoint({
          key: checkpointKey(ctx),
          fn: async () => {
            const answer = await client.submit(req, key).catch((err: unknown) => {
              if (err instanceof PavedError && err.status === 409) {
                throw new PavedError(
                  `${err.message}\nThis step already ran with another request under the key ${key}: ` +
                    'a step with each needs input key: ${{ each.key }}, and a recovered task must render the same input again.',
                  409,
                  err.reasons,
                );
              }
              throw err;
            });
            ctx.logger.info(
              `paved ${answer.duplicate ? 'already had' : 'recorded'} run ${answer.runId} of ${req.action} for ${user.email} (idempotency key ${key})`,
            );
            submitted = true;
            return answer.runId;
          },
        });
        const runUrl = `${cfg.publicUrl}/ui/runs/${encodeURIComponent(runId)}`;
        ctx.output('runId', runId);
        ctx.output('runUrl', runUrl);

        const run = await follow({
          client,
          runId,
          runUrl,
          signal,
          timeoutMinutes: ctx.input.timeoutMinutes,
          options,
          log: ctx.logger,
        });
        if (run.pipelineUrl) {
          ctx.output('pipelineUrl', run.pipelineUrl);
        }
        if (run.state !== 'succeeded') {
          const earlier = submitted
            ? ''
            : `\nThis step found the run in the task's checkpoint: a retried or recovered task reports the run it started first. Start the template over for a new run.`;
          throw new Error(failureMessage(run, runUrl) + earlier);
        }
        ctx.output('outputs', (run.outputs ?? {}) as Record<string, any>);
        ctx.logger.info(`paved run ${runId} succeeded${run.pipelineUrl ? `: ${run.pipelineUrl}` : ''}`);
      } catch (err) {
        if (signal?.aborted) {
          throw new Error(
            runId
              ? `paved:run stopped waiting for paved run ${runId}: the task was cancelled. The run goes on in paved: ${cfg.publicUrl}/ui/runs/${encodeURIComponent(runId)}`
              : `paved:run was cancelled while submitting ${req.action}; if paved recorded the run, a recovery of this task finds it by the idempotency key ${key}`,
          );
        }
        throw err;
      }
    },
  });
}

interface FollowArgs {
  client: PavedClient;
  runId: string;
  runUrl: string;
  signal: AbortSignal | undefined;
  timeoutMinutes: number | undefined;
  options: PavedRunActionOptions;
  log: LoggerService;
}

/**
 * Follows a run's log into the task log until the run ends, telling the
 * changes of its state (an approval, the queue) that the log does not
 * carry, and returns the run as it ended.
 */
async function follow({ client, runId, runUrl, signal, timeoutMinutes, options, log }: FollowArgs): Promise<PavedRun> {
  let run = await client.getRun(runId);
  log.info(stateLine(run, runUrl));

  const deadline = timeoutMinutes ? AbortSignal.timeout(timeoutMinutes * 60000) : undefined;
  const waiting = AbortSignal.any([signal, deadline].filter((s): s is AbortSignal => s !== undefined));
  const pollerStop = new AbortController();
  const poller = isTerminal(run.state)
    ? Promise.resolve()
    : watchState(client, run, runUrl, options.statePollIntervalMs ?? 10000, AbortSignal.any([pollerStop.signal, waiting]), line =>
        log.info(line),
      );
  let endState: string | undefined;
  try {
    for await (const ev of followEvents({
      url: client.logsUrl(runId),
      headers: client.authHeaders(),
      signal: waiting,
      fetch: options.fetch,
      ...options.stream,
      onRetry: info =>
        log.warn(`paved's log stream for run ${runId} broke (${info.reason}); resuming after line ${info.lastEventId || 0} in ${info.delayMs} ms`),
    })) {
      if (ev.type === 'end') {
        endState = ev.data;
        break;
      }
      if (ev.type === 'message') {
        log.info(logLine(ev.data));
      }
    }
  } catch (err) {
    if (signal?.aborted) {
      throw err;
    }
    if (deadline?.aborted) {
      const now = await client.getRun(runId, signal).catch(() => run);
      throw new Error(`paved run ${runId} is still ${now.state} after ${timeoutMinutes} minute(s) (timeoutMinutes); it goes on in paved: ${runUrl}`);
    }
    if (err instanceof SseHttpError) {
      throw refusal(err.status, err.body, `streaming the log of run ${runId}`);
    }
    throw new Error(`paved:run lost paved run ${runId}'s log: ${errorText(err)}. The run goes on in paved: ${runUrl}`);
  } finally {
    pollerStop.abort();
    await poller;
  }

  run = await client.getRun(runId);
  if (!isTerminal(run.state)) {
    // paved ends the stream only once the run has ended, and an ended run stays so.
    throw new PavedError(`paved ended run ${runId}'s log (${endState ?? 'no end event'}), but the run is ${run.state}`, 0);
  }
  return run;
}

/** A log event's line: data is {"seq", "at", "line"}. */
function logLine(data: string): string {
  try {
    const v = JSON.parse(data) as { line?: unknown };
    if (typeof v.line === 'string') {
      return v.line;
    }
  } catch {
    // not JSON: show it as it came
  }
  return data;
}

/** Reads the run every interval and tells each change of state, until stopped. */
async function watchState(
  client: PavedClient,
  first: PavedRun,
  runUrl: string,
  intervalMs: number,
  stop: AbortSignal,
  tell: (line: string) => void,
): Promise<void> {
  let last = first.state;
  for (;;) {
    try {
      await sleep(intervalMs, stop);
      const run = await client.getRun(first.id, stop);
      if (run.state !== last) {
        last = run.state;
        if (!isTerminal(run.state)) {
          tell(stateLine(run, runUrl));
        }
      }
      if (isTerminal(run.state)) {
        return;
      }
    } catch {
      if (stop.aborted) {
        return;
      }
      // paved unreachable for a moment: the log stream says so if it lasts
    }
  }
}
