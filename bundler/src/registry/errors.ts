export type RegistryErrorKind =
  | 'unknown-repository'
  | 'unknown-tag'
  | 'unknown-manifest'
  | 'unknown-blob'
  | 'unauthorized'
  | 'denied'
  | 'unreachable'
  | 'digest-mismatch'
  | 'platform-not-found'
  | 'protocol'
  /** The address is refused by the destination policy (not https, or not a public address, and not allow-listed). */
  | 'forbidden-address';

/**
 * Everything the registry client throws for a registry-side reason. `kind` is meant for code
 * (`if (e.kind === 'unknown-tag')`), `message` for people.
 *
 * @example
 * try { await client.resolve('foo/bar', '1.2.3') }
 * catch (e) { if (e instanceof RegistryError && e.kind === 'unknown-tag') … }
 */
export class RegistryError extends Error {
  override name = 'RegistryError';
  readonly kind: RegistryErrorKind;
  /** HTTP status of the answer that caused it, when there was one. */
  readonly status?: number;
  /** Registry error code (`MANIFEST_UNKNOWN`, …) when the registry sent one. */
  readonly code?: string;

  constructor(
    kind: RegistryErrorKind,
    message: string,
    options: { status?: number; code?: string; cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.kind = kind;
    if (options.status !== undefined) this.status = options.status;
    if (options.code !== undefined) this.code = options.code;
  }
}

/** One entry of the `errors` array in a Registry API error body. */
export interface RegistryErrorBody {
  code: string;
  message?: string;
  detail?: unknown;
}

/** Reads the `{"errors":[…]}` body of a failed answer; empty when it has none or is not JSON. */
export async function readErrorBody(response: Response): Promise<RegistryErrorBody[]> {
  try {
    const text = await response.text();
    const parsed: unknown = JSON.parse(text);
    const errors = (parsed as { errors?: unknown }).errors;
    if (!Array.isArray(errors)) return [];
    return errors.filter((e): e is RegistryErrorBody => typeof e?.code === 'string');
  } catch {
    return [];
  }
}
