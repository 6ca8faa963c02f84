// The frame every email shares around its body: the greeting and headline, the closing lines (nothing to do,
// the manage link, the user's choices, the signature), and the HTML page with its one style.
import type { EmailChoices, RenderedEmail } from './reminderEmail';

export function escapeHtml(value: string): string {
  return value
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

export function htmlLink(url: string, text: string): string {
  return `<a href="${escapeHtml(url)}" style="color:#1a5fb4;">${escapeHtml(text)}</a>`;
}

const CELL = 'padding:4px 12px 4px 0;vertical-align:top;';

/** A token's details as an HTML table; each value is HTML already (escaped, or a link). */
export function detailsTable(rows: [label: string, html: string][]): string {
  return [
    '<table style="border-collapse:collapse;margin:0 0 16px 0;">',
    ...rows.map(([label, html]) => `<tr><td style="${CELL}color:#666;">${escapeHtml(label)}</td><td style="${CELL}">${html}</td></tr>`),
    '</table>',
  ].join('\n');
}

export interface EmailParts {
  subject: string;
  login: string;
  headline: string;
  consequence: string;
  /** What the email is about, between the headline and the closing lines: text lines, and HTML blocks. */
  text: string[];
  html: string[];
  notNeeded: string;
  settingsUrl: string;
  choices: EmailChoices;
  signature: string;
}

export function framedEmail(parts: EmailParts): RenderedEmail {
  const { subject, login, headline, consequence, notNeeded, settingsUrl, signature } = parts;
  const choices = choicesLines(parts.choices);
  const e = escapeHtml;
  const textBody = [
    `Hello ${login},`,
    '',
    `${headline} ${consequence}`,
    '',
    ...parts.text,
    notNeeded,
    '',
    'Manage your API tokens:',
    settingsUrl,
    '',
    ...choices.text,
    '',
    `-- ${signature}`,
    '',
  ].join('\n');
  const htmlBody = [
    '<!DOCTYPE html>',
    '<html lang="en">',
    `<head><meta charset="utf-8"><title>${e(subject)}</title></head>`,
    '<body style="margin:0;padding:24px;background:#f4f4f4;">',
    '<div style="max-width:560px;margin:0 auto;padding:24px;background:#ffffff;border-radius:6px;' +
      'font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;font-size:15px;line-height:1.5;color:#222222;">',
    `<p>Hello ${e(login)},</p>`,
    `<p><strong>${e(headline)}</strong> ${e(consequence)}</p>`,
    ...parts.html,
    `<p>${e(notNeeded)}</p>`,
    `<p>${htmlLink(settingsUrl, 'Manage your API tokens')}</p>`,
    ...choices.html,
    `<p style="color:#666666;">${e(signature)}</p>`,
    '</div>',
    '</body>',
    '</html>',
    '',
  ].join('\n');
  return { subject, textBody, htmlBody };
}

/** The closing lines about the user's choices, as text lines and HTML paragraphs. */
function choicesLines({ preferencesUrl, unsubscribeUrl, warningsOff }: EmailChoices): { text: string[]; html: string[] } {
  const choose = warningsOff
    ? 'You turned early warnings off. To be warned before your next token expires, choose when again:'
    : 'Choose when and where you are warned (lead times, waking hours, email or webhook):';
  const text = [choose, preferencesUrl];
  const html = [`<p>${escapeHtml(choose)}<br>${htmlLink(preferencesUrl, preferencesUrl)}</p>`];
  if (unsubscribeUrl) {
    const stop = 'No early warnings at all? One click turns them off (the notice when a token has expired still comes):';
    text.push('', stop, unsubscribeUrl);
    html.push(`<p>${escapeHtml(stop)}<br>${htmlLink(unsubscribeUrl, 'Turn off early warnings')}</p>`);
  }
  return { text, html };
}
