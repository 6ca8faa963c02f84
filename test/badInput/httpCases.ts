/**
 * The HTTP API's bad-input table, generated: each field of a new token crossed with values of the wrong
 * type, shape, length or content; broken and mis-encoded JSON; wrong content types, methods, paths, ids,
 * service tokens, users and query strings; oversized bodies. Each case says whether it is malformed (a
 * 4xx is the only right answer) or valid but odd (unicode, SQL-looking names: they may succeed).
 */
import type { RawRequest } from '../helpers/rawHttp';

export interface HttpCase {
  category: string;
  name: string;
  request: RawRequest;
  kind: 'malformed' | 'valid';
  /** The status the contract fixes for this case; any 4xx when unset. */
  status?: number;
  /** Refused by Node's HTTP parser before the API sees it: a bare 4xx without the API's error body. */
  bare?: boolean;
  /** For a valid create: the name the token must end up with. */
  storedName?: string;
}

export interface HttpCaseContext {
  serviceToken: string;
  /** The user the requests act for. */
  login: string;
  /** A token of that user, and one of another user. */
  ownTokenId: string;
  otherTokenId: string;
  now: Date;
}

const DAY = 86_400_000;
const MISSING = Symbol('missing');
type Value = unknown | typeof MISSING;

const TOKENS = '/api/v1/me/tokens';

