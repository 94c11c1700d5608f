// Fails on any word a person would read that is written into a component instead of coming from
// a message catalogue. Scans every .svelte file under web/src (other helpers' pages included).
//
// What it looks at, in the markup (not <script> or <style>):
//   * text between tags, and string literals written as {'…'} or {`…`} in the markup;
//   * the attributes people read: aria-label, aria-description, aria-placeholder, aria-roledescription,
//     aria-valuetext, placeholder, title, alt, label, data-label (shown as a column name on phones),
//     value of <input type="submit|button|reset">;
//   * text props given to components (<ConfirmButton question="…">), except props that are plainly
//     not words for people (class, href, type, tone, variant… — COMPONENT_CODE_PROPS);
//   * string literals that an expression in the markup can show: `{x ? 'Yes' : 'No'}`, `{a ?? 'none'}`,
//     template literals — but not literals compared against (`state === 'failed'`) or passed to a call
//     (`$t('key')`, `format(x, 'short')`), which are codes, not words.
// What it allows, and why:
//   * text without a letter: punctuation, symbols and numbers ("·", "×", "—", "%", "→") read the same
//     in every language;
//   * anything inside an element marked translate="no" (the HTML attribute for "not to be
//     translated"): code and commands to copy, fingerprints, file names, the product's name;
//   * the <title> of <svelte:head> only when it comes from a message (it is markup like any other).
import { describe, expect, it } from 'vitest';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { parse } from 'svelte/compiler';

const SRC = join(import.meta.dirname, '../..');
const READ_ATTRIBUTES = new Set([
  'data-label',
  'aria-label',
  'aria-description',
  'aria-placeholder',
  'aria-roledescription',
  'aria-valuetext',
  'placeholder',
  'title',
  'alt',
  'label',
]);
const COMPONENT_CODE_PROPS =
  /^(class|id|menuId|href|type|name|tone|variant|size|for|role|autocomplete|inputmode|accept|pattern|method|target|rel|kind|mode|sort|field|scope|state|key|value|data-.*|min|max|step|width|height|src|lang|dir|inputId|labelId|format|align|icon|testid|feature)$/;
const HAS_LETTER = /\p{L}/u;

function svelteFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) return svelteFiles(p);
    return p.endsWith('.svelte') ? [p] : [];
  });
}

interface Node {
  type: string;
  start: number;
  end: number;
  [k: string]: unknown;
}

/** Every hard-coded, readable string in one component's markup, with its line. */
export function hardCoded(source: string): { line: number; text: string }[] {
  const ast = parse(source, { modern: true }) as unknown as { fragment: Node };
  const found: { line: number; text: string }[] = [];
  const lineOf = (pos: number) => source.slice(0, pos).split('\n').length;
  const report = (pos: number, text: string) => {
    if (HAS_LETTER.test(text)) found.push({ line: lineOf(pos), text: text.trim().slice(0, 60) });
  };

  // The words an expression can put on screen: itself when a literal, the branches of ?: and ||/??,
  // the fixed parts of a template literal.
  const shown = (e: Node | undefined): string[] => {
    if (!e) return [];
    if (e.type === 'Literal' && typeof e.value === 'string') return [e.value];
    if (e.type === 'TemplateLiteral') {
      return [
        (e.quasis as { value: { cooked: string } }[]).map((q) => q.value.cooked).join(' '),
        ...(e.expressions as Node[]).flatMap(shown),
      ];
    }
    if (e.type === 'ConditionalExpression')
      return [...shown(e.consequent as Node), ...shown(e.alternate as Node)];
    if (e.type === 'LogicalExpression') return [...shown(e.left as Node), ...shown(e.right as Node)];
    return [];
  };
  const literal = (e: Node | undefined): string | null => {
    const words = shown(e).filter((w) => HAS_LETTER.test(w));
    return words.length ? words.join(' | ') : null;
  };

  const visit = (node: unknown, exempt: boolean): void => {
    if (!node || typeof node !== 'object') return;
    if (Array.isArray(node)) {
      for (const n of node) visit(n, exempt);
      return;
    }
    const n = node as Node;
    let skip = exempt;
    const attrs = (n.attributes as Node[] | undefined) ?? [];
    if (typeof n.type === 'string' && attrs.length > 0) {
      for (const a of attrs) {
        if (a.type !== 'Attribute') continue;
        const name = String(a.name);
        const values = Array.isArray(a.value)
          ? (a.value as Node[])
          : a.value && typeof a.value === 'object'
            ? [a.value as Node]
            : [];
        if (name === 'translate' && values.some((v) => v.type === 'Text' && v.data === 'no')) skip = true;
      }
      if (!skip) {
        const isComponent = n.type === 'Component';
        const isButtonInput =
          n.name === 'input' &&
          attrs.some(
            (a) =>
              a.name === 'type' &&
              Array.isArray(a.value) &&
              (a.value as Node[]).some(
                (v) => v.type === 'Text' && /^(submit|button|reset)$/.test(String(v.data)),
              ),
          );
        for (const a of attrs) {
          if (a.type !== 'Attribute') continue;
          const name = String(a.name);
          const read =
            READ_ATTRIBUTES.has(name) ||
            (isButtonInput && name === 'value') ||
            (isComponent && !COMPONENT_CODE_PROPS.test(name));
          if (!read) continue;
          const values = Array.isArray(a.value)
            ? (a.value as Node[])
            : a.value && typeof a.value === 'object'
              ? [a.value as Node]
              : [];
          for (const v of values) {
            if (v.type === 'Text') report(v.start, String(v.data));
            if (v.type === 'ExpressionTag') {
              const s = literal(v.expression as Node);
              if (s !== null) report(v.start, s);
            }
          }
        }
      }
    }
    if (!skip) {
      if (n.type === 'Text') report(n.start, String(n.data));
      if (n.type === 'ExpressionTag') {
        const s = literal(n.expression as Node);
        if (s !== null) report(n.start, s);
      }
    }
    for (const [k, v] of Object.entries(n)) {
      if (k === 'attributes' || k === 'expression' || k === 'metadata') continue;
      if (v && typeof v === 'object') visit(v, skip);
    }
  };
  visit(ast.fragment, false);
  return found;
}

describe('no hard-coded words in components', () => {
  it('should find text, readable attributes and literals, and allow symbols and translate="no"', () => {
    const src = `<script>let x = 'not markup';</script>
<h1>Hello</h1><p>{$t('a.b')} · 3</p><button aria-label="Close">×</button>
<input placeholder={'Search'} /><code translate="no">curl -C - -o file</code><p>{\`Hi \${x}\`}</p><style>p{color:red}</style>
<Confirm class="big" question="Sure?" /><p>{ok ? 'Yes' : $t('k')}</p><p>{x === 'failed' ? $t('a') : format(x, 'short')}</p>`;
    expect(hardCoded(src).map((f) => f.text)).toEqual(['Hello', 'Close', 'Search', 'Hi', 'Sure?', 'Yes']);
  });

  it('should take every word of every component from a catalogue', () => {
    const offenders = svelteFiles(SRC).flatMap((file) =>
      hardCoded(readFileSync(file, 'utf8')).map((f) => `${relative(SRC, file)}:${f.line} "${f.text}"`),
    );
    expect(offenders).toEqual([]);
  });
});
