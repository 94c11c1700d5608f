import type { FleetBreakdownRow, FleetOverview } from '$lib/api';

type Translate = (key: string, opts?: { values?: Record<string, string | number> }) => string;

// A cell a spreadsheet would read as a formula gets a leading quote (OWASP), as the sites export does.
function cell(v: string | number): string {
  let s = String(v);
  if (typeof v === 'string' && /^[=+\-@\t\r]/.test(s)) s = `'${s}`;
  return /[",\n\r]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
}

/**
 * The current view as CSV: one row for all the sites in view, then one per region, with every
 * figure of the ranking, the layer drift and the sites on each release. Headers in the page's language.
 */
export function dashboardCsv(o: FleetOverview, t: Translate): string {
  const versions = o.summary.versions.map((v) => v.version);
  const header = [
    t('dashboard.csv.scope'),
    t('dashboard.csv.sites'),
    t('dashboard.csv.onTarget'),
    t('dashboard.csv.behind1'),
    t('dashboard.csv.behind2'),
    t('dashboard.csv.behind3'),
    t('dashboard.csv.ahead'),
    t('dashboard.csv.failed'),
    t('dashboard.csv.revoked'),
    t('dashboard.csv.silent'),
    t('dashboard.csv.neverReported'),
    t('dashboard.csv.noTarget'),
    t('dashboard.csv.content'),
    t('dashboard.csv.compose'),
    t('dashboard.csv.scripts'),
    ...versions.map((v) =>
      v === null
        ? t('dashboard.regions.neverReported')
        : t('dashboard.csv.onVersion', { values: { version: v } }),
    ),
  ];
  const row = (
    label: string,
    f: Pick<FleetBreakdownRow, 'sites' | 'status' | 'behind' | 'drift' | 'versions'>,
  ) => {
    const onVersion = new Map(f.versions.map((v) => [v.version, v.count]));
    return [
      label,
      f.sites.count,
      f.status.on_target!.count,
      f.behind[0]!.count,
      f.behind[1]!.count,
      f.behind[2]!.count,
      f.status.ahead!.count,
      f.status.failed!.count,
      f.status.revoked!.count,
      f.status.silent!.count,
      f.status.never_reported!.count,
      f.status.no_target!.count,
      f.drift.content.count,
      f.drift.compose.count,
      f.drift.scripts.count,
      ...versions.map((v) => onVersion.get(v) ?? 0),
    ];
  };
  const lines = [
    header,
    row(t('dashboard.csv.all'), o.summary),
    ...o.regions.map((r) => row(r.key.region ?? t('dashboard.regions.noRegion'), r)),
  ];
  return lines.map((l) => l.map(cell).join(',')).join('\r\n') + '\r\n';
}

/** Hands the text to the browser as a file download. */
export function downloadText(text: string, filename: string, type = 'text/csv;charset=utf-8') {
  // A byte-order mark, so spreadsheet programs read accents (French headers) as UTF-8.
  const url = URL.createObjectURL(new Blob(['\ufeff', text], { type }));
  const a = document.createElement('a');
  a.href = url;
  a.download = filename;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}
