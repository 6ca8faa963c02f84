/**
 * The claim protocol under generated interleavings (fast-check), against the real PostgreSQL: attempts of
 * several tokens of one user claim, confirm, send, give up and lose their leases in any order, two claims at
 * times in the same instant. A small model says what each step must do; after every step the rows must be what
 * the model says, and the promise behind "exactly once" must hold: two attempts never both hold a confirmed
 * permission to send the same reminder, and a reminder recorded as sent is never written again.
 */
import fc from 'fast-check';
import {
  claimRows,
  confirmClaim,
  markOutcomeUnknown,
  recordSent,
  recordUnsent,
  rekeyRow,
  releaseClaim,
  type Claim,
} from '../src/db/claims';
import { dedupeKey, type ReminderRef } from '../src/db/notifications';
import { builtinWriter, insertUser } from '../src/registry/builtin';
import { createTestDatabase, type TestDatabase } from './helpers/database';

const TOKENS = 3;
const LEASE_MS = 60_000;
const REMINDER = '7d';
const DUE_AT = '2030-06-10T12:00:00.000Z';

let database: TestDatabase;
let userId: string;
let made = 0;

beforeAll(async () => {
  database = await createTestDatabase();
  userId = (await insertUser(database.pool, { login: 'interleaver', email: 'i@example.com', verified: true })).id;
});
afterAll(async () => {
  await database?.drop();
});

/** One reminder row as the model expects it; `lapsed`: its claim's lease is over (or was released). */
interface RowModel {
  status: 'sending' | 'sent' | 'failed';
  attempts: number;
  claimId: string;
  sentBy: string;
  unknown: boolean;
  lapsed: boolean;
  key: string;
  messageId: string | null;
}

/** A claim an attempt won: its fence, its leader, the rows it took and the key its email goes out under. */
interface Won {
  fence: string;
  leader: ReminderRef;
  tokenIds: string[];
  key: string;
}

class Model {
  rows = new Map<string, RowModel>();
  won: Won[] = [];
  /** Per row, the fence whose confirm is the live permission to send it (until a lapse, release or record). */
  confirmed = new Map<string, string>();
  sends = 0;

  clone(): Model {
    const copy = new Model();
    for (const [id, row] of this.rows) copy.rows.set(id, { ...row });
    copy.won = [...this.won];
    copy.confirmed = new Map(this.confirmed);
    copy.sends = this.sends;
    return copy;
  }

  /** What a claim must answer, given the fence it got if it won. */
  claim(leader: ReminderRef, members: ReminderRef[], fence: string | undefined): { kind: Claim['kind']; attempts?: number; tokenIds?: string[] } {
    const own = this.rows.get(leader.tokenId);
    if (own && own.status !== 'sending') return { kind: 'final' };
    if (own && !own.lapsed) return { kind: 'busy' };
    if (!fence) return { kind: 'claimed' };
    let taken: string[];
    let attempts: number;
    if (!own) {
      attempts = 1;
      const row = { status: 'sending' as const, attempts, claimId: fence, sentBy: leader.tokenId, unknown: false, lapsed: false, messageId: null };
      this.rows.set(leader.tokenId, { ...row, key: dedupeKey(leader) });
      const fresh = members.filter((m) => !this.rows.has(m.tokenId));
      for (const m of fresh) this.rows.set(m.tokenId, { ...row, key: dedupeKey(leader) });
      taken = fresh.map((m) => m.tokenId);
    } else {
      // A later attempt: its own row, then the rows its earlier attempts took for their digest, if lapsed.
      attempts = own.attempts + 1;
      Object.assign(own, { attempts, claimId: fence, sentBy: leader.tokenId, lapsed: false });
      taken = [...this.rows].filter(([id, r]) => id !== leader.tokenId && r.sentBy === leader.tokenId && r.status === 'sending' && r.lapsed).map(([id]) => id);
      for (const id of taken) Object.assign(this.rows.get(id)!, { claimId: fence, lapsed: false });
    }
    const tokenIds = [leader.tokenId, ...taken];
    this.won.push({ fence, leader, tokenIds, key: this.rows.get(leader.tokenId)!.key });
    return { kind: 'claimed', attempts, tokenIds };
  }

