import { z } from 'zod';

// What a user may put in a token. Shared by the command line and the HTTP API.
export const ENDPOINT_SCOPES = ['publish-new', 'publish-update', 'yank', 'change-owners'] as const;

const MAX_LIFETIME_MS = 10 * 365 * 86_400_000;

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

const tokenName = z
  .string()
  .trim()
  .min(1, 'must not be empty')
  .max(200, 'must be at most 200 characters')
  .refine((name) => !/\p{Cc}/u.test(name), 'must not contain control characters (such as line breaks)')
  // A lone UTF-16 surrogate would be stored as U+FFFD: a different name from the one asked for.
  .refine((name) => !LONE_SURROGATE.test(name), 'must be valid Unicode');

// A crate name, or a prefix ending in '*' (crates.io's crate scopes).
const crateScope = z
  .string()
  .regex(/^([A-Za-z][A-Za-z0-9_-]{0,63}\*?|\*)$/, 'must be a crate name or a prefix ending in *');

const endpointScope = z.enum(ENDPOINT_SCOPES, {
  error: `must be one of ${ENDPOINT_SCOPES.join(', ')}`,
});

/** An expiry must lie ahead of `now`, and not absurdly far. */
export function checkExpiry(expiresAt: Date, now: Date): string | null {
  if (Number.isNaN(expiresAt.getTime())) return 'is not a valid date';
  if (expiresAt.getTime() <= now.getTime()) return `${expiresAt.toISOString()} is in the past`;
  if (expiresAt.getTime() - now.getTime() > MAX_LIFETIME_MS) return 'must be within 10 years';
  return null;
}

export const newTokenInput = z.object({
  name: tokenName,
  crateScopes: z.array(crateScope).max(100).nullable(),
  endpointScopes: z.array(endpointScope).max(ENDPOINT_SCOPES.length).nullable(),
  expiresAt: z.date().nullable(),
});