export function httpCases(ctx: HttpCaseContext): HttpCase[] {
  const cases: HttpCase[] = [];
  const year = ctx.now.getUTCFullYear() + 2;
  const future = new Date(ctx.now.getTime() + 30 * DAY).toISOString();
  const auth: [string, string] = ['Authorization', `Bearer ${ctx.serviceToken}`];
  const user: [string, string] = ['X-Registry-User', ctx.login];
  const json: [string, string] = ['Content-Type', 'application/json'];
  const baseToken = () => ({ name: 'publish from CI', crate_scopes: ['serde', 'serde_*'], endpoint_scopes: ['publish-update'], expired_at: future });
  const bodyWith = (field: string, value: Value) => {
    const token: Record<string, unknown> = baseToken();
    if (value === MISSING) delete token[field];
    else token[field] = value;
    return JSON.stringify({ api_token: token });
  };
  const validBody = JSON.stringify({ api_token: baseToken() });
  const create = (body: string | Buffer, headers: [string, string][] = [auth, user, json], extra: Partial<RawRequest> = {}): RawRequest => ({
    method: 'PUT',
    path: TOKENS,
    headers,
    body,
    ...extra,
  });
  const add = (category: string, name: string, request: RawRequest, kind: HttpCase['kind'] = 'malformed', more: Partial<HttpCase> = {}) =>
    cases.push({ category, name, request, kind, ...more });
  const show = (value: Value) => {
    if (value === MISSING) return '(missing)';
    const text = JSON.stringify(value);
    return text.length <= 60 ? text : `${text.slice(0, 50)}... (${text.length} characters)`;
  };

  // 1. Each field of a new token x values that are not what it takes.
  const wrongTypes: Value[] = [0, -1, 1.5, true, false, {}, { value: 'x' }];
  const fields: Record<string, { malformed: Value[]; valid: Value[] }> = {
    name: {
      malformed: [
        MISSING, null, ...wrongTypes, [], ['publish'],
        '', ' ', '     ', '\n', '\r\n', '\t', 'a\r\nBcc: victim@example.com', 'line one\nline two', 'carriage\rreturn',
        'nul\u0000byte', '\u0000', 'bell\u0007', 'escape\u001b[31mred', 'delete\u007f', 'next line\u0085', 'csi\u009b',
        'lone \ud800 surrogate', '\udfffbackwards', 'tab\tinside', 'x'.repeat(201), 'é'.repeat(201), '日'.repeat(201), 'x'.repeat(20_000), `${' '.repeat(300)}`,
      ],
      valid: [
        'café', '日本語のトークン', 'токен для CI', 'مفتاح النشر', '🔑 deploy key', 'e\u0301te\u0301', 'zero\u200bwidth', 'x'.repeat(200),
        "'; DROP TABLE api_tokens; --", "Robert'); DROP TABLE users;--", '<script>alert(1)</script>', '${jndi:ldap://x/a}',
        '%s%s%n', '../../etc/passwd', '{{7*7}}', 'null', 'line\u2028separator', 'bidi \u202Eoverride',
      ],
    },
    crate_scopes: {
      malformed: [
        ...wrongTypes, 'serde', [''], [' '], ['bad scope'], ['1abc'], ['-abc'], ['_abc'], ['a'.repeat(65)], ['**'], ['a**'],
        ['a*b'], ['*a'], ["serde'; DROP TABLE api_tokens;--"], ['serde OR 1=1'], ['ser\nde'], ['serde\r\n'], ['sérde'],
        ['серде'], ['serde\u0000'], ['serde '], [' serde'], ['ser.de'], ['ser/de'], ['%'], ['serde', null], [null], [1], [true],
        [['serde']], [{}], Array(101).fill('serde'), Array(5_000).fill('a'), ['serde', 'bad scope'],
      ],
      valid: [[], ['*'], ['a'], ['Z'], [`${'a'.repeat(64)}*`], ['serde', 'serde'], null, MISSING],
    },
    endpoint_scopes: {
      malformed: [
        ...wrongTypes, 'yank', ['admin'], [''], ['YANK'], ['Yank'], ['publish_new'], ['publish-new '], [' yank'], ['publish'],
        ['publish-*'], ['*'], [null], [1], [['yank']], [{}], ['yank', 'yank', 'yank', 'yank', 'yank'],
        ['publish-new', 'publish-update', 'yank', 'change-owners', 'admin'], ["yank' OR '1'='1"], ['yank\r\n'], ['yank\u0000'],
        ['ÿank'], ['change_owners'],
      ],
      valid: [[], ['yank', 'yank'], ['publish-new', 'publish-update', 'yank', 'change-owners'], null, MISSING],
    },
    expired_at: {
      malformed: [
        ...wrongTypes, [], [`${year}-01-01T00:00:00Z`], { $date: `${year}-01-01T00:00:00Z` }, 1893456000000, 1893456000,
        '2020-01-01T00:00:00Z', '1970-01-01T00:00:00Z', '0001-01-01T00:00:00Z', '0000-01-01T00:00:00Z',
        new Date(ctx.now.getTime() - 60_000).toISOString(), new Date(ctx.now.getTime() - DAY).toISOString(),
        '9999-12-31T23:59:59Z', `${ctx.now.getUTCFullYear() + 11}-01-01T00:00:00Z`, '+275760-09-13T00:00:00.000Z',
        '-000001-01-01T00:00:00Z', `${year}-01-01`, `${year}-01-01T00:00:00`, `${year}-01-01T00:00Z`, `${year}-01-01 00:00:00Z`,
        `${year}-01-01t00:00:00z`, `${year}-13-01T00:00:00Z`, `${year}-00-10T00:00:00Z`, `${year}-01-00T00:00:00Z`,
        `${year}-01-32T00:00:00Z`, `${year}-02-30T00:00:00Z`, `${year}-04-31T00:00:00Z`, `${year}-01-01T24:00:00Z`,
        `${year}-01-01T23:60:00Z`, `${year}-01-01T00:00:00+25:00`, `${year}-01-01T00:00:00+0100`, `${year}-01-01T00:00:00ZZ`,
        `${year}-01-01T00:00:00Z `, ` ${year}-01-01T00:00:00Z`, `${year}-01-01T00:00:00Z\n`, '２０３０-01-01T00:00:00Z',
        'tomorrow', 'now', 'never', '', '   ', 'null', 'Infinity', `${year}-01-01T00:00:00Z'; DROP TABLE api_tokens;--`,
      ],
      valid: [`${year}-01-01T00:00:00.123456789Z`, `${year}-06-01T00:00:00+14:00`, `${year}-06-01T00:00:00-00:00`, null, MISSING],
    },
  };
  // Not a leap year two years on? Then the 29th of February is one more impossible date.
  if (new Date(Date.UTC(year, 1, 29)).getUTCMonth() !== 1) fields.expired_at!.malformed.push(`${year}-02-29T00:00:00Z`);
  for (const [field, { malformed, valid }] of Object.entries(fields)) {
    for (const value of malformed) add(`field ${field}`, `${field} = ${show(value)}`, create(bodyWith(field, value)), 'malformed', { status: 422 });
    for (const value of valid) {
      const storedName = field === 'name' ? String(value).trim() : 'publish from CI';
      add(`field ${field}`, `${field} = ${show(value)}`, create(bodyWith(field, value)), 'valid', { storedName });
    }
  }

  // 2. Fields that do not exist, in the token and around it; bodies of the wrong shape.
  for (const key of ['admin', 'user_id', 'token', 'id', 'revoked', 'created_at', 'last_used_at', 'Name', 'name ', '', '__proto__', 'constructor']) {
    add('unknown field', `api_token.${JSON.stringify(key)}`, create(JSON.stringify({ api_token: { ...baseToken(), [key]: true } })), 'malformed', { status: 422 });
  }
  for (const key of ['admin', 'apiToken', 'API_TOKEN', 'api_tokens', 'user', '__proto__']) {
    add('unknown field', `top-level ${JSON.stringify(key)}`, create(JSON.stringify({ api_token: baseToken(), [key]: 1 })), 'malformed', { status: 422 });
  }
  const shapes: unknown[] = [{}, { api_token: null }, { api_token: [] }, { api_token: 'publish' }, { api_token: 1 }, { api_token: true }, { api_token: {} }, [], [JSON.parse(validBody)], null, 0, 'api_token', true];
  for (const shape of shapes) add('body shape', `body = ${JSON.stringify(shape).slice(0, 60)}`, create(JSON.stringify(shape)), 'malformed', { status: 422 });
  add('body shape', 'body = 1e400 (Infinity)', create('1e400'), 'malformed', { status: 422 });

  // 3. Not JSON: a valid body cut short at many points, syntax JSON does not have, bad bytes.
  for (let cut = 1; cut < validBody.length; cut += 3) {
    add('broken JSON', `first ${cut} of ${validBody.length} bytes`, create(validBody.slice(0, cut)), 'malformed', { status: 400 });
  }
  const syntax: [string, string][] = [
    ['trailing comma', validBody.replace(/}}$/, ',}}')],
    ['single quotes', validBody.replace(/"/g, "'")],
    ['unquoted keys', validBody.replace(/"(\w+)":/g, '$1:')],
    ['line comment', `// token\n${validBody}`],
    ['block comment', validBody.replace('{', '{/* c */')],
    ['NaN', bodyWith('name', 'x').replace('"x"', 'NaN')],
    ['Infinity', bodyWith('name', 'x').replace('"x"', 'Infinity')],
    ['undefined', bodyWith('name', 'x').replace('"x"', 'undefined')],
    ['trailing garbage', `${validBody}x`],
    ['two documents', `${validBody}${validBody}`],
    ['leading garbage', `x${validBody}`],
    ['raw line break in a string', bodyWith('name', 'a').replace('"a"', '"a\nb"')],
    ['raw tab in a string', bodyWith('name', 'a').replace('"a"', '"a\tb"')],
    ['bad escape \\x', bodyWith('name', 'a').replace('"a"', '"\\x41"')],
    ['short \\u escape', bodyWith('name', 'a').replace('"a"', '"\\u12"')],
    ['lone backslash', bodyWith('name', 'a').replace('"a"', '"\\"')],
    ['only whitespace', '   \n  '],
    ['hex number', bodyWith('name', 'a').replace('"a"', '0x10')],
    ['deep nesting (20000 arrays)', `${'['.repeat(20_000)}${']'.repeat(20_000)}`],
    ['deep nesting in a field', bodyWith('name', 'a').replace('"a"', `${'['.repeat(10_000)}${']'.repeat(10_000)}`)],
  ];
  for (const [name, body] of syntax) {
    // Deep nesting is valid JSON, so its answer is the schema's 422; the rest cannot be parsed.
    add('broken JSON', name, create(body), 'malformed', { status: name.startsWith('deep nesting') ? 422 : 400 });
  }
  // RFC 8259 lets a parser ignore a leading byte order mark, and this one does: odd, not malformed.
  add('broken JSON', 'byte order mark', create(`\ufeff${validBody}`), 'valid', { storedName: 'publish from CI' });
  const utf8 = Buffer.from(validBody, 'utf8');
  const nameAt = utf8.indexOf('publish');
  const withBytes = (bytes: number[]) => Buffer.concat([utf8.subarray(0, nameAt), Buffer.from(bytes), utf8.subarray(nameAt)]);
  const encodings: [string, Buffer][] = [
    ['byte 0xff', withBytes([0xff])],
    ['bytes 0xfe 0xff', withBytes([0xfe, 0xff])],
    ['lone continuation byte', withBytes([0x80])],
    ['overlong "/"', withBytes([0xc0, 0xaf])],
    ['truncated 3-byte sequence', withBytes([0xe6, 0x97])],
    ['UTF-8-encoded surrogate', withBytes([0xed, 0xa0, 0x80])],
    ['5-byte sequence', withBytes([0xf8, 0x88, 0x80, 0x80, 0x80])],
    ['code point above U+10FFFF', withBytes([0xf4, 0x90, 0x80, 0x80])],
    ['Latin-1 "é"', withBytes([0xe9])],
    ['UTF-16LE body', Buffer.from(validBody, 'utf16le')],
    ['UTF-16LE body with BOM', Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(validBody, 'utf16le')])],
  ];
  for (const [name, body] of encodings) add('bad encoding', name, create(body), 'malformed', { status: 400 });

  // 4. Content types: only application/json (any case, any parameters) is JSON.
  const types = ['text/plain', 'text/json', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/xml',
    'application/javascript', 'application/jsonp', 'application/json-patch+json', 'application/vnd.api+json', 'json', '*/*',
    'application/*', 'application/json2', 'application/ json', 'application/json, text/plain', ''];
  for (const type of types) add('content type', `Content-Type: ${JSON.stringify(type)}`, create(validBody, [auth, user, ['Content-Type', type]]), 'malformed', { status: 400 });
  add('content type', 'no Content-Type', create(validBody, [auth, user]), 'malformed', { status: 400 });
  add('content type', 'a form', create(`name=x&expired_at=${encodeURIComponent(future)}`, [auth, user, ['Content-Type', 'application/x-www-form-urlencoded']]), 'malformed', { status: 400 });
  for (const type of ['APPLICATION/JSON', 'application/json; charset=utf-8', 'Application/Json;charset=UTF-8']) {
    add('content type', `Content-Type: ${JSON.stringify(type)}`, create(validBody, [auth, user, ['Content-Type', type]]), 'valid', { storedName: 'publish from CI' });
  }

  // 5. Oversized bodies: the limit is 64 KiB, declared or streamed.
  const padded = (size: number) => `${validBody}${' '.repeat(size - Buffer.byteLength(validBody))}`;
  add('oversized', 'a 70000-character name', create(bodyWith('name', 'x'.repeat(70_000))), 'malformed', { status: 400 });
  for (const size of [65_537, 100_000, 300_000, 900_000]) add('oversized', `${size} bytes`, create(padded(size)), 'malformed', { status: 400 });
  for (const size of [65_537, 200_000]) add('oversized', `${size} bytes, chunked`, create(padded(size), [auth, user, json], { chunked: true }), 'malformed', { status: 400 });
  add('oversized', 'exactly 64 KiB', create(padded(65_536)), 'valid', { storedName: 'publish from CI' });

  // 6. Methods each path does not take (known to HTTP: 405 with Allow), and methods HTTP does not know.
  const paths: [string, string[]][] = [
    [TOKENS, ['GET', 'PUT']],
    [`${TOKENS}/${ctx.ownTokenId}`, ['GET', 'DELETE']],
    [`${TOKENS}/${ctx.ownTokenId}/duplicate`, ['POST']],
    [`${TOKENS}/${ctx.ownTokenId}/rotate`, ['POST']],
    [`${TOKENS}/${ctx.ownTokenId}/expiry`, ['GET']],
    ['/health', ['GET']],
    ['/api/openapi.json', ['GET']],
  ];
  const methods = ['GET', 'PUT', 'POST', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD', 'TRACE', 'PROPFIND', 'LOCK', 'PURGE', 'SEARCH', 'COPY', 'MOVE'];
  for (const [path, allowed] of paths) {
    for (const method of methods.filter((m) => !allowed.includes(m))) {
      add('method', `${method} ${path}`, { method, path, headers: [auth, user] }, 'malformed', { status: 405, bare: method === 'HEAD' });
    }
    for (const method of ['FOO', 'get', 'G ET']) add('method', `${JSON.stringify(method)} ${path}`, { method, path, headers: [auth, user] }, 'malformed', { bare: true });
  }

  // 7. Ids that are not ids (or not this user's) on every endpoint that takes one: all 404, like a missing token.
  const ids = ['-1', '0', '00', '01', 'abc', '1.5', '1e3', '0x1A', '+1', '%2B1', '%201', '1%20', '%00', '1%00', '%27%20OR%201%3D1--',
    "1'--", '1;DROP%20TABLE%20api_tokens', '%EF%BC%91', '%D9%A3', 'NaN', 'null', 'undefined', 'Infinity', '99999999999999999999',
    '9223372036854775807', '9223372036854775808', '999999999999999999', '%2e%2e', '~1', '%7B1%7D', 'true'];
  const idEndpoints: [string, string][] = [['GET', ''], ['DELETE', ''], ['POST', '/duplicate'], ['POST', '/rotate'], ['GET', '/expiry']];
  for (const id of ids) {
    for (const [method, suffix] of idEndpoints) add('token id', `${method} .../${id}${suffix}`, { method, path: `${TOKENS}/${id}${suffix}`, headers: [auth, user] }, 'malformed', { status: 404 });
  }
  for (const [method, suffix] of idEndpoints) {
    add('token id', `${method} another user's token${suffix}`, { method, path: `${TOKENS}/${ctx.otherTokenId}${suffix}`, headers: [auth, user] }, 'malformed', { status: 404 });
  }
  const oddPaths = [`${TOKENS}/`, `/${TOKENS}`, `${TOKENS}/${ctx.ownTokenId}/`, `${TOKENS}/${ctx.ownTokenId}/duplicate/x`, '/api/v1/me//tokens',
    '/API/v1/me/tokens', '/api/v2/me/tokens', `${TOKENS}/${ctx.ownTokenId}/../../tokens`, `${TOKENS}%2F${ctx.ownTokenId}`, '/', '/api',
    '*', `http://evil.example${TOKENS}`];
  for (const path of oddPaths) add('path', `GET ${path}`, { method: 'GET', path, headers: [auth, user] }, 'malformed', { status: 404 });

  // 8. The service token: missing, wrong, almost right, another scheme; on every endpoint.
  const wrongAuth: (string | null)[] = [null, '', 'Bearer', 'Bearer ', 'Bearer wrong', `Bearer ${ctx.serviceToken}x`, `Bearer ${ctx.serviceToken.slice(0, -1)}`,
    `Bearer ${ctx.serviceToken.toUpperCase()}`, `Basic ${Buffer.from(`x:${ctx.serviceToken}`).toString('base64')}`, ctx.serviceToken,
    `Token ${ctx.serviceToken}`, `Bearer ${'x'.repeat(8_000)}`, `Bearer ${ctx.serviceToken}, Bearer ${ctx.serviceToken}`];
  const userEndpoints: [string, string, string?][] = [
    ['GET', TOKENS], ['PUT', TOKENS, validBody], ['GET', `${TOKENS}/${ctx.ownTokenId}`], ['DELETE', `${TOKENS}/${ctx.ownTokenId}`],
    ['POST', `${TOKENS}/${ctx.ownTokenId}/duplicate`], ['POST', `${TOKENS}/${ctx.ownTokenId}/rotate`], ['GET', `${TOKENS}/${ctx.ownTokenId}/expiry`],
  ];
  wrongAuth.forEach((value, i) => {
    for (const [method, path, body] of userEndpoints) {
      const headers: [string, string][] = [user, ...(value === null ? [] : [['Authorization', value] as [string, string]])];
      if (body) headers.push(json);
      add('service token', `${method} ${path} with wrong token #${i + 1}`, { method, path, headers, body }, 'malformed', { status: 401 });
    }
  });

  // 9. The acting user: missing, empty, too long, unknown, SQL-looking, not quite theirs.
  const users: [string, [string, string][], number][] = [
    ['no X-Registry-User', [], 400],
    ['empty', [['X-Registry-User', '']], 400],
    ['201 characters', [['X-Registry-User', 'u'.repeat(201)]], 400],
    ['unknown', [['X-Registry-User', 'nobody']], 404],
    ['SQL-looking', [['X-Registry-User', "x' OR '1'='1"]], 404],
    ['upper-cased', [['X-Registry-User', ctx.login.toUpperCase()]], 404],
    ['with a suffix', [['X-Registry-User', `${ctx.login}%00`]], 404],
    ['UTF-8 bytes', [['X-Registry-User', `å${ctx.login}`]], 404],
    ['a wildcard', [['X-Registry-User', '*']], 404],
    ['given twice', [['X-Registry-User', ctx.login], ['X-Registry-User', 'nobody']], 404],
  ];
  for (const [name, headers, status] of users) {
    for (const [method, path, body] of [userEndpoints[0]!, userEndpoints[1]!, userEndpoints[2]!, userEndpoints[3]!]) {
      const all: [string, string][] = [auth, ...headers, ...(body ? [json] : [])];
      add('acting user', `${method} ${path}: ${name}`, { method, path, headers: all, body }, 'malformed', { status });
    }
  }

  // 10. The list's one query parameter.
  for (const value of ['-1', 'abc', '1.5', '100000', '', '1e3', '0x10', '%20', '1%00', "1'--", '%D9%A3', '+1', '1,2', '99999999999999999999', 'true']) {
    add('query', `expired_days=${value}`, { method: 'GET', path: `${TOKENS}?expired_days=${value}`, headers: [auth, user] }, 'malformed', { status: 400 });
  }
  add('query', 'expired_days given twice, the last bad', { method: 'GET', path: `${TOKENS}?expired_days=1&expired_days=x`, headers: [auth, user] }, 'malformed', { status: 400 });
  for (const query of ['expired_days=00001', 'unknown=1', 'expired_days=1&expired_days=2']) {
    add('query', query, { method: 'GET', path: `${TOKENS}?${query}`, headers: [auth, user] }, 'valid');
  }

  // 11. Bodies where none is taken, and on duplicate/rotate anything but nothing or {}.
  for (const [method, path] of [['GET', TOKENS], ['GET', `${TOKENS}/${ctx.ownTokenId}`], ['DELETE', `${TOKENS}/${ctx.ownTokenId}`], ['GET', `${TOKENS}/${ctx.ownTokenId}/expiry`]] as const) {
    for (const body of ['{}', validBody, 'x']) add('unexpected body', `${method} ${path} with ${body.slice(0, 20)}`, { method, path, headers: [auth, user, json], body }, 'malformed', { status: 400 });
  }
  for (const action of ['duplicate', 'rotate']) {
    const path = `${TOKENS}/${ctx.ownTokenId}/${action}`;
    for (const body of ['{"name":"other"}', '[]', '"x"', '1', 'null', '{"expired_at":null}', validBody]) {
      add('unexpected body', `POST ${action} with ${body.slice(0, 30)}`, { method: 'POST', path, headers: [auth, user, json], body }, 'malformed', { status: 422 });
    }
    for (const body of ['{', '{}}', 'x']) add('unexpected body', `POST ${action} with broken ${body}`, { method: 'POST', path, headers: [auth, user, json], body }, 'malformed', { status: 400 });
    add('unexpected body', `POST ${action} as text/plain`, { method: 'POST', path, headers: [auth, user, ['Content-Type', 'text/plain']], body: '{}' }, 'malformed', { status: 400 });
  }

  // 12. Requests Node's HTTP parser refuses before the API sees them.
  const bare = (name: string, request: RawRequest) => add('HTTP syntax', name, request, 'malformed', { bare: true });
  bare('bare CR in a header value', { method: 'GET', path: TOKENS, headers: [auth, ['X-Registry-User', `${ctx.login}\rX-Injected: 1`]] });
  bare('a header line without a colon', { method: 'GET', path: TOKENS, headers: [auth, user, ['X-Broken\r\nno colon here', 'x']] });
  bare('a space in the path', { method: 'GET', path: `${TOKENS}/1 2`, headers: [auth, user] });
  bare('Content-Length: abc', { method: 'PUT', path: TOKENS, headers: [auth, user, json, ['Content-Length', 'abc']] });
  bare('Content-Length: -1', { method: 'PUT', path: TOKENS, headers: [auth, user, json, ['Content-Length', '-1']] });
  bare('two different Content-Lengths', { method: 'PUT', path: TOKENS, headers: [auth, user, json, ['Content-Length', '5'], ['Content-Length', '6']], body: '{}' });
  bare('Content-Length and chunked together', { method: 'PUT', path: TOKENS, headers: [auth, user, json, ['Content-Length', '2']], body: '{}', chunked: true });
  bare('a 20 KiB header', { method: 'GET', path: TOKENS, headers: [auth, ['X-Registry-User', 'u'.repeat(20_000)]] });

  return cases;
}
