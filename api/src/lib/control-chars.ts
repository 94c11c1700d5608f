import type { MiddlewareHandler } from 'hono';
import { ValidationError } from './errors.ts';

/**
 * Control characters have no place in any text Outpost stores or shows: NUL is refused by
 * PostgreSQL (a 500 with the failing statement), and escape codes and the like reach READMEs and
 * terminals. Tab, line feed and carriage return stay allowed (notes, compose templates); fields that
 * must be one line (names, codes) refuse those too in their own schemas (`singleLine`).
 */
export const CONTROL_CHARACTER = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]/;
/** Any control character, line breaks and tabs included: for one-line fields. */
export const LINE_CONTROL_CHARACTER = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;

const MESSAGE = 'Control characters (such as NUL or escape codes) are not allowed here.';

/** The path (`name`, `tags.0`) of the first string or key in a JSON value holding a control character. */
export function findControlCharacter(value: unknown, at: (string | number)[] = []): string | null {
  if (typeof value === 'string') return CONTROL_CHARACTER.test(value) ? at.join('.') || '(value)' : null;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const found = findControlCharacter(value[i], [...at, i]);
      if (found !== null) return found;
    }
    return null;
  }
  if (value && typeof value === 'object') {
    for (const [key, v] of Object.entries(value)) {
      if (CONTROL_CHARACTER.test(key))
        return [...at, key.replace(/[\u0000-\u001f\u007f-\u009f]/g, '?')].join('.');
      const found = findControlCharacter(v, [...at, key]);
      if (found !== null) return found;
    }
  }
  return null;
}

function refuse(where: 'query' | 'path' | 'body', field: string): never {
  throw new ValidationError(`The request ${where} is not valid: ${field} holds a control character.`, [
    { path: field, message: MESSAGE },
  ]);
}

function decoded(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/**
 * One guard for every endpoint, present and future: query parameters, the path and JSON bodies are
 * refused (400 naming the field) when they hold a control character, before any handler or
 * database sees them. Streamed bodies (CSV, zip) are checked by their own readers.
 */
export const refuseControlCharacters: MiddlewareHandler = async (c, next) => {
  const url = new URL(c.req.url);
  if (CONTROL_CHARACTER.test(decoded(url.pathname))) refuse('path', 'path');
  for (const [key, value] of url.searchParams) {
    if (CONTROL_CHARACTER.test(key) || CONTROL_CHARACTER.test(value))
      refuse('query', key.replace(/[\u0000-\u001f\u007f-\u009f]/g, '?'));
  }
  const type = (c.req.header('content-type') ?? '').toLowerCase();
  if (c.req.method !== 'GET' && c.req.method !== 'HEAD' && /^application\/([\w.+-]+\+)?json\b/.test(type)) {
    let body: unknown;
    // Read once and cached by Hono for the validator; a malformed body is the validator's to answer.
    try {
      body = await c.req.json();
    } catch {
      body = undefined;
    }
    const field = findControlCharacter(body);
    if (field !== null) refuse('body', field);
  }
  await next();
};
