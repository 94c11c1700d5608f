/**
 * `compose/.env` is read by two parsers: Docker Compose (compose-go's dotenv) and POSIX sh, when an
 * edge script sources it with `. ./compose/.env`. Both read a single-quoted value literally — spaces,
 * `$`, `"`, `#`, `\` and newlines survive unchanged and nothing is interpolated — so every value is
 * written single-quoted. The one thing the two disagree on is a quote inside: sh has no escape in
 * single quotes, and compose-go takes `\'` as an escaped quote. So a value may not contain `'` nor end
 * with `\`; such a value is refused rather than written in a form one of the readers gets wrong.
 */

const KEY = /^[A-Za-z_][A-Za-z0-9_]*$/;

export class EnvFileError extends Error {
  override name = 'EnvFileError';
  constructor(readonly key: string, message: string) {
    super(message);
  }
}

/**
 * The text of a `.env` file both Compose and sh read back as the same values, in key order.
 *
 * @example
 * renderEnvFile({ SITE_NAME: 'Clinic $1 "North"' }); // "SITE_NAME='Clinic $1 \"North\"'\n"
 */
export function renderEnvFile(env: Record<string, string>): string {
  const lines = Object.keys(env)
    .sort()
    .map((key) => {
      const value = env[key]!;
      if (!KEY.test(key)) throw new EnvFileError(key, `setting name "${key}" must be letters, digits and _ and not start with a digit`);
      if (typeof value !== 'string') throw new EnvFileError(key, `setting ${key} must be text`);
      if (value.includes("'")) throw new EnvFileError(key, `setting ${key} contains a single quote ('), which .env files cannot hold safely`);
      if (value.endsWith('\\')) throw new EnvFileError(key, `setting ${key} ends with a backslash, which .env files cannot hold safely`);
      if (value.includes('\0')) throw new EnvFileError(key, `setting ${key} contains a NUL character`);
      return `${key}='${value}'\n`;
    });
  return lines.join('');
}
