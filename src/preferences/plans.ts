// The plans of a batch of users, for the code that starts or re-plans their tokens' workflows.
import { findPreferencesOfUsers } from '../db/preferences';
import type { Queryable } from '../db/transaction';
import { userPlan, type PreferenceSettings, type UserPlan } from './rules';

/** The plan of each of these users (the operator's settings for those who never chose), in one query. */
export async function findUserPlans(db: Queryable, userIds: string[], settings: PreferenceSettings): Promise<(userId: string) => UserPlan> {
  const preferences = await findPreferencesOfUsers(db, userIds);
  return (userId) => userPlan(preferences.get(userId) ?? null, settings);
}
