// The instant path's contract: the trigger `registry-sql --trigger` installs NOTIFYs a token's id on this channel,
// and the listener (src/discovery/listener.ts) LISTENs on it.
export const TOKEN_CHANGE_CHANNEL = 'token_expiry_tokens';
