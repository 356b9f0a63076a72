import { checkpointKey, idempotencyKey, teamName, userOf } from './run';

describe('idempotencyKey', () => {
  it('is the task and the step, and the iteration of a step with each', () => {
    expect(idempotencyKey({ task: { id: 't-1' }, step: { id: 'paved' } })).toBe('backstage:t-1:paved');
    expect(idempotencyKey({ task: { id: 't-1' }, step: { id: 'paved' }, input: { key: 'eu' } })).toBe('backstage:t-1:paved:key=eu');
    expect(idempotencyKey({ task: { id: 't-1' }, step: { id: 'paved' }, each: { key: '0', value: 'x' } })).toBe('backstage:t-1:paved:key=0');
    expect(idempotencyKey({ task: { id: 't-1' }, step: { id: 'paved' }, input: { key: 'eu' }, each: { key: '0' } })).toBe('backstage:t-1:paved:key=eu');
    expect(checkpointKey({ task: { id: 't-1' }, step: { id: 'paved' } })).toBe('paved-submit');
    expect(checkpointKey({ task: { id: 't-1' }, input: { key: 'a' } })).toBe('paved-submit.key=a');
  });

  it('is a digest when the parts are too long for paved (255 characters)', () => {
    const key = idempotencyKey({ task: { id: 't' }, step: { id: 's'.repeat(300) } });
    expect(key).toMatch(/^backstage:sha256:[0-9a-f]{64}$/);
    expect(idempotencyKey({ task: { id: 't' }, step: { id: 's'.repeat(300) } })).toBe(key);
  });
});

describe('teamName', () => {
  it('takes group refs as paved does', () => {
    expect(['group:default/payments', 'group:payments', 'Group:default/payments', 'payments', 'group:eu/payments'].map(teamName)).toEqual([
      'payments',
      'payments',
      'payments',
      'payments',
      'eu/payments',
    ]);
  });
});

describe('userOf', () => {
  it("takes the email, name and groups (relations and spec.memberOf) of the task's user", () => {
    const u = userOf({
      ref: 'user:default/dana',
      entity: {
        apiVersion: 'backstage.io/v1alpha1',
        kind: 'User',
        metadata: { name: 'dana' },
        spec: { profile: { email: 'dana@acme.example', displayName: 'Dana Ruiz' }, memberOf: ['payments', 'group:ops/sre'] },
        relations: [
          { type: 'memberOf', targetRef: 'group:default/payments' },
          { type: 'ownerOf', targetRef: 'component:default/checkout' },
        ],
      },
    });
    expect(u).toEqual({ email: 'dana@acme.example', name: 'Dana Ruiz', teams: ['group:default/payments', 'group:ops/sre'] });
  });

  it('names a user without a catalog entity by the ref, and refuses a task without a user', () => {
    expect(userOf({ ref: 'user:development/guest' })).toEqual({ email: 'user:development/guest', teams: [] });
    expect(() => userOf(undefined)).toThrow(/needs the user who started the task/);
  });
});
