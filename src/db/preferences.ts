// Users' reminder preferences (this service's own schema, keyed by the registry's user id): read one user's or a
// batch of users', write one user's. No row: the user never chose, and the operator's settings apply.
import type { StoredPreferences } from '../preferences/rules';
import type { Weekday } from '../tokenExpiry/wakingHours';
import type { Queryable } from './transaction';

interface PreferenceRecord {
  user_id: string;
  reminders: string[] | null;
  expired_notice: boolean | null;
  time_zone: string | null;
  waking_start_minute: number | null;
  waking_end_minute: number | null;
  working_days: string[] | null;
}

const COLUMNS = 'user_id::text, reminders, expired_notice, time_zone, waking_start_minute, waking_end_minute, working_days';

function fromRecord(row: PreferenceRecord): StoredPreferences {
  return {
    reminders: row.reminders,
    expiredNotice: row.expired_notice,
    timeZone: row.time_zone,
    wakingHours:
      row.waking_start_minute === null || row.waking_end_minute === null
        ? null
        : { startMinute: row.waking_start_minute, endMinute: row.waking_end_minute },
    workingDays: row.working_days as Weekday[] | null,
  };
}

export async function findPreferences(db: Queryable, userId: string): Promise<StoredPreferences | null> {
  const { rows } = await db.query<PreferenceRecord>(`SELECT ${COLUMNS} FROM user_preferences WHERE user_id = $1`, [userId]);
  return rows[0] ? fromRecord(rows[0]) : null;
}

/** The preferences of those of `userIds` who chose any, in one query. */
export async function findPreferencesOfUsers(db: Queryable, userIds: string[]): Promise<Map<string, StoredPreferences>> {
  const unique = [...new Set(userIds)];
  if (unique.length === 0) return new Map();
  const { rows } = await db.query<PreferenceRecord>(`SELECT ${COLUMNS} FROM user_preferences WHERE user_id = ANY($1::bigint[])`, [unique]);
  return new Map(rows.map((row) => [row.user_id, fromRecord(row)]));
}

/** The preferences of the owner of a token whose workflow is on record (expiry_workflows); null if they never chose. */
export async function findOwnerPreferences(db: Queryable, tokenId: string): Promise<StoredPreferences | null> {
  const { rows } = await db.query<PreferenceRecord>(
    `SELECT ${COLUMNS.split(', ').map((c) => `p.${c}`).join(', ')}
       FROM expiry_workflows w JOIN user_preferences p ON p.user_id = w.user_id WHERE w.token_id = $1`,
    [tokenId],
  );
  return rows[0] ? fromRecord(rows[0]) : null;
}

/** Every user with preferences, for the forecast (users who chose are few next to their tokens). */
export async function findAllPreferences(db: Queryable): Promise<Map<string, StoredPreferences>> {
  const { rows } = await db.query<PreferenceRecord>(`SELECT ${COLUMNS} FROM user_preferences`);
  return new Map(rows.map((row) => [row.user_id, fromRecord(row)]));
}

/** The user's preferences, held (FOR UPDATE) until the transaction of `db` ends, so that two changes do not race. */
export async function lockPreferences(db: Queryable, userId: string): Promise<StoredPreferences | null> {
  // The row must exist to be locked; an empty one is removed again by savePreferences.
  await db.query('INSERT INTO user_preferences (user_id) VALUES ($1) ON CONFLICT (user_id) DO NOTHING', [userId]);
  const { rows } = await db.query<PreferenceRecord>(`SELECT ${COLUMNS} FROM user_preferences WHERE user_id = $1 FOR UPDATE`, [userId]);
  return rows[0] ? fromRecord(rows[0]) : null;
}

/** Stores the user's preferences; all defaults removes the row. */
export async function savePreferences(db: Queryable, userId: string, preferences: StoredPreferences): Promise<void> {
  const { reminders, expiredNotice, timeZone, wakingHours, workingDays } = preferences;
  if ([reminders, expiredNotice, timeZone, wakingHours, workingDays].every((value) => value === null)) {
    await db.query('DELETE FROM user_preferences WHERE user_id = $1', [userId]);
    return;
  }
  await db.query(
    `INSERT INTO user_preferences (user_id, reminders, expired_notice, time_zone, waking_start_minute, waking_end_minute, working_days)
       VALUES ($1, $2, $3, $4, $5, $6, $7)
     ON CONFLICT (user_id) DO UPDATE SET reminders = excluded.reminders, expired_notice = excluded.expired_notice,
       time_zone = excluded.time_zone, waking_start_minute = excluded.waking_start_minute,
       waking_end_minute = excluded.waking_end_minute, working_days = excluded.working_days, updated_at = now()`,
    [userId, reminders, expiredNotice, timeZone, wakingHours?.startMinute ?? null, wakingHours?.endMinute ?? null, workingDays],
  );
}
