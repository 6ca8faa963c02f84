// What a token id may be: the registries keep it in a bigint column (crates.io's in an int4, a narrower check on top).

const BIGINT_MAX = 9_223_372_036_854_775_807n;

/** A positive bigint in decimal: Postgres rejects anything else with an error, so an id that cannot exist is simply not found. */
export function isBigintId(id: string): boolean {
  return /^[1-9][0-9]{0,18}$/.test(id) && BigInt(id) <= BIGINT_MAX;
}
