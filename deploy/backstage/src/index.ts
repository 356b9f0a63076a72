/**
 * The paved scaffolder backend module: the paved:run action.
 *
 * @packageDocumentation
 */
export { scaffolderModulePaved as default } from './module';
export {
  ACTION_ID,
  createPavedRunAction,
  idempotencyKey,
  readPavedConfig,
  type PavedConfig,
  type PavedRunActionOptions,
} from './actions/run';
