import fs from 'node:fs/promises';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { OutpostApi } from './api.ts';
import { buildRemote } from './bundle-build.ts';
import { CliError, describeError, formatBytes, UsageError } from './errors.ts';
import { exportBundles, formatSummary } from './export.ts';
import { progressBar } from './progress.ts';
import { buildFromSpec } from './spec-build.ts';
import { verifyBundle, type VerifyResult } from './verify.ts';
import { parseAllowInsecure } from '../registry/destination.ts';
import { oneLine, plainText } from '../site/plain-text.ts';

const HELP = `outpost — build, verify and export Outpost site bundles

Usage:
  outpost bundle build --site CODE --release VERSION [--mode auto|full|delta] [--expires-in-days N] [--wait] [--out FILE]
  outpost bundle build --spec spec.json --out FILE [--generate-key DIR] [--scripts DIR]
  outpost bundle verify FILE|DIR --key public.pem | --fingerprint SHA256:… | --trust-bundle-key
  outpost export --release VERSION --to DIR [--sites A,B,C] [--region R] [--district D] [--tag T]
                 [--mode auto|full|delta] [--expires-in-days N]

Server commands read the server and API token from OUTPOST_URL and OUTPOST_TOKEN
(or --server and --token). Make a token in Outpost → Settings → API tokens.

Exit codes: 0 all well, 1 something failed (a problem is listed), 2 the command line is wrong.
More: docs/cli.md`;

interface Io {
  out: (line: string) => void;
  err: (line: string) => void;
  env: NodeJS.ProcessEnv;
}

/** Runs the CLI; resolves to the exit code. Nothing here calls process.exit, so tests can call it too. */
export async function main(
  argv: string[],
  given: Io = { out: (l) => console.log(l), err: (l) => console.error(l), env: process.env },
): Promise<number> {
  // Everything printed may hold other people's words (site names, server messages): no escape codes reach the terminal.
  const io: Io = { ...given, out: (l) => given.out(plainText(l)), err: (l) => given.err(plainText(l)) };
  try {
    const [command, sub] = argv;
    if (!command || command === 'help' || command === '--help' || command === '-h') {
      io.out(HELP);
      return 0;
    }
    if (command === 'bundle' && sub === 'build') return await bundleBuild(argv.slice(2), io);
    if (command === 'bundle' && sub === 'verify') return await bundleVerify(argv.slice(2), io);
    if (command === 'export') return await exportCommand(argv.slice(1), io);
    throw new UsageError(
      `Unknown command "${argv.slice(0, command === 'bundle' ? 2 : 1).join(' ')}". Run "outpost help".`,
    );
  } catch (error) {
    io.err(`outpost: ${oneLine(describeError(error))}`);
    if (io.env.OUTPOST_DEBUG && error instanceof Error && !(error instanceof CliError))
      io.err(error.stack ?? '');
    return error instanceof CliError ? error.exitCode : 1;
  }
}

function parse<T extends NonNullable<ParseArgsConfig['options']>>(
  args: string[],
  options: T,
  positionals = false,
) {
  try {
    return parseArgs({ args, options, allowPositionals: positionals, strict: true });
  } catch (error) {
    throw new UsageError(
      `${(error as Error).message.replace(/\. To specify a positional argument.*$/, '')}. Run "outpost help".`,
    );
  }
}

const SERVER = { server: { type: 'string' }, token: { type: 'string' } } as const;

function connect(values: { server?: string; token?: string }, env: NodeJS.ProcessEnv): OutpostApi {
  const server = values.server ?? env.OUTPOST_URL;
  const token = values.token ?? env.OUTPOST_TOKEN;
  if (!server)
    throw new UsageError(
      'Which Outpost server? Set OUTPOST_URL or give --server https://outpost.example.org.',
    );
  if (!token)
    throw new UsageError(
      'No API token: set OUTPOST_TOKEN or give --token (make one in Outpost → Settings → API tokens).',
    );
  return new OutpostApi({ server, token });
}

