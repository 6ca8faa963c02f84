// Users' calendar feeds (this service's own schema): the hash of each user's feed secret, and whose a secret is.
import type { Queryable } from './transaction';

/** The user's feed secret is now this one; an earlier one stops working. */
export async function saveCalendarFeed(db: Queryable, userId: string, secretSha256: Buffer): Promise<void> {
  await db.query(
    `INSERT INTO calendar_feeds (user_id, secret_sha256) VALUES ($1, $2)
     ON CONFLICT (user_id) DO UPDATE SET secret_sha256 = excluded.secret_sha256, created_at = now()`,
    [userId, secretSha256],
  );
}

/** The user's feed is off; true if there was one. */
export async function deleteCalendarFeed(db: Queryable, userId: string): Promise<boolean> {
  return ((await db.query('DELETE FROM calendar_feeds WHERE user_id = $1', [userId])).rowCount ?? 0) > 0;
}

/** Whose feed this secret opens; null when none does. */
export async function findCalendarFeedUser(db: Queryable, secretSha256: Buffer): Promise<string | null> {
  const { rows } = await db.query<{ user_id: string }>('SELECT user_id::text FROM calendar_feeds WHERE secret_sha256 = $1', [secretSha256]);
  return rows[0]?.user_id ?? null;
}
