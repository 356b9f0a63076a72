import { coreServices, createBackendModule } from '@backstage/backend-plugin-api';
import { scaffolderActionsExtensionPoint } from '@backstage/plugin-scaffolder-node';
import { createPavedRunAction, readPavedConfig } from './actions/run';

/**
 * The scaffolder module that adds paved:run. Configure `paved.baseUrl` and
 * `paved.token` (and optionally `paved.publicUrl`) in app-config.
 */
export const scaffolderModulePaved = createBackendModule({
  pluginId: 'scaffolder',
  moduleId: 'paved',
  register(reg) {
    reg.registerInit({
      deps: {
        scaffolder: scaffolderActionsExtensionPoint,
        config: coreServices.rootConfig,
        logger: coreServices.logger,
      },
      async init({ scaffolder, config, logger }) {
        // A missing or malformed paved block stops the backend at start,
        // not a template at its first run.
        const { baseUrl, publicUrl } = readPavedConfig(config);
        scaffolder.addActions(createPavedRunAction({ config }));
        logger.info(`paved:run submits to ${baseUrl} (run links at ${publicUrl})`);
      },
    });
  },
});
