// The registry's HTTP API: routing, service-token auth, the acting user, body validation, one log line per request.
import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Logger } from '@temporalio/common';
import { z } from 'zod';
import { ConfigError, type Config } from '../config';
import { isBigintId as isTokenId } from '../registry/tokenId';
import type { UserRow } from '../registry/adapter';
import { logger as defaultLogger } from '../log';
import { ApiError, describeIssues, errorBody, readFormBody, readJsonBody, requiredFieldMessages, sendReply, type Reply } from './http';
import { openApiDocument } from './openapi';
import { apiRoutes, asApiError, type Route, type RouteDeps } from './routes';

/** What the routes need, and the service token that guards them. */
export interface ApiDeps extends Omit<RouteDeps, 'config'> {
  config: RouteDeps['config'] & Pick<Config, 'API_AUTH_TOKEN'>;
  logger?: Logger;
}

const sha256 = (text: string) => createHash('sha256').update(text).digest();

/** Compares digests, so that neither the token's bytes nor its length show in the timing. */
function serviceTokenCheck(expected: string): (header: string | undefined) => boolean {
  const expectedDigest = sha256(expected);
  return (header) => {
    const presented = /^Bearer +(\S+)$/i.exec(header ?? '')?.[1];
    const match = timingSafeEqual(sha256(presented ?? ''), expectedDigest);
    return presented !== undefined && match;
  };
}

const registryUser = z
  .string()
  .min(1, 'is required')
  .max(200, 'must be at most 200 characters');

type Match = { route: Route; params: Record<string, string> } | { allowed: string[] } | null;

function matchRoute(routes: Route[], method: string, path: string): Match {
  const segments = path.split('/');
  const allowed: string[] = [];
  for (const route of routes) {
    const pattern = route.path.split('/');
    if (pattern.length !== segments.length) continue;
    const params: Record<string, string> = {};
    const fits = pattern.every((part, i) => {
      const segment = segments[i] as string;
      if (part.startsWith(':')) {
        params[part.slice(1)] = segment;
        return segment.length > 0;
      }
      return part === segment;
    });
    if (!fits) continue;
    if (route.method === method) return { route, params };
    allowed.push(route.method);
  }
  return allowed.length > 0 ? { allowed } : null;
}

/**
 * The API as a node:http Server, not yet listening. Refuses to exist without API_AUTH_TOKEN: an API that
 * lets anyone act for any user must not start by accident.
 */
export function createApiServer(deps: ApiDeps): Server {
  if (!deps.config.API_AUTH_TOKEN) {
    throw new ConfigError(
      'API_AUTH_TOKEN: is required to serve the API (the service token the registry backend sends as "Authorization: Bearer ...", at least 16 characters)',
    );
  }
  const authorized = serviceTokenCheck(deps.config.API_AUTH_TOKEN);
  const log = deps.logger ?? defaultLogger;

  const routes = apiRoutes(deps);
  let document: Record<string, unknown> | undefined;
  routes.push({
    method: 'GET',
    path: '/api/openapi.json',
    access: 'public',
    doc: { summary: 'This document', success: { status: 200, description: 'OpenAPI 3.1.' } },
    handle: async () => ({ status: 200, body: (document ??= openApiDocument(routes)) }),
  });

  /** The login the registry names; checked before the body is read, looked up after the body validates. */
  function registryLogin(req: IncomingMessage): string {
    const header = registryUser.safeParse(req.headers['x-registry-user'], requiredFieldMessages);
    if (!header.success) throw new ApiError(400, describeIssues(header.error, 'X-Registry-User'));
    return header.data;
  }

  async function validBody(req: IncomingMessage, route: Route): Promise<unknown> {
    if (route.body === 'form') return readFormBody(req);
    const body = await readJsonBody(req);
    if (!route.body) {
      if (body !== undefined) throw new ApiError(400, `${route.method} ${route.path} takes no request body`);
      return undefined;
    }
    if (body === undefined) {
      if (route.body.optional) return undefined;
      throw new ApiError(400, 'a JSON request body is required');
    }
    const parsed = route.body.schema.safeParse(body, requiredFieldMessages);
    if (!parsed.success) throw new ApiError(422, describeIssues(parsed.error));
    return parsed.data;
  }

  async function respond(req: IncomingMessage, logFields: Record<string, unknown>): Promise<Reply> {
    const [path = '/', search = ''] = (req.url ?? '/').split('?', 2);
    const method = req.method ?? 'GET';
    const match = matchRoute(routes, method, path);
    if (!match) throw new ApiError(404, `no such endpoint: ${method} ${path} (see /api/openapi.json)`);
    if ('allowed' in match) {
      throw new ApiError(405, `${method} is not allowed here (allowed: ${match.allowed.join(', ')})`, {
        Allow: match.allowed.join(', '),
      });
    }
    const { route, params } = match;
    logFields.route = route.path;
    if (params.id !== undefined && isTokenId(params.id)) logFields.tokenId = params.id;

    let login: string | undefined;
    if (route.access !== 'public') {
      if (!authorized(req.headers.authorization)) {
        throw new ApiError(401, 'missing or wrong service token (send "Authorization: Bearer <API_AUTH_TOKEN>")', {
          'WWW-Authenticate': 'Bearer realm="token-expiry"',
        });
      }
    }
    if (route.access === 'user') login = registryLogin(req);
    const body = await validBody(req, route);
    let user: UserRow | null = null;
    if (login !== undefined) {
      user = await deps.tokens.user(login).catch((err: unknown) => {
        throw asApiError(err);
      });
      logFields.userId = user.id;
    }
    const reply = await route.handle({ params, query: new URLSearchParams(search), body, user });
    Object.assign(logFields, reply.log);
    return reply;
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = performance.now();
    const logFields: Record<string, unknown> = { method: req.method, route: null };
    let reply: Reply;
    try {
      reply = await respond(req, logFields);
    } catch (err) {
      if (err instanceof ApiError) {
        reply = { status: err.status, body: errorBody(err.details), headers: err.headers };
      } else {
        log.error('request failed', { ...logFields, error: err as Error });
        reply = { status: 500, body: errorBody(['internal error; it has been logged']) };
      }
    }
    sendReply(req, res, reply);
    log.info('request', {
      ...logFields,
      status: reply.status,
      durationMs: Math.round((performance.now() - started) * 10) / 10,
    });
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      log.error('reply failed', { error: err as Error });
      res.destroy();
    });
  });
  // Bodies are small and the work is a few queries: a slow client must not hold a socket for minutes.
  server.requestTimeout = 30_000;
  server.headersTimeout = 10_000;
  return server;
}
