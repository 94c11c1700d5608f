import type { z } from '@hono/zod-openapi';

/**
 * One validation problem as the error envelope lists it (`details[]`): the field's path, the problem
 * in English, and its zod code; for a size limit also what was measured (`origin`: string, array,
 * number…) and the bound, for a format the format's name (`email`…), so that a client can say it in
 * its person's language (the web does, from `errors.field.*` in its catalogues).
 */
export function validationDetail(issue: z.core.$ZodIssue) {
  const path = issue.path.map(String).join('.');
  switch (issue.code) {
    case 'unrecognized_keys':
      return { path, code: issue.code, message: `Unknown field(s): ${issue.keys.join(', ')}` };
    case 'too_small':
      return {
        path,
        code: issue.code,
        message: issue.message,
        origin: issue.origin,
        minimum: Number(issue.minimum),
        inclusive: issue.inclusive !== false,
      };
    case 'too_big':
      return {
        path,
        code: issue.code,
        message: issue.message,
        origin: issue.origin,
        maximum: Number(issue.maximum),
        inclusive: issue.inclusive !== false,
      };
    case 'invalid_format':
      // e.g. `email`, `url`, `uuid`, `regex`: the web words the ones it knows.
      return { path, code: issue.code, message: issue.message, format: issue.format };
    default:
      return { path, code: issue.code, message: issue.message };
  }
}
