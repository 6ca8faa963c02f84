// Names (roles, schemas) that we put into SQL text, where a bind parameter cannot go.

/** A role or schema name a user may give us: plain lower-case identifiers only, so printed SQL reads as it runs. */
export const SQL_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

/** `name` as a quoted SQL identifier. */
export const quoteIdent = (name: string): string => `"${name.replace(/"/g, '""')}"`;
