// Who a reminder goes to, read at send time so that a changed address is used.
import { TOKEN_COLUMNS, type TokenRow } from './tokens';
import type { Queryable } from './transaction';

export interface ReminderRecipient {
  token: TokenRow;
  login: string;
  /** Null when the owner has no verified address. */
  email: string | null;
}

/** The token and its owner's verified address; null when the token is gone. */
export async function findReminderRecipient(db: Queryable, tokenId: string): Promise<ReminderRecipient | null> {
  const { rows } = await db.query<TokenRow & { login: string; email: string | null }>(
    `SELECT t.*, u.login, CASE WHEN e.verified THEN e.email END AS email
       FROM (SELECT ${TOKEN_COLUMNS} FROM api_tokens WHERE id = $1) t
       JOIN users u ON u.id = t."userId"::bigint
       LEFT JOIN emails e ON e.user_id = u.id`,
    [tokenId],
  );
  const row = rows[0];
  if (!row) return null;
  const { login, email, ...token } = row;
  return { token, login, email };
}
