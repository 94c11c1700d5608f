import { z } from 'zod';
import { CONTROL_CHARACTER } from '../../lib/control-chars.ts';

/**
 * The fields a person sets on a site, shared by the API, the CSV import and the seed generator.
 * Everything the site reports about itself lives elsewhere (site_reports).
 */
export const CONNECTIVITY = ['online', 'intermittent', 'offline'] as const;
/** Languages of the bundle's README.txt and the installer's messages. */
export const SITE_LANGUAGES = ['en', 'fr', 'pt'] as const;

/**
 * Plain text without control characters (NUL, escape codes): the CSV import does not pass the JSON
 * guard of app.ts, so the schema refuses them itself. Line breaks stay (what is rendered into a
 * bundle or a terminal is made one line there).
 */
export const plainText = (max: number) =>
  z
    .string()
    .trim()
    .max(max)
    .refine(
      (v) => !CONTROL_CHARACTER.test(v),
      'Control characters (such as NUL or escape codes) are not allowed.',
    );
const optionalText = (max: number) => plainText(max).nullable().optional();

export const SiteFields = z
  .object({
    code: z
      .string()
      .trim()
      .min(1, 'A site needs a code.')
      .max(64)
      .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'Use letters, digits, dot, dash or underscore (no spaces).'),
    name: plainText(200).pipe(z.string().min(1, 'A site needs a name.')),
    region: optionalText(100),
    district: optionalText(100),
    facilityType: optionalText(100),
    tags: z
      .array(
        plainText(50).pipe(
          z
            .string()
            .min(1)
            .regex(/^[^,;]+$/, 'Tags cannot contain commas or semicolons.'),
        ),
      )
      .max(50)
      .default([]),
    connectivity: z.enum(CONNECTIVITY, { error: 'Use online, intermittent or offline.' }).default('online'),
    bandwidthKbps: z.number().int().min(1).max(10_000_000).nullable().optional(),
    timezone: z
      .string()
      .trim()
      .max(64)
      .refine(isTimeZone, 'Use an IANA time zone such as Africa/Nairobi.')
      .default('UTC'),
    language: z.enum(SITE_LANGUAGES, { error: 'Use en, fr or pt.' }).default('en'),
    maintenanceWindow: z
      .string()
      .trim()
      .max(100)
      .regex(
        /^(mon|tue|wed|thu|fri|sat|sun|daily)(-(mon|tue|wed|thu|fri|sat|sun))? \d{2}:\d{2}-\d{2}:\d{2}$/i,
        'Write the window like "daily 22:00-04:00" or "sat-sun 08:00-12:00".',
      )
      .nullable()
      .optional(),
    latitude: z.number().min(-90).max(90).nullable().optional(),
    longitude: z.number().min(-180).max(180).nullable().optional(),
    contactName: optionalText(200),
    contactPhone: z
      .string()
      .trim()
      .max(40)
      .regex(/^[+0-9 ()-]*$/, 'Use digits, spaces, +, ( ) and - only.')
      .nullable()
      .optional(),
    contactEmail: z.email().max(254).nullable().optional(),
  })
  .strict();

export type SiteFields = z.infer<typeof SiteFields>;

export const CreateSiteInput = SiteFields;
export const UpdateSiteInput = SiteFields.partial().strict();
export type UpdateSiteInput = z.infer<typeof UpdateSiteInput>;

const zoneCache = new Map<string, boolean>();
export function isTimeZone(tz: string): boolean {
  let ok = zoneCache.get(tz);
  if (ok === undefined) {
    try {
      new Intl.DateTimeFormat('en', { timeZone: tz });
      ok = true;
    } catch {
      ok = false;
    }
    zoneCache.set(tz, ok);
  }
  return ok;
}
