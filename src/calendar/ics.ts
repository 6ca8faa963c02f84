// A user's token expiries as an iCalendar feed (RFC 5545): one event per active token at its expiry, an alarm per
// lead time of the user's plan, a UID that stays the same for a token, and the link that makes a replacement.
// Pure: the calendar service reads the tokens and the plan.

interface CalendarToken {
  id: string;
  name: string;
  expiresAt: Date;
}

export interface CalendarInput {
  registryName: string;
  registryUrl: string;
  /** The UID's domain, and the instance id (src/db/instance.ts) in it: ids of two registries never meet. */
  uidDomain: string;
  instance?: string;
  now: Date;
  tokens: CalendarToken[];
  /** The user's lead times, longest first. */
  leadTimes: { key: string; beforeExpiryMs: number }[];
}

/** TEXT escaping (RFC 5545 3.3.11). */
function text(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/;/g, '\\;').replace(/,/g, '\\,').replace(/\r?\n/g, '\\n');
}

/** UTC DATE-TIME (3.3.5, form 2). */
function utc(date: Date): string {
  return date.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}Z$/, 'Z');
}

/** A negative DURATION (3.3.6): 3 days -> -P3D, 12 hours -> -PT12H. */
function before(ms: number): string {
  const seconds = Math.round(ms / 1000);
  const days = Math.floor(seconds / 86_400);
  const rest = seconds % 86_400;
  const time = [
    [Math.floor(rest / 3600), 'H'],
    [Math.floor((rest % 3600) / 60), 'M'],
    [rest % 60, 'S'],
  ]
    .filter(([n]) => n !== 0)
    .map(([n, unit]) => `${n}${unit}`)
    .join('');
  return `-P${days > 0 ? `${days}D` : ''}${time ? `T${time}` : ''}` || '-PT0S';
}

/** Content lines are folded at 75 octets (3.1), never inside a UTF-8 character; lines end in CRLF. */
function fold(line: string): string {
  const out: string[] = [];
  let current = '';
  let octets = 0;
  for (const char of line) {
    const size = Buffer.byteLength(char);
    // The first line holds 75 octets; each continuation starts with a space, so it holds 74 more.
    if (octets + size > (out.length === 0 ? 75 : 74)) {
      out.push(current);
      current = '';
      octets = 0;
    }
    current += char;
    octets += size;
  }
  out.push(current);
  return out.join('\r\n ');
}

export function renderCalendar(input: CalendarInput): string {
  const stamp = utc(input.now);
  const lines = [
    'BEGIN:VCALENDAR',
    'VERSION:2.0',
    `PRODID:-//token-expiry//${text(input.registryName)} token expiries//EN`,
    'CALSCALE:GREGORIAN',
    `X-WR-CALNAME:${text(`${input.registryName} API token expiries`)}`,
  ];
  for (const token of input.tokens) {
    const regenerate = `${input.registryUrl}/settings/tokens/new?from=${encodeURIComponent(token.id)}`;
    lines.push(
      'BEGIN:VEVENT',
      `UID:token-${input.instance ? `${input.instance}-` : ''}${token.id}@${input.uidDomain}`,
      `DTSTAMP:${stamp}`,
      `DTSTART:${utc(token.expiresAt)}`,
      'DURATION:PT15M',
      `SUMMARY:${text(`${input.registryName} API token "${token.name}" expires`)}`,
      `DESCRIPTION:${text(`The API token "${token.name}" stops working at this time. If you still need it, make a new one like it: ${regenerate}`)}`,
      `URL:${regenerate}`,
      'TRANSP:TRANSPARENT',
    );
    for (const lead of input.leadTimes) {
      lines.push(
        'BEGIN:VALARM',
        'ACTION:DISPLAY',
        `DESCRIPTION:${text(`API token "${token.name}" expires in ${lead.key}`)}`,
        `TRIGGER:${before(lead.beforeExpiryMs)}`,
        'END:VALARM',
      );
    }
    lines.push('END:VEVENT');
  }
  lines.push('END:VCALENDAR');
  return `${lines.map(fold).join('\r\n')}\r\n`;
}
