// The receipt-code check runs in the browser exactly as on the server: the same module, through the
// API package's `./receipt-code` export. It is pure and needs no key, so a typo is caught on the
// phone before anything is sent.
export {
  checkReceiptCode,
  RECEIPT_CODE_ALPHABET,
  RECEIPT_CODE_LENGTH,
  type CheckReceiptCodeResult,
} from '@outpost/api/receipt-code';

import { RECEIPT_CODE_ALPHABET, RECEIPT_CODE_LENGTH } from '@outpost/api/receipt-code';

// Spaces and the dashes phones substitute for '-', as the checker strips them.
const SEPARATORS = /[\s\-\u2010-\u2015\u2212\ufe58\ufe63\uff0d]+/g;

/** The characters of a typed code that count (separators dropped, upper case). */
export function receiptCodeSymbols(input: string): string {
  return input.normalize('NFKC').replace(SEPARATORS, '').toUpperCase();
}

/** Groups a typed code as printed, `XXXX-XXXX-XXXX-XXXX`, keeping every character typed (mistakes included). */
export function groupReceiptCode(input: string): string {
  return (
    receiptCodeSymbols(input)
      .match(/.{1,4}/g)
      ?.join('-') ?? ''
  );
}

/** Where the caret goes after grouping: just after the same number of symbols as before it. */
export function caretAfterGrouping(grouped: string, symbolsBefore: number): number {
  if (symbolsBefore <= 0) return 0;
  let seen = 0;
  for (let i = 0; i < grouped.length; i++) {
    if (grouped[i] !== '-' && ++seen === symbolsBefore) return i + 1;
  }
  return grouped.length;
}

/** A code still being typed: only valid symbols so far, and fewer than a whole code. */
export function isIncompleteReceiptCode(input: string): boolean {
  const s = receiptCodeSymbols(input);
  return s.length < RECEIPT_CODE_LENGTH && [...s].every((ch) => RECEIPT_CODE_ALPHABET.includes(ch));
}
