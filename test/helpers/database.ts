import { createScratchDatabase, type ScratchDatabase } from '../../scripts/devtools/scratchDatabase';

/** The server the tests create their databases on; scripts/test points this at a live PostgreSQL. */
export function adminDatabaseUrl(): string {
  return process.env.TEST_DATABASE_ADMIN_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres';
}

export type TestDatabase = ScratchDatabase;

/**
 * The instance id of the tests' databases (each test file has a server of its own), and so of their workflow ids;
 * the tests of several instances in one namespace make databases of other instances.
 */
export const TEST_INSTANCE = 'test';

/** A fresh, migrated database for one test file, dropped afterwards. */
export function createTestDatabase(instance = TEST_INSTANCE): Promise<TestDatabase> {
  return createScratchDatabase(adminDatabaseUrl(), 'token_expiry_test', 10, instance);
}
