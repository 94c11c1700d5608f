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
  constructor(
    readonly key: string,
    message: string,
  ) {
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
      if (!KEY.test(key))
        throw new EnvFileError(
          key,
          `setting name "${key}" must be letters, digits and _ and not start with a digit`,
        );
      if (typeof value !== 'string') throw new EnvFileError(key, `setting ${key} must be text`);
      if (value.includes("'"))
        throw new EnvFileError(
          key,
          `setting ${key} contains a single quote ('), which .env files cannot hold safely`,
        );
      if (value.endsWith('\\'))
        throw new EnvFileError(
          key,
          `setting ${key} ends with a backslash, which .env files cannot hold safely`,
        );
      if (value.includes('\0')) throw new EnvFileError(key, `setting ${key} contains a NUL character`);
      return `${key}='${value}'\n`;
    });
  return lines.join('');
}

/** `'…'` for sh, a `'` inside written as `'\''`: any text (but NUL) reads back unchanged. */
export function shellQuote(value: string): string {
  if (value.includes('\0')) throw new EnvFileError('value', 'a shell value cannot contain a NUL character');
  return `'${value.replaceAll("'", `'\\''`)}'`;
}

export interface ReleaseConf {
  waitSeconds: number;
  healthUrls: string[];
  /** Services with a backup (output of `backup`) and a restore (`restore` reads it), in order. */
  services: { name: string; backup: string; restore: string }[];
}

/**
 * `compose/outpost.conf`: the compose file's `x-outpost` section in a form the installer sources
 * with `.` (sh only — compose never reads it, so any quoting sh understands is allowed).
 *
 * @example
 * renderReleaseConf({ waitSeconds: 300, healthUrls: ['http://127.0.0.1:8080/health'], services: [{ name: 'db', backup: 'pg_dump app', restore: 'psql app' }] });
 */
export function renderReleaseConf(conf: ReleaseConf): string {
  const lines = [
    "# The release's x-outpost section (docker-compose.yml), for the installer. Generated; do not edit.",
    `OUTPOST_WAIT_SECONDS=${Math.trunc(conf.waitSeconds)}`,
    `OUTPOST_HEALTH_COUNT=${conf.healthUrls.length}`,
    ...conf.healthUrls.map((url, i) => `OUTPOST_HEALTH_${i + 1}=${shellQuote(url)}`),
    `OUTPOST_SERVICE_COUNT=${conf.services.length}`,
    ...conf.services.flatMap((s, i) => {
      if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(s.name))
        throw new EnvFileError('service', `service name "${s.name}" is not a compose service name`);
      return [
        `OUTPOST_SERVICE_${i + 1}=${shellQuote(s.name)}`,
        `OUTPOST_BACKUP_${i + 1}=${shellQuote(s.backup)}`,
        `OUTPOST_RESTORE_${i + 1}=${shellQuote(s.restore)}`,
      ];
    }),
  ];
  return `${lines.join('\n')}\n`;
}
