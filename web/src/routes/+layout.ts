import { startI18n } from '$lib/i18n';

// A single-page app served by the API: no server rendering, no prerendering.
export const ssr = false;
export const prerender = false;

// Messages must be there before the first page renders.
export const load = () => startI18n();
