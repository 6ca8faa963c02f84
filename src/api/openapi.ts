// The OpenAPI 3.1 document, built from the route table and the zod schemas the routes validate with.
import { z } from 'zod';
import type { Route } from './routes';
import { errorResponse, requestSchemas, responseSchemas } from './schemas';

const ref = (id: string) => `#/components/schemas/${id}`;

type JsonSchema = Record<string, unknown>;

/** Components for one registry; `$schema`/`$id` are implied by OpenAPI 3.1, and date-time needs no regex. */
function components(registry: typeof requestSchemas, io: 'input' | 'output'): Record<string, JsonSchema> {
  const { schemas } = z.toJSONSchema(registry, {
    io,
    uri: ref,
    override: ({ jsonSchema }) => {
      if (jsonSchema.format === 'date-time') delete jsonSchema.pattern;
    },
  });
  return Object.fromEntries(
    Object.entries(schemas).map(([id, { $schema: _schema, $id: _id, ...schema }]) => [id, schema as JsonSchema]),
  );
}

function schemaRef(registry: typeof requestSchemas, schema: z.ZodType): { $ref: string } {
  const id = registry.get(schema)?.id;
  if (!id) throw new Error('OpenAPI: a route names a schema that is not registered');
  return { $ref: ref(id) };
}

function reply(description: string, schema?: z.ZodType): { description: string; content?: unknown } {
  if (!schema) return { description };
  return { description, content: { 'application/json': { schema: schemaRef(responseSchemas, schema) } } };
}

function operation(route: Route): Record<string, unknown> {
  const { doc } = route;
  const parameters: unknown[] = [];
  if (route.access === 'user') parameters.push({ $ref: '#/components/parameters/RegistryUser' });
  if (route.path.includes(':id')) parameters.push({ $ref: '#/components/parameters/TokenId' });
  if (route.path.includes(':feed')) {
    parameters.push({ name: 'feed', in: 'path', required: true, description: 'The feed link\'s secret, then .ics.', schema: { type: 'string' } });
  }
  for (const query of doc.query ?? []) {
    parameters.push({ name: query.name, in: 'query', required: false, description: query.description, schema: query.schema });
  }

  const responses: Record<string, { description: string; content?: unknown }> = {
    [doc.success.status]: reply(doc.success.description, doc.success.schema),
  };
  // Several causes can share a status: their descriptions are joined.
  const add = (status: number, description: string, schema: z.ZodType = errorResponse) => {
    const existing = responses[status];
    responses[status] = existing ? { ...existing, description: `${existing.description} ${description}` } : reply(description, schema);
  };
  if (route.body && route.body !== 'form') add(400, 'Malformed body: not JSON, not application/json, or over 64 KiB.');
  if (doc.query) add(400, 'A bad query parameter.');
  if (route.access === 'user') {
    add(400, 'X-Registry-User is missing.');
    add(404, 'No such user.');
  }
  if (route.access !== 'public') add(401, 'Missing or wrong service token.');
  if (route.body && route.body !== 'form') add(422, 'Invalid field values; each error names the field and why.');
  for (const [status, error] of Object.entries(doc.errors ?? {})) {
    if (typeof error === 'string') add(Number(status), error);
    else add(Number(status), error.description, error.schema);
  }

  return {
    operationId: `${route.method.toLowerCase()}${route.path.replace(/[^A-Za-z0-9]+(.)?/g, (_, c: string | undefined) => (c ?? '').toUpperCase())}`,
    summary: doc.summary,
    ...(doc.description ? { description: doc.description } : {}),
    ...(route.access !== 'public' ? { security: [{ registryService: [] }] } : { security: [] }),
    ...(parameters.length ? { parameters } : {}),
    ...(doc.request && route.body && route.body !== 'form'
      ? {
          requestBody: {
            required: !route.body.optional,
            content: { 'application/json': { schema: schemaRef(requestSchemas, doc.request) } },
          },
        }
      : {}),
    responses,
  };
}

export function openApiDocument(routes: Route[]): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const route of routes) {
    const path = route.path.replace(/:([A-Za-z]+)/g, '{$1}');
    (paths[path] ??= {})[route.method.toLowerCase()] = operation(route);
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'token-expiry',
      version: '1',
      description:
        'API tokens in crates.io\'s shape, with durable expiry reminders on Temporal. Called by the registry\'s backend, ' +
        'which has authenticated the user: it sends the service token and names the user in X-Registry-User.',
    },
    paths,
    components: {
      schemas: { ...components(requestSchemas, 'input'), ...components(responseSchemas, 'output') },
      securitySchemes: {
        registryService: {
          type: 'http',
          scheme: 'bearer',
          description: 'The service token shared with the registry backend (API_AUTH_TOKEN).',
        },
      },
      parameters: {
        RegistryUser: {
          name: 'X-Registry-User',
          in: 'header',
          required: true,
          description: 'The login of the user the registry has authenticated; the API acts for this user only.',
          schema: { type: 'string' },
        },
        TokenId: {
          name: 'id',
          in: 'path',
          required: true,
          schema: { type: 'integer', format: 'int64', minimum: 1 },
        },
      },
    },
  };
}