  /** The rows a write of `fence` changes: held by it, still sending, and passing `also`. */
  held(fence: string, also: (id: string, row: RowModel) => boolean = () => true): string[] {
    return [...this.rows].filter(([id, r]) => r.claimId === fence && r.status === 'sending' && also(id, r)).map(([id]) => id);
  }
}

interface Real {
  tokens: ReminderRef[];
}

async function freshTokens(): Promise<ReminderRef[]> {
  const tokens: ReminderRef[] = [];
  for (let i = 0; i < TOKENS; i++) {
    const row = await builtinWriter.insertToken(database.pool, {
      userId,
      hash: Buffer.from(`interleaving-${++made}`),
      name: 'ci',
      expiredAt: new Date('2030-06-17T12:00:00Z'),
      crateScopes: null,
      endpointScopes: null,
    });
    tokens.push({ tokenId: row.id, reminder: REMINDER, dueAt: DUE_AT });
  }
  return tokens;
}

const claimOf = (leader: ReminderRef, members: ReminderRef[]) =>
  claimRows(database.pool, {
    lockKey: userId,
    leader,
    leaseMs: LEASE_MS,
    members: members.map((m) => ({ tokenId: m.tokenId, dueAt: m.dueAt, dedupeKey: dedupeKey(leader) })),
  });

function answered(claim: Claim) {
  if (claim.kind !== 'claimed') return { kind: claim.kind };
  return { kind: claim.kind, attempts: claim.attempts, tokenIds: claim.rows.map((r) => r.tokenId).sort() };
}

/** The rows in the database, in the model's terms. */
async function actualRows(real: Real): Promise<Map<string, RowModel>> {
  const { rows } = await database.pool.query<RowModel & { tokenId: string }>(
    `SELECT token_id::text AS "tokenId", status, attempts, claim_id::text AS "claimId", sent_by_token_id::text AS "sentBy",
            outcome_unknown_at IS NOT NULL AS unknown, (claimed_until IS NULL OR claimed_until < now()) AS lapsed,
            dedupe_key AS key, provider_message_id AS "messageId"
       FROM expiry_notifications WHERE token_id = ANY($1::bigint[]) AND reminder = $2`,
    [real.tokens.map((t) => t.tokenId), REMINDER],
  );
  return new Map(rows.map(({ tokenId, ...row }) => [tokenId, row]));
}

/** After every step: the rows are what the model says (a lapsed flag only matters while a row is sending). */
async function agree(model: Model, real: Real): Promise<void> {
  const norm = (rows: Map<string, RowModel>) =>
    Object.fromEntries([...rows].sort(([a], [b]) => Number(a) - Number(b)).map(([id, r]) => [id, { ...r, lapsed: r.status === 'sending' ? r.lapsed : null }]));
  expect(norm(await actualRows(real))).toEqual(norm(model.rows));
}

const sortIds = (ids: string[]) => [...ids].sort();

/** A step: `run` applies it to both sides and checks the answer. */
type Step = fc.AsyncCommand<Model, Real>;

class ClaimStep implements Step {
  constructor(readonly leader: number, readonly members: number[]) {}
  check = () => true;
  async run(model: Model, real: Real) {
    const leader = real.tokens[this.leader]!;
    const members = this.members.filter((m) => m !== this.leader).map((m) => real.tokens[m]!);
    const claim = await claimOf(leader, members);
    expect(answered(claim)).toEqual(withSortedIds(model.claim(leader, members, claim.kind === 'claimed' ? claim.fence : undefined)));
    await agree(model, real);
  }
  toString = () => `claim(${this.leader}, members ${this.members})`;
}

