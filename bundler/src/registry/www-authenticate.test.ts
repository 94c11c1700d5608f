import { describe, expect, it } from 'vitest';
import { parseWwwAuthenticate } from './www-authenticate.ts';

describe('parseWwwAuthenticate', () => {
  it('should read a Docker Hub style Bearer challenge with a comma inside a quoted scope', () => {
    expect(
      parseWwwAuthenticate(
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:a/b:pull,push"',
      ),
    ).toEqual([
      {
        scheme: 'bearer',
        params: {
          realm: 'https://auth.docker.io/token',
          service: 'registry.docker.io',
          scope: 'repository:a/b:pull,push',
        },
      },
    ]);
  });

  it('should read several challenges in one header, spaces around = and escaped quotes', () => {
    expect(
      parseWwwAuthenticate(
        'Basic realm = "a \\"quoted\\" realm", Bearer realm="https://x/token", error=insufficient_scope',
      ),
    ).toEqual([
      { scheme: 'basic', params: { realm: 'a "quoted" realm' } },
      { scheme: 'bearer', params: { realm: 'https://x/token', error: 'insufficient_scope' } },
    ]);
  });

  it('should accept a scheme without parameters and a token68 value', () => {
    expect(parseWwwAuthenticate('Negotiate abc123==, Basic')).toEqual([
      { scheme: 'negotiate', params: { '': 'abc123==' } },
      { scheme: 'basic', params: {} },
    ]);
  });

  it('should return nothing for an empty header', () => {
    expect(parseWwwAuthenticate('')).toEqual([]);
  });
});
