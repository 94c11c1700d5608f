import type { AppContext } from './app-env.ts';

/**
 * A CSV file for the browser to save: named by the service, never cached (each export is a
 * snapshot of live data).
 */
export function csvAttachment(c: AppContext, file: { filename: string; stream: ReadableStream<Uint8Array> }) {
  return c.body(file.stream, 200, {
    'Content-Type': 'text/csv; charset=utf-8',
    'Content-Disposition': `attachment; filename="${file.filename}"`,
    'Cache-Control': 'no-store',
  });
}
