/**
 * Text from other people (site names, server messages) made safe to render into a README or a
 * terminal: line breaks, tabs and every other control character (NUL, ESC and its sequences' C1
 * twins, line and paragraph separators) become a space, so nothing can forge a line or move the cursor.
 *
 * @example
 * oneLine('Kibera\nOK: signature valid') // 'Kibera OK: signature valid'
 */
export function oneLine(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]+/g, ' ');
}

/** Control characters other than the line break removed: for whole messages that may span lines. */
export function plainText(text: string): string {
  return text.replace(/\r\n?/g, '\n').replace(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u2028\u2029]+/g, ' ');
}
