import { get } from 'svelte/store';
import { t } from '$lib/i18n';
import { RECEIPT_CODE_MESSAGES } from '@outpost/api/receipt-code';

const CONFUSABLE: Record<string, string> = {
  '0': 'zero',
  '1': 'one',
  O: 'letterO',
  I: 'letterI',
  L: 'letterL',
};

/**
 * The receipt-code check's message (English, shared with the API) in the person's language: the
 * check's messages are a fixed set, so each maps to a catalogue key; anything else is shown as it is.
 */
export function receiptCheckWords(message: string): string {
  const tr = get(t);
  const known = Object.entries(RECEIPT_CODE_MESSAGES).find(([, m]) => m === message)?.[0];
  if (known) return tr(`sites.receiptCheck.${known}`);
  const confusable = /^The code has no (?:number|letter) (\S)/.exec(message)?.[1];
  if (confusable && CONFUSABLE[confusable])
    return tr('sites.receiptCheck.confusable', {
      values: { what: tr(`sites.receiptCheck.${CONFUSABLE[confusable]}`) },
    });
  return message;
}