function mode(value: string | undefined): 'auto' | 'full' | 'delta' {
  const m = value ?? 'auto';
  if (m !== 'auto' && m !== 'full' && m !== 'delta')
    throw new UsageError(`--mode must be auto, full or delta, not "${m}".`);
  return m;
}

function days(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 730)
    throw new UsageError(`--expires-in-days must be a whole number from 1 to 730, not "${value}".`);
  return n;
}

/** The destination policy of the registry client: self-hosted registries over plain HTTP or on private addresses only when listed. */
async function registryPolicy(
  env: NodeJS.ProcessEnv,
): Promise<{ allowInsecure: string[]; fetch: typeof globalThis.fetch }> {
  let allowInsecure: string[];
  try {
    allowInsecure = parseAllowInsecure(env.OUTPOST_REGISTRY_ALLOW_INSECURE);
  } catch (e) {
    throw new UsageError(`OUTPOST_REGISTRY_ALLOW_INSECURE: ${(e as Error).message}`);
  }
  // Loaded only by the commands that reach registries: the rest of the CLI starts without undici.
  const { guardedFetch } = await import('../registry/guarded-fetch.ts');
  return { allowInsecure, fetch: guardedFetch(allowInsecure) };
}

const pollMs = (env: NodeJS.ProcessEnv) => (env.OUTPOST_POLL_MS ? Number(env.OUTPOST_POLL_MS) : undefined);

async function bundleBuild(args: string[], io: Io): Promise<number> {
  const { values } = parse(args, {
    ...SERVER,
    site: { type: 'string' },
    release: { type: 'string' },
    mode: { type: 'string' },
    wait: { type: 'boolean' },
    out: { type: 'string' },
    'expires-in-days': { type: 'string' },
    spec: { type: 'string' },
    'generate-key': { type: 'string' },
    scripts: { type: 'string' },
  });
  if (values.spec) {
    if (values.site || values.release)
      throw new UsageError('--spec builds from the spec file alone; leave out --site and --release.');
    if (!values.out) throw new UsageError('--spec needs --out FILE: where to write the bundle.');
    // Drawn from the first image byte on, after the lookups have printed their lines.
    let bar: ReturnType<typeof progressBar> | null = null;
    const result = await buildFromSpec({
      specFile: values.spec,
      out: values.out,
      log: io.out,
      env: io.env,
      registry: await registryPolicy(io.env),
      ...(values['generate-key'] ? { generateKeyDir: values['generate-key'] } : {}),
      ...(values.scripts ? { scriptsDir: values.scripts } : {}),
      onProgress: (done, total) => {
        bar ??= progressBar('bytes', 'images ', total);
        bar.update(done, total);
      },
    }).finally(() => bar?.stop());
    for (const w of result.warnings) io.out(`Warning: ${w}`);
    io.out(
      `Wrote ${result.file} (${formatBytes(result.size)}): ${result.root}/, images archive ${formatBytes(result.imagesArchive.size)}`,
    );
    io.out(
      `Signed with key ${result.keyFingerprint}. Check it with: outpost bundle verify ${values.out} --fingerprint ${result.keyFingerprint}`,
    );
    return 0;
  }
  if (!values.site || !values.release)
    throw new UsageError(
      'bundle build needs --site CODE and --release VERSION (or --spec FILE to build without a server).',
    );
  if (values['generate-key'] || values.scripts)
    throw new UsageError('--generate-key and --scripts go with --spec.');
  const result = await buildRemote({
    api: connect(values, io.env),
    site: values.site,
    version: values.release,
    mode: mode(values.mode),
    ...(days(values['expires-in-days']) ? { expiresInDays: days(values['expires-in-days'])! } : {}),
    wait: values.wait ?? false,
    ...(values.out ? { out: values.out } : {}),
    ...(pollMs(io.env) ? { pollMs: pollMs(io.env)! } : {}),
    log: io.out,
  });
  if (!result.verification) return 0;
  return report(result.verification, io);
}

