import { oneLine } from './plain-text.ts';

export interface DefaultReadmeOptions {
  siteName: string;
  version: string;
  /** Size of the whole bundle download, for the person to check the copy is complete. */
  sizeBytes: number;
  estimatedMinutes: number;
}

/**
 * A README.txt in plain words for someone with no IT background: what this is, what to do, how
 * long it takes, and what to do when it fails (call the coordinator; the update undoes itself).
 *
 * @example
 * defaultReadme({ siteName: 'Kisumu North Clinic', version: '2.4.0', sizeBytes: 1_200_000_000, estimatedMinutes: 20 });
 */
export function defaultReadme(input: DefaultReadmeOptions): string {
  // The site's name is someone's words: one plain line, whatever it holds.
  const options = { ...input, siteName: oneLine(input.siteName), version: oneLine(input.version) };
  const minutes = Math.max(1, Math.round(options.estimatedMinutes));
  return [
    `Update to version ${options.version} for ${options.siteName}`,
    '',
    'WHAT THIS IS',
    `This folder holds an update for the system at ${options.siteName}.`,
    `All of it together is ${formatSize(options.sizeBytes)}. Do not change, rename or delete anything in it.`,
    '',
    'BEFORE YOU START',
    '1. Tell the people using the system that it will be stopped for a while.',
    `2. Plan for about ${minutes} minute${minutes === 1 ? '' : 's'}. Keep the server switched on and plugged in the whole time.`,
    '',
    'WHAT TO DO',
    '1. Copy this whole folder onto the server (or plug in the USB drive that holds it).',
    '2. Open a terminal on the server and go into this folder.',
    '3. Type this and press Enter:',
    '',
    '       sudo sh scripts/install',
    '',
    '4. Wait. The screen tells you each step as it happens. Do not close it.',
    '5. At the end it shows a short receipt code. Write it down, or type it into the',
    '   update page on your phone, so the coordinator knows the update is done.',
    '',
    'IF SOMETHING GOES WRONG',
    'Nothing is lost. If the update cannot finish, it puts the previous version and its',
    'data back by itself. Wait until it says it has finished, then call your coordinator',
    'and read out what the screen says (or take a photo of it).',
    'Do not try to fix it yourself and do not switch the server off while it is working.',
    '',
  ].join('\n');
}

function formatSize(bytes: number): string {
  if (bytes >= 1e9) return `${(bytes / 1e9).toFixed(1)} GB`;
  if (bytes >= 1e6) return `${Math.round(bytes / 1e6)} MB`;
  return `${Math.max(1, Math.round(bytes / 1e3))} KB`;
}
