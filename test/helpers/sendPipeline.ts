/**
 * The send pipeline's activities outside a worker, as the race and fault tests drive them: a test database of the
 * file's own, the fake Postmark, the real Postmark client against it, and a reminder input per token made here.
 */
import { randomBytes } from 'node:crypto';
import { createActivities, type ActivityDeps } from '../../activities/tokenExpiry';
import { loadConfig } from '../../src/config';
import { markExpiryWorkflowsStarted } from '../../src/db/workflows';
import { createPostmarkMailer } from '../../src/email/postmarkMailer';
import { registryAdapter } from '../../src/registry';
import { builtinWriter, insertUser } from '../../src/registry/builtin';
import type { SendReminderInput } from '../../src/tokenExpiry/contract';
import { startFakePostmark, type FakePostmark } from '../../scripts/devtools/fakePostmark';
import { createTestDatabase, TEST_INSTANCE, type TestDatabase } from './database';

const DAY = 86_400_000;

/** A user of the builtin registry with a verified address of their own. */
export interface Owner {
  id: string;
  email: string;
}

export function useSendPipeline(settings: Record<string, string>) {
  let database: TestDatabase;
  let postmark: FakePostmark;
  beforeAll(async () => {
    [database, postmark] = await Promise.all([createTestDatabase(), startFakePostmark()]);
  });
  afterAll(async () => {
    await Promise.allSettled([postmark?.close(), database?.drop()]);
  });

  const db = () => database.pool;

  /** The activities as a worker makes them, on `settings` (and `env` over them), with mailer() below. */
  function activities(deps: Partial<ActivityDeps> & { env?: Record<string, string> } = {}) {
    const { env, ...rest } = deps;
    const config = loadConfig({
      REGISTRY_NAME: 'crates.io',
      REGISTRY_URL: 'https://crates.io',
      EMAIL_FROM: 'crates.io <noreply@crates.io>',
      ...settings,
      ...env,
    });
    return createActivities({ registry: registryAdapter(config), db: db(), mailer: mailer(), clock: { now: async () => new Date() }, config, ...rest });
  }

  /** The real Postmark client against the fake, with a 1 s timeout. */
  function mailer() {
    return createPostmarkMailer({ serverToken: postmark.serverToken, apiUrl: postmark.url, timeoutSeconds: 1 });
  }

  async function newOwner(): Promise<Owner> {
    const login = `sender-${randomBytes(4).toString('hex')}`;
    const email = `${login}@example.com`;
    const user = await insertUser(db(), { login, email, verified: true });
    return { id: user.id, email };
  }

  /** A token of `owner` expiring at `expiresAt`, its workflow on record as started, and its 1d warning's input. */
  async function warningOf(owner: Owner, expiresAt: Date): Promise<SendReminderInput> {
    const token = await builtinWriter.insertToken(db(), {
      userId: owner.id,
      hash: randomBytes(32),
      name: 'publish from CI',
      expiredAt: expiresAt,
      crateScopes: null,
      endpointScopes: null,
    });
    await markExpiryWorkflowsStarted(db(), [token]);
    return {
      instance: TEST_INSTANCE,
      tokenId: token.id,
      reminder: '1d',
      kind: 'warning',
      dueAt: new Date(expiresAt.getTime() - DAY).toISOString(),
      expiresAt: expiresAt.toISOString(),
    };
  }

  return { db, postmark: () => postmark, activities, mailer, newOwner, warningOf };
}
