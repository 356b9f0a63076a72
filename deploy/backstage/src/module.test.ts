import { mockServices, startTestBackend } from '@backstage/backend-test-utils';
import { scaffolderActionsExtensionPoint, type TemplateAction } from '@backstage/plugin-scaffolder-node';
import scaffolderModulePaved from './index';

async function start(paved: Record<string, string>) {
  const added: TemplateAction<any, any, any>[] = [];
  await startTestBackend({
    extensionPoints: [[scaffolderActionsExtensionPoint, { addActions: (...actions: TemplateAction<any, any, any>[]) => added.push(...actions) }]],
    features: [scaffolderModulePaved, mockServices.rootConfig.factory({ data: { paved } })],
  });
  return added;
}

describe('the scaffolder module', () => {
  it('adds paved:run, with JSON schemas of its input and output', async () => {
    const added = await start({ baseUrl: 'http://paved.test:8080', token: 'a-token' });
    expect(added.map(a => a.id)).toEqual(['paved:run']);
    const schema = added[0]!.schema as { input: { required?: string[]; properties: Record<string, unknown> }; output: { properties: Record<string, unknown> } };
    expect(schema.input.required).toEqual(['action']);
    expect(Object.keys(schema.input.properties).sort()).toEqual(['action', 'entity', 'inputs', 'key', 'timeoutMinutes']);
    expect(Object.keys(schema.output.properties).sort()).toEqual(['outputs', 'pipelineUrl', 'runId', 'runUrl']);
  });

  it('refuses to start without paved.token, or with a baseUrl that is no URL', async () => {
    await expect(start({ baseUrl: 'http://paved.test:8080' })).rejects.toThrow(/paved\.token/);
    await expect(start({ baseUrl: 'paved.test', token: 't' })).rejects.toThrow(/paved\.baseUrl must be an http\(s\) URL/);
  });
});
