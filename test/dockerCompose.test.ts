import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { CONFIG_VARIABLES, loadConfig } from '../src/config';

// No Docker engine runs here, so the compose file is checked by reading it against the config schema.
const root = path.resolve(__dirname, '..');
// merge: compose's x-app-environment anchor is merged into each app's environment with <<.
const compose = parse(readFileSync(path.join(root, 'docker-compose.yml'), 'utf8'), { merge: true });
const services: Record<string, Record<string, any>> = compose.services;

/** The environment as compose would hand it over, with ${VAR:-default} and ${VAR:?msg} filled in. */
function environmentOf(service: string, supplied: Record<string, string>): Record<string, string> {
  const raw: Record<string, string> = services[service]?.environment ?? {};
  return Object.fromEntries(
    Object.entries(raw).map(([name, value]) => [
      name,
      String(value).replace(/\$\{(\w+)(?::[-?]([^}]*))?\}/g, (_m, variable: string, fallback?: string) => {
        const given = supplied[variable];
        if (given !== undefined) return given;
        if (String(value).includes(`${variable}:?`)) throw new Error(`${service}: ${variable} is required`);
        return fallback ?? '';
      }),
    ]),
  );
}

const operatorEnv = {
  POSTMARK_SERVER_TOKEN: 'server-token',
  EMAIL_FROM: 'Registry <noreply@registry.example>',
  REGISTRY_NAME: 'Registry',
  REGISTRY_URL: 'https://registry.example',
  API_AUTH_TOKEN: 'a-long-enough-service-token',
};

test('the stack has the database, Temporal, its UI, migrations, the worker and the API', () => {
  expect(Object.keys(services).sort()).toEqual(['api', 'grafana', 'migrate', 'postgres', 'prometheus', 'temporal', 'temporal-ui', 'worker']);
  for (const app of ['migrate', 'worker', 'api']) expect(services[app]?.build).toBe('.');
  expect(readFileSync(path.join(root, 'Dockerfile'), 'utf8')).toContain('ENTRYPOINT ["node", "dist/src/cli.js"]');
});

test('every long-running service has a health check, and dependants wait for it', () => {
  for (const name of ['postgres', 'temporal', 'worker', 'api']) expect(services[name]?.healthcheck?.test).toBeDefined();
  expect(services.temporal?.depends_on.postgres.condition).toBe('service_healthy');
  for (const app of ['worker', 'api']) {
    expect(services[app]?.depends_on.temporal.condition).toBe('service_healthy');
    expect(services[app]?.depends_on.migrate.condition).toBe('service_completed_successfully');
  }
});

test.each(['migrate', 'worker', 'api'])('%s: every variable is one the config knows, and the config accepts them', (service) => {
  const env = environmentOf(service, operatorEnv);
  for (const name of Object.keys(env)) expect(CONFIG_VARIABLES).toContain(name);
  const config = loadConfig(env);
  expect(config.DATABASE_URL).toContain('@postgres:5432/');
  if (service !== 'migrate') expect(config.TEMPORAL_ADDRESS).toBe('temporal:7233');
});

test('the ports agree with the config: API on API_PORT, metrics on METRICS_PORT, the UI on 8233', () => {
  const api = loadConfig(environmentOf('api', operatorEnv));
  expect(services.api?.ports).toContain(`${api.API_PORT}:${api.API_PORT}`);
  expect(JSON.stringify(services.api?.healthcheck.test)).toContain(`:${api.API_PORT}/health`);
  const worker = loadConfig(environmentOf('worker', operatorEnv));
  expect(services.worker?.ports).toContain(`${worker.METRICS_PORT}:${worker.METRICS_PORT}`);
  expect(JSON.stringify(services.worker?.healthcheck.test)).toContain(`:${worker.METRICS_PORT}/metrics`);
  expect(services['temporal-ui']?.ports).toContain('8233:8080');
  expect(services['temporal-ui']?.environment.TEMPORAL_ADDRESS).toBe(worker.TEMPORAL_ADDRESS);
});

test('secrets come from the operator, never from the file', () => {
  expect(() => environmentOf('api', { ...operatorEnv, API_AUTH_TOKEN: undefined as never })).toThrow(/API_AUTH_TOKEN is required/);
  expect(() => environmentOf('worker', { ...operatorEnv, POSTMARK_SERVER_TOKEN: undefined as never })).toThrow(
    /POSTMARK_SERVER_TOKEN is required/,
  );
});
