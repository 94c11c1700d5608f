import { describe, expect, it } from 'vitest';
import { ImageReferenceError, parseImageReference } from './reference.ts';

const D = 'sha256:' + 'ab'.repeat(32);

describe('parseImageReference', () => {
  it('should normalise a bare Docker Hub name to library/<name>:latest', () => {
    expect(parseImageReference('nginx')).toEqual({
      registry: 'docker.io',
      apiHost: 'registry-1.docker.io',
      repository: 'library/nginx',
      tag: 'latest',
      canonical: 'docker.io/library/nginx:latest',
    });
  });

  it('should keep a Docker Hub user repository and its tag', () => {
    const ref = parseImageReference('openmrs/openmrs-core:2.7.0');
    expect(ref.registry).toBe('docker.io');
    expect(ref.repository).toBe('openmrs/openmrs-core');
    expect(ref.canonical).toBe('docker.io/openmrs/openmrs-core:2.7.0');
  });

  it('should treat index.docker.io and docker.io as Docker Hub', () => {
    expect(parseImageReference('index.docker.io/nginx:1').canonical).toBe('docker.io/library/nginx:1');
    expect(parseImageReference('docker.io/library/nginx').canonical).toBe('docker.io/library/nginx:latest');
  });

  it('should read host:port registries, localhost and deep paths', () => {
    const ref = parseImageReference('127.0.0.1:5000/foo/bar/baz:1.2.3');
    expect(ref).toMatchObject({
      registry: '127.0.0.1:5000',
      apiHost: '127.0.0.1:5000',
      repository: 'foo/bar/baz',
      tag: '1.2.3',
    });
    expect(parseImageReference('localhost/app').registry).toBe('localhost');
    expect(parseImageReference('ghcr.io/org/app:v1').canonical).toBe('ghcr.io/org/app:v1');
    expect(parseImageReference('[::1]:5000/app:v1').registry).toBe('[::1]:5000');
  });

  it('should pin a digest without inventing a tag, and keep both when both are given', () => {
    const pinned = parseImageReference(`nginx@${D}`);
    expect(pinned.tag).toBeUndefined();
    expect(pinned.digest).toBe(D);
    expect(pinned.canonical).toBe(`docker.io/library/nginx@${D}`);
    const both = parseImageReference(`host:5000/a:1.0@${D}`);
    expect(both).toMatchObject({ tag: '1.0', digest: D, canonical: `host:5000/a:1.0@${D}` });
  });

  it('should take a lowercase first component without a dot or port as part of a Docker Hub path', () => {
    expect(parseImageReference('foo/bar').registry).toBe('docker.io');
    expect(parseImageReference('foo/bar').repository).toBe('foo/bar');
  });

  it.each([
    ['', 'empty'],
    ['Nginx', 'lowercase'],
    ['nginx:', 'tag'],
    ['nginx:-bad', 'tag'],
    ['nginx@sha256:123', 'sha256'],
    ['nginx@notadigest', 'digest'],
    ['foo//bar', 'empty path component'],
    ['foo/-bar', 'lowercase letters'],
    ['host:99999/app', 'port'],
    ['a'.repeat(64).replace(/a/g, 'f'), 'image ID'],
    [' nginx', 'spaces'],
    [`docker.io/${'a'.repeat(250)}`, 'longer than'],
  ])('should reject %j with a clear message', (input, fragment) => {
    expect(() => parseImageReference(input)).toThrow(ImageReferenceError);
    expect(() => parseImageReference(input)).toThrow(fragment);
  });
});
