export interface AuthChallenge {
  /** Lower-cased scheme: `bearer`, `basic`, … */
  scheme: string;
  /** Parameters with lower-cased names and unquoted values. */
  params: Record<string, string>;
}

const TOKEN_CHAR = /[!#$%&'*+.^_`|~0-9A-Za-z-]/;

/**
 * Parses a `WWW-Authenticate` header into its challenges (RFC 9110 §11.6.1): several challenges
 * may share one header, and quoted values may hold commas, `=` and escaped quotes, e.g.
 * `Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:a/b:pull,push"`.
 *
 * @example
 * parseWwwAuthenticate('Basic realm="x"') // [{ scheme: 'basic', params: { realm: 'x' } }]
 */
export function parseWwwAuthenticate(header: string): AuthChallenge[] {
  const challenges: AuthChallenge[] = [];
  let i = 0;
  const skip = (chars: RegExp) => {
    while (i < header.length && chars.test(header[i]!)) i++;
  };
  const token = () => {
    const start = i;
    while (i < header.length && TOKEN_CHAR.test(header[i]!)) i++;
    return header.slice(start, i);
  };
  const quoted = () => {
    let value = '';
    i++; // opening quote
    while (i < header.length && header[i] !== '"') {
      if (header[i] === '\\' && i + 1 < header.length) i++;
      value += header[i];
      i++;
    }
    i++; // closing quote
    return value;
  };

  let current: AuthChallenge | undefined;
  while (i < header.length) {
    skip(/[\s,]/);
    if (i >= header.length) break;
    const start = i;
    const name = token();
    if (name === '') {
      i++; // stray character: step over it rather than loop forever
      continue;
    }
    skip(/[ \t]/);
    if (header[i] === '=' && current && header[i + 1] !== '=' && !/^=*\s*(,|$)/.test(header.slice(i))) {
      i++;
      skip(/[ \t]/);
      current.params[name.toLowerCase()] = header[i] === '"' ? quoted() : token();
      continue;
    }
    if (current && header[i] === '=') {
      // token68 (e.g. `Negotiate abc==`): keep it under a reserved name.
      i = start;
      const t68 = header.slice(i).match(/^[A-Za-z0-9._~+/-]+=*/)?.[0] ?? name;
      i += t68.length;
      current.params[''] = t68;
      continue;
    }
    current = { scheme: name.toLowerCase(), params: {} };
    challenges.push(current);
  }
  return challenges;
}