async function bundleVerify(args: string[], io: Io): Promise<number> {
  const { values, positionals } = parse(
    args,
    { key: { type: 'string' }, fingerprint: { type: 'string' }, 'trust-bundle-key': { type: 'boolean' } },
    true,
  );
  if (positionals.length !== 1)
    throw new UsageError('bundle verify needs one bundle: a .tar file or a bundle folder.');
  let publicKeyPem: string | undefined;
  if (values.key) {
    publicKeyPem = await fs.readFile(values.key, 'utf8').catch(() => {
      throw new UsageError(`Cannot read the key file ${values.key}.`);
    });
  }
  const bar = progressBar('bytes', 'checking', (await fs.stat(positionals[0]!).catch(() => null))?.size ?? 0);
  let seen = 0;
  const result = await verifyBundle(positionals[0]!, {
    ...(publicKeyPem ? { publicKeyPem } : {}),
    ...(values.fingerprint ? { fingerprint: values.fingerprint } : {}),
    ...(values['trust-bundle-key'] ? { trustBundleKey: true } : {}),
    onBytes: (n) => {
      seen += n;
      bar.update(seen);
    },
  }).finally(() => bar.stop());
  return report(result, io);
}

function report(result: VerifyResult, io: Io): number {
  const m = result.manifest;
  if (m?.site && m.release)
    io.out(
      oneLine(
        `Bundle ${result.root ?? ''}: site ${m.site.code} (${m.site.name}), release ${m.release.version}${m.fromRelease ? ` (delta from ${m.fromRelease.version})` : ''}, expires ${m.expires}`,
      ),
    );
  for (const note of result.notes) io.out(`Note: ${oneLine(note)}`);
  if (result.ok) {
    io.out(
      `OK: signature valid (key ${result.keyFingerprint}${result.keySource === 'bundled' ? ", the bundle's own" : ''}), ${m?.files.length ?? 0} files checked (${formatBytes(result.bytesChecked)}).`,
    );
    return 0;
  }
  io.out(`NOT OK: ${result.problems.length} problem${result.problems.length === 1 ? '' : 's'}:`);
  for (const p of result.problems) io.out(`  - ${oneLine(p)}`);
  return 1;
}

async function exportCommand(args: string[], io: Io): Promise<number> {
  const { values } = parse(args, {
    ...SERVER,
    release: { type: 'string' },
    to: { type: 'string' },
    region: { type: 'string' },
    district: { type: 'string' },
    tag: { type: 'string' },
    sites: { type: 'string' },
    mode: { type: 'string' },
    'expires-in-days': { type: 'string' },
  });
  if (!values.release || !values.to) throw new UsageError('export needs --release VERSION and --to DIR.');
  const siteCodes = values.sites
    ?.split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const filter = Object.fromEntries(
    Object.entries({ region: values.region, district: values.district, tag: values.tag }).filter(
      ([, v]) => v,
    ),
  );
  if (!siteCodes?.length && Object.keys(filter).length === 0)
    throw new UsageError('Choose the sites: --sites A,B,C, or --region, --district or --tag.');
  const summary = await exportBundles({
    api: connect(values, io.env),
    version: values.release,
    to: values.to,
    mode: mode(values.mode),
    log: io.out,
    ...(days(values['expires-in-days']) ? { expiresInDays: days(values['expires-in-days'])! } : {}),
    selection: {
      ...(siteCodes?.length ? { siteCodes } : {}),
      ...(Object.keys(filter).length ? { filter } : {}),
    },
    ...(pollMs(io.env) ? { pollMs: pollMs(io.env)! } : {}),
  });
  for (const line of formatSummary(summary)) io.out(line);
  return summary.failed.length > 0 ? 1 : 0;
}