/** Two claims in the same instant: the outcome is one of the two orders, never a mix. */
class RaceStep implements Step {
  constructor(readonly a: number, readonly b: number, readonly membersOfA: number[]) {}
  check = () => true;
  async run(model: Model, real: Real) {
    const a = real.tokens[this.a]!;
    const b = real.tokens[this.b]!;
    const membersOfA = this.membersOfA.filter((m) => m !== this.a).map((m) => real.tokens[m]!);
    const [ca, cb] = await Promise.all([claimOf(a, membersOfA), claimOf(b, [])]);
    const fenceOf = (c: Claim) => (c.kind === 'claimed' ? c.fence : undefined);
    const orders = [
      () => { const m = model.clone(); return { m, answers: [m.claim(a, membersOfA, fenceOf(ca)), m.claim(b, [], fenceOf(cb))] }; },
      () => { const m = model.clone(); const second = m.claim(b, [], fenceOf(cb)); return { m, answers: [m.claim(a, membersOfA, fenceOf(ca)), second] }; },
    ].map((order) => order());
    const actual = [answered(ca), answered(cb)];
    const match = orders.find((o) => this.equal(o.answers.map(withSortedIds), actual));
    expect({ actual, oneOrder: match !== undefined }).toEqual({ actual, oneOrder: true });
    Object.assign(model, match!.m);
    await agree(model, real);
  }
  private equal = (x: unknown, y: unknown) => JSON.stringify(x) === JSON.stringify(y);
  toString = () => `race(claim ${this.a} with members ${this.membersOfA}, claim ${this.b})`;
}

/** Steps of an attempt that won a claim (the `n`th such, modulo how many there are). */
abstract class AttemptStep implements Step {
  constructor(readonly n: number) {}
  check = (model: Readonly<Model>) => model.won.length > 0;
  protected won = (model: Model) => model.won[this.n % model.won.length]!;
  abstract readonly what: string;
  abstract run(model: Model, real: Real): Promise<void>;
  toString = () => `${this.what}(attempt ${this.n})`;
}

/** Confirms some of the claim's rows (an email need not carry every row its attempt took). */
class ConfirmStep extends AttemptStep {
  readonly what = 'confirm';
  constructor(n: number, readonly leave: number[]) {
    super(n);
  }
  override async run(model: Model, real: Real) {
    const won = this.won(model);
    const ids = won.tokenIds.filter((_, i) => !this.leave.includes(i));
    const expected = model.held(won.fence, (id) => ids.includes(id));
    expect(sortIds(await confirmClaim(database.pool, won.fence, ids, LEASE_MS, won.key))).toEqual(sortIds(expected));
    for (const id of expected) {
      // The promise: no other attempt holds a live permission to send this row.
      expect([id, model.confirmed.get(id) ?? won.fence]).toEqual([id, won.fence]);
      model.confirmed.set(id, won.fence);
      Object.assign(model.rows.get(id)!, { key: won.key, unknown: false, lapsed: false });
    }
    await agree(model, real);
  }
}

class SentStep extends AttemptStep {
  readonly what = 'recordSent';
  override async run(model: Model, real: Real) {
    const won = this.won(model);
    const messageId = `msg-${++model.sends}`;
    const expected = model.held(won.fence, (_, r) => r.key === won.key);
    const delivery = { messageId, submittedAt: new Date(DUE_AT) };
    expect(sortIds(await recordSent(database.pool, won.fence, won.key, delivery, { now: new Date(DUE_AT), waited: false }))).toEqual(sortIds(expected));
    for (const id of expected) {
      Object.assign(model.rows.get(id)!, { status: 'sent', messageId, unknown: false, lapsed: true });
      model.confirmed.delete(id);
    }
    await agree(model, real);
  }
}

class UnknownStep extends AttemptStep {
  readonly what = 'outcomeUnknown';
  override async run(model: Model, real: Real) {
    const won = this.won(model);
    const expected = model.held(won.fence);
    expect(sortIds(await markOutcomeUnknown(database.pool, won.fence, 'socket hang up', LEASE_MS))).toEqual(sortIds(expected));
    for (const id of expected) Object.assign(model.rows.get(id)!, { unknown: true, lapsed: false });
    await agree(model, real);
  }
}

