// The only way into users' reminder preferences for the CLI and the HTTP API: show, change, reset. A change is
// checked once, here, and stored only when all of it is valid.
import type { Client } from '@temporalio/client';
import type { Pool } from 'pg';
import { findPreferences, lockPreferences, savePreferences } from '../db/preferences';
import { withTransaction } from '../db/transaction';
import type { Config } from '../config';
import type { RegistryAdapter, UserRow } from '../registry/adapter';
import { replanUserTokens, type ReplanSettings, type ReplanSummary } from '../tokenExpiry/replan';
import { TokenError } from '../tokens/service';
import {
  applyChange,
  NO_PREFERENCES,
  userPlan,
  type PreferenceChange,
  type PreferenceSettings,
  type StoredPreferences,
  type UserPlan,
} from './rules';

export interface PreferenceServiceDeps {
  db: Pool;
  registry: RegistryAdapter;
  /** Connected on first use: showing preferences needs no Temporal. */
  temporal: () => Promise<Client>;
  config: PreferenceSettings & ReplanSettings & Pick<Config, 'TOKEN_EXPIRY_INSTANCE'>;
  now?: () => Date;
}

export interface PreferencesView {
  /** What the user chose; null fields follow the operator. */
  chosen: StoredPreferences;
  /** The plan their tokens get. */
  plan: UserPlan;
  /** The lead times they may choose from (EXPIRY_REMINDER_MENU). */
  menu: string[];
  /** After a change: what happened to the user's waiting workflows. */
  replan?: ReplanSummary;
}

export function createPreferenceService(deps: PreferenceServiceDeps) {
  const view = (chosen: StoredPreferences | null): PreferencesView => ({
    chosen: chosen ?? NO_PREFERENCES,
    plan: userPlan(chosen, deps.config),
    menu: deps.config.EXPIRY_REMINDER_MENU.map((r) => r.key),
  });

  /**
   * The stored preferences, once the user's waiting workflows have their plan: a change is in force at once. A run
   * that could not be reached (Temporal away) keeps its plan until `token-expiry replan`, which sends owners' plans.
   */
  async function replanned(user: Pick<UserRow, 'id'>, stored: StoredPreferences | null): Promise<PreferencesView> {
    const shown = view(stored);
    const replan = await replanUserTokens(deps.temporal, deps.db, deps.registry, deps.config, { userId: user.id, plan: shown.plan }, { now: deps.now });
    return { ...shown, replan };
  }

  return {
    async get(user: UserRow): Promise<PreferencesView> {
      return view(await findPreferences(deps.db, user.id));
    },

    /** Applies the change, or throws TokenError('invalid') naming every problem, having stored nothing. */
    async update(user: Pick<UserRow, 'id'>, change: PreferenceChange): Promise<PreferencesView> {
      const stored = await withTransaction(deps.db, async (client) => {
        const applied = applyChange((await lockPreferences(client, user.id)) ?? NO_PREFERENCES, change, deps.config);
        if ('issues' in applied) {
          const [first] = applied.issues;
          throw new TokenError(
            'invalid',
            applied.issues.map((issue) => `${issue.field}: ${issue.message}`).join('; ') || (first?.message ?? 'is invalid'),
            applied.issues.map(({ field, message }) => ({ path: [field], message })),
          );
        }
        await savePreferences(client, user.id, applied.preferences);
        return applied.preferences;
      });
      return replanned(user, stored);
    },

    /** Every field back to the operator's settings. */
    async reset(user: UserRow): Promise<PreferencesView> {
      await savePreferences(deps.db, user.id, NO_PREFERENCES);
      return replanned(user, null);
    },
  };
}

export type PreferenceService = ReturnType<typeof createPreferenceService>;
