/** @type {import('jest').Config} */
module.exports = {
  preset: 'ts-jest',
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  setupFiles: ['<rootDir>/test/setup.ts'],
  // Each file starts its own time-skipping server and database; the hooks need the room.
  testTimeout: 60_000,
  transform: { '^.+\\.ts$': ['ts-jest', { isolatedModules: true }] },
};
