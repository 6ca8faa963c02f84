// What an email tells its user about their own say: where to choose their warnings, a warning's one-click link
// to turn them off, and, on the expired notice, whether they turned them off (and so how to turn them on again).
import type { Config } from '../config';
import { findPreferences } from '../db/preferences';
import type { Queryable } from '../db/transaction';
import { userPlan } from '../preferences/rules';
import type { ReminderKind } from '../tokenExpiry/contract';
import type { EmailChoices } from './reminderEmail';
import { unsubscribeLink } from './unsubscribe';

export type ChoicesSettings = Pick<
  Config,
  'PREFERENCES_URL' | 'REGISTRY_URL' | 'API_PUBLIC_URL' | 'UNSUBSCRIBE_SECRET' | 'EXPIRY_REMINDERS' | 'EXPIRED_NOTICE' | 'EXPIRY_REMINDER_MENU'
>;

export async function emailChoices(
  db: Queryable,
  settings: ChoicesSettings,
  { userId, kind, now }: { userId: string; kind: ReminderKind; now: Date },
): Promise<EmailChoices> {
  return {
    preferencesUrl: settings.PREFERENCES_URL ?? `${settings.REGISTRY_URL}/settings/tokens`,
    unsubscribeUrl: kind === 'warning' ? unsubscribeLink(userId, settings, now) : null,
    // Only the expired notice asks: a warning goes out because warnings are on.
    warningsOff: kind === 'expired' && userPlan(await findPreferences(db, userId), settings).reminders.length === 0,
  };
}
