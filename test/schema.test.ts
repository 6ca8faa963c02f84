// The database's CHECK on notification statuses and the code's list are the same set.
import { NOTIFICATION_STATUSES } from '../src/tokenExpiry/contract';
import { createTestDatabase, type TestDatabase } from './helpers/database';

let database: TestDatabase;
beforeAll(async () => {
  database = await createTestDatabase();
});
afterAll(() => database.drop());

async function insertWithStatus(status: string): Promise<void> {
  const { rows } = await database.pool.query<{ id: string }>(
    `INSERT INTO users (login) VALUES ('u-' || gen_random_uuid()) RETURNING id`,
  );
  const { rows: tokens } = await database.pool.query<{ id: string }>(
    `INSERT INTO api_tokens (user_id, token, name) VALUES ($1, decode(md5(random()::text), 'hex'), 'ci') RETURNING id`,
    [rows[0]?.id],
  );
  await database.pool.query(
    `INSERT INTO expiry_notifications (token_id, reminder, due_at, dedupe_key, status) VALUES ($1, '7d', now(), 'k', $2)`,
    [tokens[0]?.id, status],
  );
}

test.each(NOTIFICATION_STATUSES)('the notification log accepts the status %s', async (status) => {
  await expect(insertWithStatus(status)).resolves.toBeUndefined();
});

test('the notification log refuses a status the code does not know', async () => {
  await expect(insertWithStatus('bounced')).rejects.toThrow(/expiry_notifications_status_check/);
});
