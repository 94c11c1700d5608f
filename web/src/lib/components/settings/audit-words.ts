import { get } from 'svelte/store';
import type { AuditEntry } from '$lib/api';
import { t } from '$lib/i18n';

/** The kinds of change the audit log can be narrowed to (the part of an action before its first dot). */
export const AUDIT_KINDS = [
  'site',
  'release',
  'bundle',
  'user',
  'invite',
  'token',
  'session',
  'registry_credential',
  'signing_key',
  'content_package',
  'org',
] as const;

/**
 * An entry's details in words: the few keys people care about (fields changed, role, version,
 * reason, counts), named in their language; ids and internal keys are left out.
 */
export function auditDetails(e: AuditEntry): string[] {
  const tr = get(t);
  const out: string[] = [];
  const d = e.details as Record<string, unknown>;
  if (Array.isArray(d.fields) && d.fields.length) {
    const names = d.fields.map((f) => tr(`settings.audit.field.${String(f)}`, { default: String(f) }));
    out.push(tr('settings.audit.detail.fields', { values: { fields: names.join(', ') } }));
  }
  if (typeof d.role === 'string')
    out.push(
      tr('settings.audit.detail.role', {
        values: { role: tr(`states.role.${d.role}`, { default: d.role }) },
      }),
    );
  if (typeof d.from === 'string' && typeof d.to === 'string')
    out.push(
      tr('settings.audit.detail.fromTo', {
        values: {
          from: tr(`states.role.${d.from}`, { default: d.from }),
          to: tr(`states.role.${d.to}`, { default: d.to }),
        },
      }),
    );
  if (typeof d.version === 'string')
    out.push(tr('settings.audit.detail.version', { values: { version: d.version } }));
  if (typeof d.reason === 'string')
    out.push(tr('settings.audit.detail.reason', { values: { reason: d.reason } }));
  if (typeof d.created === 'number')
    out.push(tr('settings.audit.detail.created', { values: { count: d.created } }));
  if (typeof d.updated === 'number')
    out.push(tr('settings.audit.detail.updated', { values: { count: d.updated } }));
  if (typeof d.sites === 'number')
    out.push(tr('settings.audit.detail.sites', { values: { count: d.sites } }));
  if (typeof d.name === 'string' && e.objectType !== 'api_token') out.push(d.name);
  if (typeof d.registry === 'string') out.push(d.registry);
  if (typeof d.reference === 'string') out.push(d.reference);
  if (typeof d.fingerprint === 'string')
    out.push(tr('settings.audit.detail.fingerprint', { values: { fingerprint: d.fingerprint } }));
  return out;
}
