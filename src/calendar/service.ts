// Each user's calendar feed of token expiries, at a secret link they can subscribe to: make (or replace) the link,
// turn it off, and render the feed a link opens. Only the secret's SHA-256 is stored.
import { createHash, randomBytes } from 'node:crypto';
import type { Pool } from 'pg';
import type { Config } from '../config';
import { findPreferences } from '../db/preferences';
import { deleteCalendarFeed, findCalendarFeedUser, saveCalendarFeed } from '../db/calendarFeeds';
import { userPlan, type PreferenceSettings } from '../preferences/rules';
import type { RegistryAdapter, UserRow } from '../registry/adapter';
import { renderCalendar } from './ics';

export interface CalendarServiceDeps {
  db: Pool;
  registry: RegistryAdapter;
  config: PreferenceSettings & Pick<Config, 'API_PUBLIC_URL' | 'REGISTRY_NAME' | 'REGISTRY_URL' | 'TOKEN_EXPIRY_INSTANCE'>;
  now?: () => Date;
}

/** 256 random bits, URL-safe. */
const SECRET = /^[A-Za-z0-9_-]{43}$/;
const sha256 = (secret: string) => createHash('sha256').update(secret).digest();

export function createCalendarService(deps: CalendarServiceDeps) {
  const now = deps.now ?? (() => new Date());
  const { registry } = deps;
  return {
    /** A new secret link for the user's feed; any earlier link stops working. Shown once, here. */
    async newLink(user: UserRow): Promise<{ url: string }> {
      const secret = randomBytes(32).toString('base64url');
      await saveCalendarFeed(deps.db, user.id, sha256(secret));
      return { url: `${deps.config.API_PUBLIC_URL}/calendar/${secret}.ics` };
    },

    /** Turns the user's feed off; false when it was off. */
    async removeLink(user: UserRow): Promise<boolean> {
      return deleteCalendarFeed(deps.db, user.id);
    },

    /** The feed a link's secret opens: the owner's tokens that are active and not yet expired; null for no feed. */
    async feed(secret: string): Promise<string | null> {
      if (!SECRET.test(secret)) return null;
      const userId = await findCalendarFeedUser(deps.db, sha256(secret));
      if (!userId) return null;
      const at = now();
      const tokens = (await registry.listTokensOfUser(deps.db, userId, 0)).filter(
        (token) => !token.revoked && token.expiredAt !== null && token.expiredAt > at,
      );
      const plan = userPlan(await findPreferences(deps.db, userId), deps.config);
      return renderCalendar({
        registryName: deps.config.REGISTRY_NAME,
        registryUrl: deps.config.REGISTRY_URL,
        uidDomain: new URL(deps.config.REGISTRY_URL).hostname,
        instance: deps.config.TOKEN_EXPIRY_INSTANCE,
        now: at,
        tokens: tokens.map((token) => ({ id: token.id, name: token.name, expiresAt: token.expiredAt as Date })),
        leadTimes: plan.reminders,
      });
    },
  };
}

export type CalendarService = ReturnType<typeof createCalendarService>;
