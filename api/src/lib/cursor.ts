import { ValidationError, fieldIssue } from './errors.ts';
import { fromBase64Url, toBase64Url } from './crypto.ts';

/** Opaque keyset cursor: the sort key and id of the last row of a page. */
export interface Cursor {
  t: string;
  id: string;
}

export function encodeCursor(c: Cursor): string {
  return toBase64Url(new TextEncoder().encode(JSON.stringify(c)));
}

export function decodeCursor(s: string): Cursor {
  try {
    const v = JSON.parse(new TextDecoder().decode(fromBase64Url(s))) as Cursor;
    if (
      typeof v.t !== 'string' ||
      typeof v.id !== 'string' ||
      Number.isNaN(Date.parse(v.t)) ||
      !/^[0-9a-f-]{36}$/.test(v.id)
    )
      throw new Error('shape');
    return v;
  } catch {
    throw new ValidationError(
      'The cursor is not one this API gave out.',
      fieldIssue('cursor', 'Start from the first page.'),
    );
  }
}