class ReleaseStep extends AttemptStep {
  readonly what = 'release';
  override async run(model: Model, real: Real) {
    const won = this.won(model);
    const expected = model.held(won.fence, (_, r) => !r.unknown);
    expect(sortIds(await releaseClaim(database.pool, won.fence, '429'))).toEqual(sortIds(expected));
    for (const id of expected) {
      model.rows.get(id)!.lapsed = true;
      model.confirmed.delete(id);
    }
    await agree(model, real);
  }
}

class RefusedStep extends AttemptStep {
  readonly what = 'refused';
  override async run(model: Model, real: Real) {
    const won = this.won(model);
    const expected = model.held(won.fence, (id) => won.tokenIds.includes(id));
    const outcome = { status: 'failed' as const, reason: 'postmark-refused' };
    expect(sortIds(await recordUnsent(database.pool, won.fence, won.tokenIds, outcome))).toEqual(sortIds(expected));
    for (const id of expected) {
      Object.assign(model.rows.get(id)!, { status: 'failed', lapsed: true });
      model.confirmed.delete(id);
    }
    await agree(model, real);
  }
}

class RekeyStep extends AttemptStep {
  readonly what = 'rekey';
  override async run(model: Model, real: Real) {
    const won = this.won(model);
    const key = await rekeyRow(database.pool, won.fence, won.leader);
    expect(key).toBe(dedupeKey(won.leader));
    const own = model.rows.get(won.leader.tokenId)!;
    if (own.claimId === won.fence && own.status === 'sending') own.key = key;
    // The attempt sends under its leader's own key from now on.
    model.won[this.n % model.won.length] = { ...won, key };
    await agree(model, real);
  }
}

/** Time passes beyond every lease: the attempts holding rows have timed out, whatever they still do. */
class LapseStep implements Step {
  check = () => true;
  async run(model: Model, real: Real) {
    await database.pool.query(
      `UPDATE expiry_notifications SET claimed_until = now() - interval '1 second'
        WHERE token_id = ANY($1::bigint[]) AND claimed_until IS NOT NULL`,
      [real.tokens.map((t) => t.tokenId)],
    );
    for (const row of model.rows.values()) row.lapsed = true;
    model.confirmed.clear();
    await agree(model, real);
  }
  toString = () => 'leases lapse';
}

function withSortedIds<T extends { tokenIds?: string[] }>(answer: T): T {
  return answer.tokenIds ? { ...answer, tokenIds: sortIds(answer.tokenIds) } : answer;
}

const token = fc.integer({ min: 0, max: TOKENS - 1 });
const members = fc.uniqueArray(token, { maxLength: TOKENS - 1 });
const attempt = fc.nat(20);
const steps = fc.commands(
  [
    fc.tuple(token, members).map(([l, m]) => new ClaimStep(l, m)),
    fc.tuple(token, token, members).map(([a, b, m]) => new RaceStep(a, b, m)),
    fc.tuple(attempt, fc.uniqueArray(fc.nat(TOKENS - 1), { maxLength: 1 })).map(([n, leave]) => new ConfirmStep(n, leave)),
    attempt.map((n) => new SentStep(n)),
    attempt.map((n) => new UnknownStep(n)),
    attempt.map((n) => new ReleaseStep(n)),
    attempt.map((n) => new RefusedStep(n)),
    attempt.map((n) => new RekeyStep(n)),
    fc.constant(new LapseStep()),
  ],
  { maxCommands: 30 },
);

test('any interleaving of claims, confirms, sends, refusals and lapsed leases: rows as the model says, one live permission to send per reminder, a sent row never rewritten', async () => {
  await fc.assert(
    fc.asyncProperty(steps, async (cmds) => {
      const real = { tokens: await freshTokens() };
      await fc.asyncModelRun(() => ({ model: new Model(), real }), cmds);
    }),
    { numRuns: 1000 },
  );
}, 120_000);
