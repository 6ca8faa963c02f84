/**
 * The leases a send attempt holds its rows with, sized from the timeouts they must outlive. A lease too short lets a
 * second attempt take a row whose email is still going out (two emails); one too long delays a crashed reminder.
 */
import {
  CLAIM_LEASE_MS,
  MIN_SEND_MS,
  POSTMARK_CALL_MAX_MS,
  SEND_ACTIVITY_TIMEOUT_MS,
  sendBudgetMs,
  sendLeaseMs,
  unknownLeaseMs,
} from '../src/tokenExpiry/lease';

test('a claim outlives the send activity it is taken for, by a 2 s margin for the clocks', () => {
  expect(SEND_ACTIVITY_TIMEOUT_MS).toBe(30_000);
  expect(CLAIM_LEASE_MS).toBe(32_000);
});

test('one Postmark call is capped below the activity timeout, and a send needs at least 1 s', () => {
  expect(POSTMARK_CALL_MAX_MS).toBe(20_000);
  expect(POSTMARK_CALL_MAX_MS).toBeLessThan(SEND_ACTIVITY_TIMEOUT_MS);
  expect(MIN_SEND_MS).toBe(1_000);
});

test('the send budget is the Postmark cap, and never reaches past the attempt deadline less the margin', () => {
  expect(sendBudgetMs(SEND_ACTIVITY_TIMEOUT_MS)).toBe(20_000);
  expect(sendBudgetMs(22_000)).toBe(20_000);
  expect(sendBudgetMs(10_000)).toBe(8_000);
  // An attempt nearly out of time gets less than a send needs: it gives the row back instead of sending.
  expect(sendBudgetMs(2_500)).toBeLessThan(MIN_SEND_MS);
});

test('the lease set before a send covers the send and the search lag, so a miss found after it lapses is trusted', () => {
  expect(sendLeaseMs(20_000, 5_000)).toBe(27_000);
  expect(sendLeaseMs(8_000, 60_000)).toBe(70_000);
});

test('after an ambiguous failure the rows stay held for the search lag and the margin', () => {
  expect(unknownLeaseMs(5_000)).toBe(7_000);
  expect(unknownLeaseMs(0)).toBe(2_000);
});
