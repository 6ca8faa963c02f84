// The only way into users' webhooks for the CLI and the HTTP API: show, set (URL and channels), rotate the secret,
// turn off. A URL is checked once, here (https, and every address its host resolves to outside), and stored only
// when it passes; deliveries check the addresses again each time (src/webhooks/address.ts).
import type { Pool } from 'pg';
import type { Config } from '../config';
import {
  deleteUserWebhook,
  findUserWebhook,
  rotateWebhookSecret,
  saveUserWebhook,
  WEBHOOK_CHANNELS,
  type UserWebhook,
  type WebhookChannel,
} from '../db/webhooks';
import type { UserRow } from '../registry/adapter';
import { TokenError } from '../tokens/service';
import { checkedAddresses, parseWebhookUrl, systemResolve, WebhookAddressError, type Resolve } from './address';
import { newWebhookSecret } from './signature';

export interface WebhookServiceDeps {
  db: Pool;
  config: Pick<Config, 'WEBHOOK_ALLOW_PRIVATE' | 'WEBHOOK_ALLOW_HTTP'>;
  resolve?: Resolve;
}

/** A webhook as shown: never its secret, except right after it was made or rotated. */
export interface WebhookView {
  url: string;
  channels: WebhookChannel[];
  createdAt: Date;
  rotatedAt: Date;
  /** Shown once: when the webhook was first set, and on rotation. */
  secret?: string;
}

export interface WebhookChange {
  url: string;
  /** Null or absent: keep (email and webhook for a new one). */
  channels?: string[] | null;
}

function view(webhook: UserWebhook, showSecret: boolean): WebhookView {
  const { secret, url, channels, createdAt, rotatedAt } = webhook;
  return { url, channels, createdAt, rotatedAt, ...(showSecret ? { secret } : {}) };
}

function invalid(field: 'url' | 'channels', message: string): TokenError {
  return new TokenError('invalid', `${field}: ${message}`, [{ path: [field], message }]);
}

export function createWebhookService(deps: WebhookServiceDeps) {
  const policy = { allowPrivate: deps.config.WEBHOOK_ALLOW_PRIVATE, allowHttp: deps.config.WEBHOOK_ALLOW_HTTP };
  const resolve = deps.resolve ?? systemResolve;

  async function checkedUrl(text: string): Promise<string> {
    try {
      const url = parseWebhookUrl(text, policy);
      await checkedAddresses(url, policy, resolve);
      return url.toString();
    } catch (err) {
      if (err instanceof WebhookAddressError) throw invalid('url', err.message);
      throw invalid('url', `its host does not resolve (${err instanceof Error ? err.message : String(err)}): use a name that does`);
    }
  }

  function checkedChannels(channels: string[] | null | undefined): WebhookChannel[] | null {
    if (channels === undefined || channels === null) return null;
    const unknown = channels.filter((c) => !WEBHOOK_CHANNELS.includes(c as WebhookChannel));
    if (unknown.length > 0) throw invalid('channels', `${unknown.map((c) => JSON.stringify(c)).join(', ')}: not a channel (use email, webhook)`);
    if (!channels.includes('webhook')) {
      throw invalid('channels', 'must include webhook while a webhook is set (turn the webhook off to get email only)');
    }
    return WEBHOOK_CHANNELS.filter((c) => channels.includes(c));
  }

  return {
    async get(user: Pick<UserRow, 'id'>): Promise<WebhookView | null> {
      const webhook = await findUserWebhook(deps.db, user.id);
      return webhook ? view(webhook, false) : null;
    },

    /** Sets the URL (and channels); a new webhook gets its secret, shown in this answer only. Nothing changes on bad input. */
    async set(user: Pick<UserRow, 'id'>, change: WebhookChange): Promise<WebhookView> {
      const channels = checkedChannels(change.channels);
      const url = await checkedUrl(change.url);
      const { webhook, created } = await saveUserWebhook(deps.db, user.id, { url, channels, newSecret: newWebhookSecret() });
      return view(webhook, created);
    },

    /** A new secret, shown once; the old one stops signing at once. */
    async rotateSecret(user: Pick<UserRow, 'id'>): Promise<WebhookView> {
      const webhook = await rotateWebhookSecret(deps.db, user.id, newWebhookSecret());
      if (!webhook) throw new TokenError('not-found', 'no webhook is set: set one first (its secret is made then)');
      return view(webhook, true);
    },

    /** Reminders go by email only again; false when no webhook was set. */
    async remove(user: Pick<UserRow, 'id'>): Promise<boolean> {
      return deleteUserWebhook(deps.db, user.id);
    },
  };
}

export type WebhookService = ReturnType<typeof createWebhookService>;
