// docs/receipt-code-vectors.json, read once and typed: the vectors the TypeScript, the shell script
// (edge-scripts/lib/receipt-code.sh) and the web's end-to-end tests are all held to.
import { readFileSync } from 'node:fs';
import type { ReceiptOutcome } from '../services/receipts/code.ts';

export interface CodeVector {
  name: string;
  keyHex: string;
  siteId: string;
  version: string;
  outcome: ReceiptOutcome;
  at: string;
  epochSeconds: number;
  expected: {
    code: string;
    minute: number;
    versionHint: number;
    message: string;
    hmacSha256: string;
    value: string;
  };
}

export interface InvalidCodeVector {
  name: string;
  input: string;
  keyHex: string;
  siteId: string;
  candidateVersions: string[];
  expected: { reason: 'malformed' | 'checksum' | 'no-match'; message?: string };
}

export interface FileVector {
  name: string;
  keyHex: string;
  siteId: string;
  version: string;
  outcome: ReceiptOutcome;
  at: string;
  epochSeconds: number;
  detailsText: string;
  expected: { code: string; detailsSha256: string; message: string; hmac: string; json: string };
}

export interface ReceiptVectors {
  codes: CodeVector[];
  invalid: InvalidCodeVector[];
  inputForms: { name: string; input: string; expected: { normalized: string } }[];
  files: FileVector[];
  invalidFiles: {
    name: string;
    keyHex: string;
    siteId: string;
    json: string;
    expected: { reason: string };
  }[];
}

export const RECEIPT_VECTORS_PATH = new URL('../../../docs/receipt-code-vectors.json', import.meta.url);

export const receiptVectors = JSON.parse(readFileSync(RECEIPT_VECTORS_PATH, 'utf8')) as ReceiptVectors;
