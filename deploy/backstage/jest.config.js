/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/src', '<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  // Type errors are tsc's job (npm run typecheck): ts-jest only transpiles.
  transform: { '^.+\\.ts$': ['ts-jest', { diagnostics: false }] },
  // The paved suite waits for real pipelines (simulated, but real HTTP).
  testTimeout: 60000,
};
