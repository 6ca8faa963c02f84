// The backstop against personal data in text that comes from elsewhere (error messages): the logger runs every
// string through it, and the Postmark transport every error message before it reaches a log or a history.
const EMAIL = /[^\s@'"<>,;:()[\]]+@[^\s@'"<>,;:()[\]]+\.[A-Za-z]{2,}/g;
// A token secret: its prefix (TOKEN_PREFIX) and 32 letters or digits.
const SECRET = /\b[a-z0-9_]{1,16}[A-Za-z0-9]{32}\b/g;

/** `text` with each of `known` (a recipient as given, say), every e-mail address and every token secret replaced. */
export function redact(text: string, known: readonly string[] = []): string {
  let redacted = text;
  for (const value of known) {
    if (value.trim() !== '') redacted = redacted.split(value).join('[redacted]');
  }
  return redacted.replace(EMAIL, '[redacted]').replace(SECRET, '[token]');
}
