// One id rule for the API, the adapters and the change listener: a positive bigint, nothing that would make
// PostgreSQL fail the query.
import { isBigintId } from '../src/registry/tokenId';

test.each(['1', '42', '999999999999999999', '1000000000000000000', '9223372036854775807'])('%s is a token id', (id) => {
  expect(isBigintId(id)).toBe(true);
});

test.each(['', '0', '01', '-1', '+1', '1.5', '1e3', ' 1', '9223372036854775808', '9999999999999999999', '10000000000000000000'])(
  '%j is not a token id',
  (id) => {
    expect(isBigintId(id)).toBe(false);
  },
);
