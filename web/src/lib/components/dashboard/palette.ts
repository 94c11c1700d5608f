/**
 * Colours for releases, from the Okabe–Ito palette (distinguishable with the common colour-vision
 * deficiencies). The newest release gets the strongest blue; older ones the next colours; anything
 * past the palette repeats with a dash pattern in the chart and is always named in the legend and
 * the tables, so colour is never the only cue.
 */
const OKABE_ITO = ['#0072B2', '#009E73', '#E69F00', '#56B4E9', '#D55E00', '#CC79A7', '#F0E442', '#000000'];
export const NEVER_REPORTED_COLOUR = '#BBBBBB';

export function releaseColour(index: number): string {
  return OKABE_ITO[index % OKABE_ITO.length]!;
}

/** Whether a colour needs dark text on top of it (for the labels inside bars). */
export function needsDarkText(hex: string): boolean {
  const n = parseInt(hex.slice(1), 16);
  const [r, g, b] = [(n >> 16) & 255, (n >> 8) & 255, n & 255].map((c) => {
    const s = c / 255;
    return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
  });
  return 0.2126 * r! + 0.7152 * g! + 0.0722 * b! > 0.3;
}

/** A single-hue blue scale for the heat table (darker = larger share); text flips to white past the middle. */
export function heatColour(share: number): { background: string; color: string } {
  const s = Math.max(0, Math.min(1, share));
  const light = 97 - s * 62;
  return { background: `hsl(205 70% ${light}%)`, color: light < 55 ? '#fff' : '#10202c' };
}
