import type { LoggerService } from '@backstage/backend-plugin-api';
import type { UserEntity } from '@backstage/catalog-model';
import type { CheckpointContext, CheckpointState } from '@backstage/plugin-scaffolder-node/alpha';
import { createMockActionContext } from '@backstage/plugin-scaffolder-node-test-utils';
import type { JsonObject, JsonValue } from '@backstage/types';

/** One line the action wrote to the task log. */
export interface LogEntry {
  level: 'error' | 'warn' | 'info' | 'debug';
  message: string;
}

/** The task log: what the step's logger received, in order. */
export class TaskLog implements LoggerService {
  readonly entries: LogEntry[] = [];
  private waiters: { match: (m: string) => boolean; resolve: (m: string) => void }[] = [];

  error(message: string): void {
    this.add('error', message);
  }
  warn(message: string): void {
    this.add('warn', message);
  }
  info(message: string): void {
    this.add('info', message);
  }
  debug(message: string): void {
    this.add('debug', message);
  }
  child(_meta: JsonObject): LoggerService {
    return this;
  }

  /** The messages, in order. */
  get messages(): string[] {
    return this.entries.map(e => e.message);
  }

  /** Resolves with the first line that matches, already written or to come. */
  waitFor(match: (message: string) => boolean): Promise<string> {
    const seen = this.messages.find(match);
    if (seen !== undefined) {
      return Promise.resolve(seen);
    }
    return new Promise(resolve => this.waiters.push({ match, resolve }));
  }

  private add(level: LogEntry['level'], message: string): void {
    this.entries.push({ level, message });
    this.waiters = this.waiters.filter(w => {
      if (w.match(message)) {
        w.resolve(message);
        return false;
      }
      return true;
    });
  }
}

/**
 * A task's state as the scaffolder keeps it in its database across a
 * recovery. checkpointFor gives a step the checkpoint function the
 * scaffolder's workflow runner gives it (NunjucksWorkflowRunner.executeStep
 * in @backstage/plugin-scaffolder-backend): the task state is read once as
 * the step starts; a checkpoint is keyed `v1.task.checkpoint.<step id>.<key>`;
 * a stored success returns its value without calling fn; otherwise fn runs
 * and its outcome (success with the value, or failed with the reason) is
 * written to the task state, JSON-serialised.
 */
export class TaskState {
  checkpoints: CheckpointState = {};

  /**
   * The checkpoint function of one attempt at a step. With lose, the
   * attempt's writes never reach the store: the process died after fn's
   * work but before the scaffolder saved the checkpoint.
   */
  checkpointFor(stepId: string, opts: { lose?: boolean } = {}) {
    const prev = JSON.parse(JSON.stringify(this.checkpoints)) as CheckpointState;
    const write = (key: string, v: CheckpointState[string]) => {
      if (!opts.lose) {
        this.checkpoints[key] = JSON.parse(JSON.stringify(v)) as CheckpointState[string];
      }
    };
    return async <T extends JsonValue | void>({ key: checkpointKey, fn }: CheckpointContext<T>): Promise<T> => {
      const key = `v1.task.checkpoint.${stepId}.${checkpointKey}`;
      try {
        const p = prev[key];
        const prevValue = p && p.status === 'success' ? (p.value as T) : undefined;
        const value = prevValue ? prevValue : await fn();
        if (!prevValue) {
          write(key, { status: 'success', value: (value ?? {}) as JsonValue });
        }
        return value;
      } catch (err) {
        write(key, { status: 'failed', reason: String(err) });
        throw err;
      }
    };
  }
}

/** A Backstage user entity as the catalog gives the scaffolder (with its relations). */
export function userEntity(name: string, email: string, groups: string[]): UserEntity {
  return {
    apiVersion: 'backstage.io/v1alpha1',
    kind: 'User',
    metadata: { name, namespace: 'default' },
    spec: { profile: { email, displayName: name[0]!.toUpperCase() + name.slice(1) }, memberOf: groups },
    relations: groups.map(g => ({ type: 'memberOf', targetRef: `group:default/${g}` })),
  };
}

export interface StepRun<I> {
  input: I;
  user: UserEntity | undefined;
  taskId: string;
  stepId?: string;
  each?: { key: string; value: JsonValue };
  state?: TaskState;
  lose?: boolean;
  /** The checkpoint of the attempt at the step (default: a new attempt of state's). */
  checkpoint?: ReturnType<TaskState['checkpointFor']>;
  signal?: AbortSignal;
  log?: TaskLog;
  workspacePath?: string;
}

/**
 * The context the scaffolder gives an action's handler, from the real
 * test utilities' createMockActionContext, with the step, the task state's
 * checkpoint, the cancel signal and an output collector.
 */
export function stepContext<I extends JsonObject>(run: StepRun<I>) {
  const log = run.log ?? new TaskLog();
  const outputs: Record<string, JsonValue> = {};
  const stepId = run.stepId ?? 'paved';
  const base = createMockActionContext<I>({
    input: run.input,
    logger: log,
    task: { id: run.taskId },
    ...(run.workspacePath ? { workspacePath: run.workspacePath } : {}),
    ...(run.user ? { user: { entity: run.user, ref: `user:default/${run.user.metadata.name}` } } : {}),
  });
  const ctx = {
    ...base,
    step: { id: stepId, name: 'Run the paved action' },
    checkpoint: run.checkpoint ?? (run.state ?? new TaskState()).checkpointFor(stepId, { lose: run.lose }),
    output: (name: string | number | symbol, value: JsonValue) => {
      outputs[String(name)] = value;
    },
    ...(run.each ? { each: run.each } : {}),
    ...(run.signal ? { signal: run.signal } : {}),
  };
  return { ctx, log, outputs };
}
