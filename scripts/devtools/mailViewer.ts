/**
 * The local mail sink's web pages: the messages it received, newest first, and each one's HTML body as
 * a person sees it (in a sandboxed frame: no scripts, no requests of its own) above its text body.
 * fakePostmark.ts serves them beside Postmark's API, on GET / and GET /view/<MessageID>.
 */
import { escapeHtml } from '../../src/email/frame';
import { rfc3339Utc } from '../../src/email/reminderEmail';
import type { SentMessage } from './fakePostmark';

export interface ViewerPage {
  status: number;
  html: string;
}

/** The page for a GET path, or null when the path is not the viewer's. */
export function mailViewerPage(path: string, messages: readonly SentMessage[]): ViewerPage | null {
  if (path === '' || path === '/') return { status: 200, html: inboxPage(messages) };
  const view = /^\/view\/([^/]+)$/.exec(path);
  if (!view) return null;
  let id: string;
  try {
    id = decodeURIComponent(view[1]!);
  } catch {
    return { status: 400, html: page('Bad request', '<p>That link is not a message\'s address (bad percent-encoding). <a href="/">All messages</a></p>') };
  }
  const message = messages.find((m) => m.MessageID === id);
  return message
    ? { status: 200, html: messagePage(message) }
    : { status: 404, html: page('Not found', `<p>No message ${e(id)} here (the sink forgets on restart). <a href="/">All messages</a></p>`) };
}

/** No script of ours, nothing loaded from elsewhere; frames only from srcdoc. */
export const MAIL_VIEWER_CSP = "default-src 'none'; style-src 'unsafe-inline'; frame-src 'self'; img-src data:";

function inboxPage(messages: readonly SentMessage[]): string {
  const rows = [...messages]
    .reverse()
    .map(
      (m) =>
        `<tr><td class="time">${e(rfc3339Utc(m.receivedAt))}</td><td>${e(m.To)}</td>` +
        `<td><a href="/view/${encodeURIComponent(m.MessageID)}">${e(m.Subject || '(no subject)')}</a></td>` +
        `<td>${e(m.Tag ?? '')}</td></tr>`,
    );
  const body =
    messages.length === 0
      ? '<p>No messages yet. Email the worker sends to this sink shows up here; reload to see new ones.</p>'
      : `<table><thead><tr><th>Received (UTC)</th><th>To</th><th>Subject</th><th>Tag</th></tr></thead>` +
        `<tbody>${rows.join('')}</tbody></table>`;
  return page(`Mail sink: ${messages.length} message${messages.length === 1 ? '' : 's'}`, body);
}

function messagePage(m: SentMessage): string {
  const headers = [
    ['From', m.From],
    ['To', m.To],
    ['Subject', m.Subject],
    ['Received', `${rfc3339Utc(m.receivedAt)} (UTC)`],
    ['Tag', m.Tag ?? ''],
    ['MessageID', m.MessageID],
    ...Object.entries(m.Metadata).map(([key, value]) => [`Metadata ${key}`, value]),
  ]
    .map(([name, value]) => `<tr><th>${e(name!)}</th><td>${e(value!)}</td></tr>`)
    .join('');
  // sandbox with no permissions: the email's own markup cannot run scripts or reach this page.
  const html = m.HtmlBody
    ? `<iframe title="HTML body" sandbox srcdoc="${e(m.HtmlBody)}"></iframe>`
    : '<p>(no HTML body)</p>';
  const text = m.TextBody ? `<pre>${e(m.TextBody)}</pre>` : '<p>(no text body)</p>';
  return page(
    m.Subject || '(no subject)',
    `<p><a href="/">← All messages</a></p><table class="headers">${headers}</table>` +
      `<h2>HTML body</h2>${html}<h2>Text body</h2>${text}`,
  );
}

function page(title: string, body: string): string {
  return [
    '<!DOCTYPE html>',
    '<html lang="en"><head><meta charset="utf-8">',
    `<title>${e(title)}</title>`,
    `<style>${STYLE}</style>`,
    `</head><body><h1>${e(title)}</h1>${body}</body></html>`,
    '',
  ].join('\n');
}

const STYLE = [
  'body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px;color:#222;background:#fafafa}',
  'h1{font-size:20px}h2{font-size:16px;margin-top:24px}',
  'table{border-collapse:collapse;background:#fff}th,td{text-align:left;padding:6px 12px;border-bottom:1px solid #ddd;vertical-align:top}',
  '.headers th{color:#666;font-weight:normal}.time{white-space:nowrap;font-variant-numeric:tabular-nums}',
  'iframe{width:100%;max-width:720px;height:560px;border:1px solid #ccc;background:#fff}',
  'pre{background:#fff;border:1px solid #ccc;padding:12px;max-width:720px;white-space:pre-wrap}',
].join('\n');

const e = escapeHtml;
